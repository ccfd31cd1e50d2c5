"""The status page's records: found by name, sorted by last change, each linked to itself in HubSpot and QuickBooks,
to the record it waits for, with its mapped fields side by side and what its error means.

    GET /connections/{name}/records?kind=&status=&q=&page=   names (`Link.label`), last change first, 50 a page; `q`
                                                             finds a name, email, SKU, number or either side's id
    GET /connections/{name}/records.csv?kind=&status=&q=     the same, every row, with each error's explanation
    GET /connections/{name}/{kind}/{side}/{id}               one record (see `record`)

Links into the products' own UIs (`hubspot_url`, `qbo_url`):

    HubSpot      https://app.hubspot.com/contacts/{portal}/record/{objectTypeId}/{id}   (the CRM record page of any
                 object: contacts 0-1, products 0-7, invoices 0-53, commerce payments 0-101)
    QuickBooks   https://app.qbo.intuit.com/app/customerdetail?nameId={id}   a customer
                 https://app.qbo.intuit.com/app/invoice?txnId={id}           an invoice
                 https://app.qbo.intuit.com/app/recvpayment?txnId={id}       a payment
                 https://app.qbo.intuit.com/app/items                        items (QuickBooks has no page per item)
                 app.sandbox.qbo.intuit.com instead when hsqbo talks to a sandbox API (HSQBO_QBO_BASE_URL not
                 Intuit's production host): Intuit's sandbox companies, or the emulator's stand-in

The field comparison reads both records now (one HubSpot batch read, one QBO query: the reconciliation's reads and
its canonical values, `services/poller/_reconcile.py`) beside the values both sides last agreed on (`Link.synced`)
and what the last sync that changed anything moved (`Link.summary["changed"]`). A read that fails (an account
paused, an API down) says so; the rest of the page stands. A GET writes nothing of its own; the clients may refresh an
expiring token, as any read does.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from services.poller._reconcile import PAIRS, qbo_select
from services.status._common import filters, record_href, record_key, record_side, when
from services.status._explanations import explain
from shared.config import Settings
from shared.domain import Kind, PendingKey, Provider
from shared.errors import HsqboError
from shared.store import Link, LinkStatus
from shared.syncconfig import ConnectionSettings

if TYPE_CHECKING:
    from services.status._app import StatusPage

PAGE_SIZE = 50
CSV_BATCH = 500
HUBSPOT_OBJECT_TYPES = {Kind.CONTACT: "0-1", Kind.PRODUCT: "0-7", Kind.INVOICE: "0-53", Kind.PAYMENT: "0-101"}
QBO_PAGES = {
    Kind.CONTACT: "customerdetail?nameId={id}",
    Kind.PRODUCT: "items",
    Kind.INVOICE: "invoice?txnId={id}",
    Kind.PAYMENT: "recvpayment?txnId={id}",
}
QBO_PRODUCTION_API = "quickbooks.api.intuit.com"
PAIR_OF = {pair.kind: pair for pair in PAIRS}


def hubspot_url(portal_id: int | str, kind: Kind, object_id: str) -> str:
    """The record in HubSpot's own UI."""
    quoted = urllib.parse.quote(object_id, safe="")
    return f"https://app.hubspot.com/contacts/{portal_id}/record/{HUBSPOT_OBJECT_TYPES[kind]}/{quoted}"


def qbo_url(kind: Kind, object_id: str, *, sandbox: bool) -> str:
    """The record in QuickBooks' own UI (`sandbox`: Intuit's sandbox companies)."""
    host = "app.sandbox.qbo.intuit.com" if sandbox else "app.qbo.intuit.com"
    return f"https://{host}/app/" + QBO_PAGES[kind].format(id=urllib.parse.quote(object_id, safe=""))


def is_sandbox(settings: Settings) -> bool:
    return settings.qbo_base_url.host != QBO_PRODUCTION_API


@dataclasses.dataclass(frozen=True, slots=True)
class FieldRow:
    name: str
    hubspot: str | None
    qbo: str | None
    agreed: str | None
    changed: tuple[str | None, str | None] | None  # (before, after) when the last sync that changed fields moved it

    @property
    def differs(self) -> bool:
        return self.hubspot != self.qbo


@dataclasses.dataclass(frozen=True, slots=True)
class Comparison:
    rows: tuple[FieldRow, ...]
    note: str = ""  # why a side was not read, or is missing


def field_rows(
    hubspot: Mapping[str, str | None] | None,
    qbo: Mapping[str, str | None] | None,
    agreed: Mapping[str, Any],
    changed: Mapping[str, Any],
) -> tuple[FieldRow, ...]:
    """One row per mapped field: both sides' values as read (None: not read), the last agreed value and what the
    last sync changed. Without a read, the agreed fields (and the changed ones)."""
    names = list(dict.fromkeys([*(hubspot or {}), *(qbo or {})]))
    if hubspot is None and qbo is None:
        names = list(dict.fromkeys([*agreed, *changed]))

    def moved(name: str) -> tuple[str | None, str | None] | None:
        pair = changed.get(name)
        return (pair[0], pair[1]) if isinstance(pair, list | tuple) and len(pair) == 2 else None

    def shown(value: Any) -> str | None:
        return None if value is None else str(value)

    return tuple(
        FieldRow(name, (hubspot or {}).get(name), (qbo or {}).get(name), shown(agreed.get(name)), moved(name))
        for name in names
    )


def seen_rows(summary: Mapping[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """What each side showed when hsqbo last read it (`Link.summary`): (field, HubSpot, QuickBooks)."""
    hubspot, qbo = summary.get(str(Provider.HUBSPOT)) or {}, summary.get(str(Provider.QUICKBOOKS)) or {}
    return [(name, hubspot.get(name), qbo.get(name)) for name in dict.fromkeys([*hubspot, *qbo])]


class RecordPages:
    def __init__(self, page: StatusPage) -> None:
        self.page = page

    def routes(self) -> list[Route]:
        return [
            Route("/connections/{name}/records", self.records),
            Route("/connections/{name}/records.csv", self.records_csv),
            Route("/connections/{name}/{kind}/{side}/{object_id}", self.record),
        ]

    def _urls(self, connection: ConnectionSettings, kind: Kind, link: Link | None, side: Provider, object_id: str
              ) -> dict[str, str | None]:  # fmt: skip
        hubspot_id = link.hubspot_id if link is not None else (object_id if side == Provider.HUBSPOT else None)
        qbo_id = link.qbo_id if link is not None else (object_id if side == Provider.QUICKBOOKS else None)
        sandbox = is_sandbox(self.page.settings)
        return {
            "hubspot": hubspot_url(connection.hubspot_portal_id, kind, hubspot_id) if hubspot_id else None,
            "quickbooks": qbo_url(kind, qbo_id, sandbox=sandbox) if qbo_id else None,
        }

    def _filters(self, request: Request) -> tuple[Kind | None, LinkStatus | None, str]:
        kind, status = filters(request)
        return kind, status, request.query_params.get("q", "").replace("\x00", "").strip()[:200]

    async def records(self, request: Request) -> Response:
        connection = self.page._connection(request)
        kind, status, search = self._filters(request)
        given = request.query_params.get("page", "1")
        page = max(int(given), 1) if given.isascii() and given.isdigit() and len(given) < 7 else 1
        links = await self.page.store.list_links(
            connection.name, kind, status, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, search=search or None,
            recent=True,
        )  # fmt: skip
        query = urllib.parse.urlencode({k: v for k, v in (("kind", kind), ("status", status), ("q", search)) if v})
        return self.page._render(
            "records.html", request, connection=connection, links=links[:PAGE_SIZE], kind=kind, status=status,
            search=search, page=page, more=len(links) > PAGE_SIZE, kinds=list(Kind), statuses=list(LinkStatus),
            side_of=record_side, query=query, explain=explain,
            urls=lambda link: self._urls(connection, link.kind, link, *record_side(link)),
        )  # fmt: skip

    async def records_csv(self, request: Request) -> Response:
        connection = self.page._connection(request)
        kind, status, search = self._filters(request)
        store = self.page.store

        async def rows() -> AsyncIterator[str]:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["kind", "name", "status", "hubspot_id", "qbo_id", "origin", "error_category",
                             "error_message", "explanation", "last_synced_at", "last_change", "hubspot_url",
                             "quickbooks_url"])  # fmt: skip
            offset = 0
            while links := await store.list_links(connection.name, kind, status, limit=CSV_BATCH, offset=offset,
                                                  search=search or None, recent=True):  # fmt: skip
                for link in links:
                    explanation = explain(link.error_category)
                    urls = self._urls(connection, link.kind, link, *record_side(link))
                    writer.writerow([link.kind, link.label, link.status, link.hubspot_id or "", link.qbo_id or "",
                                     link.origin, link.error_category or "", link.error_message or "",
                                     explanation.line() if explanation else "",
                                     when(link.last_synced_at) if link.last_synced_at else "", when(link.updated_at),
                                     urls["hubspot"] or "", urls["quickbooks"] or ""])  # fmt: skip
                offset += len(links)
                yield out.getvalue()
                out.seek(0)
                out.truncate()
            yield out.getvalue()

        name = f"hsqbo-{connection.name}-{kind or 'all'}-{status or 'all'}.csv"
        return StreamingResponse(
            rows(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    async def record(self, request: Request) -> Response:
        """One record: its name, status, error with what it means, the record it waits for, both ids linked into
        the products' UIs, the mapped fields side by side, its history and "Sync now". A record hsqbo keeps no link
        for yet (the one a failing record waits for, say) shows its links into the products and "Sync now"."""
        connection = self.page._connection(request)
        kind, side, object_id = record_key(request)
        store = self.page.store
        ids = {"hubspot_id" if side == Provider.HUBSPOT else "qbo_id": object_id}
        link = await store.get_link(connection.name, kind, **ids)
        pending = await store.get_pending(PendingKey(connection.name, kind, side, object_id))
        urls = self._urls(connection, kind, link, side, object_id)
        if link is None:
            return self.page._render(
                "record.html", request, connection=connection, kind=kind, link=None, history=[], pending=pending,
                side=side, object_id=object_id, urls=urls, explanation=None, waits_for=None, seen=[], comparison=None,
            )  # fmt: skip
        history = await store.activity(connection.name, kind, link_id=link.id, limit=50)
        awaited = awaited_key(connection.name, link.summary.get("waits_for"))
        waits_for = None
        if awaited is not None and link.status == LinkStatus.FAILING:
            ids = {"hubspot_id" if awaited.side == Provider.HUBSPOT else "qbo_id": awaited.object_id}
            found = await store.get_link(connection.name, awaited.kind, **ids)
            waits_for = awaited_link(awaited, found.label if found is not None else "")
        return self.page._render(
            "record.html", request, connection=connection, kind=kind, link=link, history=history, pending=pending,
            side=side, object_id=object_id, urls=urls, explanation=explain(link.error_category),
            waits_for=waits_for, seen=seen_rows(link.summary), comparison=await self._compare(connection, link),
        )  # fmt: skip

    async def _compare(self, connection: ConnectionSettings, link: Link) -> Comparison:
        agreed, changed = link.synced, link.summary.get("changed") or {}
        contexts = self.page.contexts
        if link.hubspot_id is None or link.qbo_id is None:
            return Comparison(field_rows(None, None, agreed, changed), "not on both sides: nothing to compare")
        if contexts is None:
            return Comparison(field_rows(None, None, agreed, changed), "this page reads no API (no API clients)")
        pair = PAIR_OF[link.kind]
        try:
            ctx = await contexts.get(connection)
            batch = await ctx.hubspot.batch_read(
                pair.hubspot_type, pair.hubspot_ids(link), properties=pair.properties(connection)
            )
            records = {record.id: record for record in batch.results}
            rows = await ctx.qbo.query(qbo_select(pair, [link.qbo_id]))
            company = await ctx.company()
        except (HsqboError, OSError, TimeoutError) as exc:
            return Comparison(field_rows(None, None, agreed, changed), f"could not read both records now: {exc}")
        entity = next((row for row in rows if str(row.get("Id")) == link.qbo_id), None)
        gone = [name for name, there in (("HubSpot", link.hubspot_id in records), ("QuickBooks", entity)) if not there]
        if gone or entity is None:
            return Comparison(field_rows(None, None, agreed, changed), f"missing in {' and '.join(gone)}")
        try:
            hubspot, qbo = pair.values(connection, company, link, records, entity)
        except (HsqboError, KeyError, ValueError) as exc:
            return Comparison(field_rows(None, None, agreed, changed), f"could not compare: {exc}")
        return Comparison(field_rows(hubspot, qbo, agreed, changed))


RECORD_NAMES = {
    Kind.CONTACT: {Provider.HUBSPOT: "HubSpot contact", Provider.QUICKBOOKS: "QuickBooks customer"},
    Kind.PRODUCT: {Provider.HUBSPOT: "HubSpot product", Provider.QUICKBOOKS: "QuickBooks item"},
    Kind.INVOICE: {Provider.HUBSPOT: "HubSpot invoice", Provider.QUICKBOOKS: "QuickBooks invoice"},
    Kind.PAYMENT: {Provider.HUBSPOT: "HubSpot payment", Provider.QUICKBOOKS: "QuickBooks payment"},
}


def awaited_key(connection: str, waits_for: Any) -> PendingKey | None:
    """The record a failing record waits for (`Link.summary["waits_for"]`), when well formed."""
    if not isinstance(waits_for, dict):
        return None
    try:
        return PendingKey(connection, Kind(waits_for["kind"]), Provider(waits_for["side"]), str(waits_for["id"]))
    except (KeyError, ValueError):
        return None


def awaited_link(key: PendingKey, label: str) -> dict[str, str]:
    """How the page links the awaited record: "QuickBooks customer 58 (Acme Ltd · books@acme.test)"."""
    text = f"{RECORD_NAMES[key.kind][key.side]} {key.object_id}" + (f" ({label})" if label else "")
    return {"path": record_href(key), "text": text}

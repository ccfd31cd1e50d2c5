"""HubSpot changes by CRM search: per synced object type, oldest first, each poll from the previous one less the
overlap; past 10,000 results a new query from the last date seen; versions the link shows left out, whatever its
status; line items through their invoice, once, and only for a new invoice version."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from services.poller._hubspot import RESULT_CAP, HubSpotChanges, cursor_name
from shared.clients import Request, Response
from shared.domain import Kind, Part, PendingKey, Provider
from shared.metrics import WEBHOOKS_MISSED
from shared.store import Link, LinkStatus, Store
from tests.clients.answers import json_answer, json_of, path_of
from tests.poller.conftest import CONNECTION, NOW, OVERLAP_SECONDS, poll_on


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def record(record_id: int, updated: dt.datetime) -> dict[str, Any]:
    stamp = updated.isoformat().replace("+00:00", "Z")
    return {"id": str(record_id), "properties": {}, "createdAt": stamp, "updatedAt": stamp}


def since_of(request: Request) -> int:
    [group] = json_of(request)["filterGroups"]
    [modified] = group["filters"]
    assert modified["operator"] == "GTE"
    return int(modified["value"])


class Search:
    """Answers contact searches from `records` (sorted by update) the way HubSpot pages them; no other changes."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def __call__(self, request: Request) -> Response:
        if not path_of(request).endswith("/contacts/search"):
            return json_answer(200, {"total": 0, "results": []})
        body = json_of(request)
        since, offset, limit = since_of(request), int(body.get("after", 0)), body["limit"]
        assert offset < RESULT_CAP, "paged past HubSpot's 10,000 results"
        matching = [r for r in self.records if ms(dt.datetime.fromisoformat(r["updatedAt"])) >= since]
        page = matching[offset : offset + limit]
        answer: dict[str, Any] = {"total": len(matching), "results": page}
        if offset + limit < len(matching):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return json_answer(200, answer)


def contact_searches(transport: Any) -> list[Request]:
    return [r for r in transport.requests if path_of(r).endswith("/contacts/search")]


async def test_contacts_are_searched_oldest_first_from_the_previous_poll_less_the_overlap(store: Store) -> None:
    overlap_ms = int(OVERLAP_SECONDS * 1000)
    poll, queued, transport = poll_on(store, Search([record(1, NOW - dt.timedelta(minutes=1))]))
    await HubSpotChanges().poll(poll)

    [search] = contact_searches(transport)
    assert since_of(search) == ms(NOW) - overlap_ms  # the first poll: watching starts now
    assert json_of(search)["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert [(e.provider, e.object_type, e.object_id) for e in queued] == [(Provider.HUBSPOT, "contact", "1")]
    assert await store.get_cursor(CONNECTION.name, cursor_name("contacts")) == str(ms(NOW) - overlap_ms)


async def test_a_search_past_10000_results_starts_again_from_the_last_date_seen(store: Store) -> None:
    start = NOW - dt.timedelta(days=1)
    await store.set_cursor(CONNECTION.name, cursor_name("contacts"), str(ms(start)))
    records = [record(n, start + dt.timedelta(seconds=n)) for n in range(RESULT_CAP + 500)]
    poll, queued, transport = poll_on(store, Search(records))
    await HubSpotChanges().poll(poll)

    starts = [since_of(r) for r in contact_searches(transport) if "after" not in json_of(r)]
    assert len(starts) == 2
    assert starts[1] == ms(start + dt.timedelta(seconds=RESULT_CAP - 1))
    assert {e.object_id for e in queued} == {str(n) for n in range(RESULT_CAP + 500)}


async def test_a_version_the_link_shows_synced_is_not_queued(store: Store) -> None:
    synced, edited = NOW - dt.timedelta(minutes=1), NOW - dt.timedelta(seconds=30)
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1",
                               qbo_id="9", hubspot_version=synced.isoformat()))  # fmt: skip
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="2",
                               qbo_id="10", hubspot_version=synced.isoformat()))  # fmt: skip
    poll, queued, _ = poll_on(store, Search([record(1, synced), record(2, edited)]))
    await HubSpotChanges().poll(poll)
    assert [e.object_id for e in queued] == ["2"]


async def test_excluded_and_failing_records_are_queued_only_for_a_new_version(store: Store) -> None:
    seen, edited = NOW - dt.timedelta(minutes=1), NOW - dt.timedelta(seconds=30)
    for hubspot_id, status in (("1", LinkStatus.EXCLUDED), ("2", LinkStatus.FAILING), ("3", LinkStatus.DELETED)):
        await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id=hubspot_id,
                                   hubspot_version=seen.isoformat(), status=status))  # fmt: skip
    poll, queued, _ = poll_on(store, Search([record(1, seen), record(3, seen), record(2, edited)]))
    await HubSpotChanges().poll(poll)
    assert [e.object_id for e in queued] == ["2"]


TWO_WAY_INVOICES = CONNECTION.model_copy(
    update={"invoices": CONNECTION.invoices.model_copy(update={"direction": "two_way"})}
)


class InvoicesWithLineItems:
    """Answers invoice and line item searches, line item -> invoice associations and invoice batch reads."""

    def __init__(
        self, found: dict[str, list[dict[str, Any]]], current: list[dict[str, Any]], parent: dict[str, str]
    ) -> None:
        self.found = found  # object type -> what its search finds
        self.current = {r["id"]: r for r in current}  # invoices as a read answers them
        self.parent = parent  # line item id -> invoice id

    def __call__(self, request: Request) -> Response:
        path = path_of(request)
        for object_type, records in self.found.items():
            if path.endswith(f"/{object_type}/search"):
                return json_answer(200, {"total": len(records), "results": records})
        if path.endswith("/invoices/batch/read"):
            ids = [i["id"] for i in json_of(request)["inputs"]]
            return json_answer(200, {"status": "COMPLETE", "results": [self.current[i] for i in ids]})
        if "/associations/invoices" in path:
            parent = self.parent[path.split("/")[-3]]
            return json_answer(200, {"results": [{"toObjectId": int(parent), "associationTypes": []}]})
        return json_answer(200, {"total": 0, "results": []})


def invoice_reads(transport: Any) -> list[Request]:
    return [r for r in transport.requests if path_of(r).endswith("/invoices/batch/read")]


async def test_line_items_queue_their_invoice_once_and_only_for_a_new_invoice_version(store: Store) -> None:
    seen, edited = NOW - dt.timedelta(minutes=1), NOW - dt.timedelta(seconds=30)
    for invoice_id in ("50", "60"):
        await store.save_link(Link(connection="acme", kind=Kind.INVOICE, origin=Provider.HUBSPOT, hubspot_id=invoice_id,
                                   qbo_id=f"q{invoice_id}", hubspot_version=seen.isoformat()))  # fmt: skip
    answers = InvoicesWithLineItems(
        {"line_items": [record(1, edited), record(2, edited), record(3, edited)]},  # the invoice search lags
        current=[record(50, edited), record(60, seen)],  # invoice 60's version is the one synced
        parent={"1": "50", "2": "50", "3": "60"},
    )
    poll, queued, transport = poll_on(store, answers, TWO_WAY_INVOICES)
    await HubSpotChanges().poll(poll)
    assert [(e.object_type, e.object_id) for e in queued] == [("invoice", "50")]
    assert len(invoice_reads(transport)) == 1


async def test_a_line_items_invoice_found_by_its_own_search_is_not_queued_again(store: Store) -> None:
    edited = NOW - dt.timedelta(seconds=30)
    found = {"invoices": [record(50, edited)], "line_items": [record(1, edited)]}
    answers = InvoicesWithLineItems(found, current=[], parent={"1": "50"})
    poll, queued, transport = poll_on(store, answers, TWO_WAY_INVOICES)
    await HubSpotChanges().poll(poll)
    assert [(e.object_type, e.object_id) for e in queued] == [("invoice", "50")]
    assert invoice_reads(transport) == []


async def test_a_line_items_invoice_counts_missed_only_with_no_trace_of_either_webhook(store: Store) -> None:
    """Old line item changes, past the grace: 1's webhook left work keyed by the line item, 2's invoice is pending
    itself: queued, not counted. 3's invoice has no trace: queued, one missed. 4's invoice version is the one its
    (failing) link saw: in sync, never judged."""
    old = NOW - dt.timedelta(minutes=5)
    await store.save_link(Link(connection="acme", kind=Kind.INVOICE, origin=Provider.HUBSPOT, hubspot_id="80",
                               hubspot_version=old.isoformat(), status=LinkStatus.FAILING))  # fmt: skip
    await store.touch_pending(PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "1", Part.LINE_ITEM), old.timestamp())
    await store.touch_pending(PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "60"), old.timestamp())
    answers = InvoicesWithLineItems(
        {"line_items": [record(n, old) for n in (1, 2, 3, 4)]},
        current=[record(50, old), record(60, old), record(70, old), record(80, old)],
        parent={"1": "50", "2": "60", "3": "70", "4": "80"},
    )
    poll, queued, _ = poll_on(store, answers, TWO_WAY_INVOICES)
    missed = WEBHOOKS_MISSED.labels("acme", Provider.HUBSPOT)
    before = missed._value.get()
    await HubSpotChanges().poll(dataclasses.replace(poll, missed_webhook_grace_seconds=30.0))
    assert [(e.object_type, e.object_id) for e in queued] == [("invoice", "50"), ("invoice", "60"), ("invoice", "70")]
    assert missed._value.get() == before + 1

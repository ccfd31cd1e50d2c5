"""HubSpot invoice ↔ QBO Invoice. The side an invoice was created on is its master (the link's origin); the other
side holds a copy.

Totals, both ways: HubSpot's amount billed equals QBO's TotalAmt to the cent for every synced invoice. The lines
are converted by `_invoice_lines` (every QBO line type: items, bundles, discounts, shipping, descriptions, tax;
HubSpot line-item discounts and invoice-level discounts, fees and taxes). An invoice the other side cannot hold at
the same total is failing `not_representable` before anything is written; after every write the total the other side
computed is read back, and a difference is failing `total_mismatch` with both totals.

QBO → HubSpot (the default direction; filter: created after the setup date)
    A HubSpot invoice with `hs_invoice_billable=false` (billed outside HubSpot: no document, no emails), the QBO
    currency, invoice and due dates and memo, its line items (name, quantity, unit price, `hs_sku` and
    `hs_product_id` of the product with the item's link or SKU; bundle components, shipping, descriptions), a FIXED
    invoice discount per QBO discount line (association type 411) and a FIXED invoice tax of the tax QBO computed
    (415). It is associated with the customer's contact (its link, else the
    contact with the customer's email; neither → failing `customer_not_synced`) and that contact's primary company
    (none if it has none). Every QBO change rewrites only what differs. The HubSpot invoice is in the QBO invoice's
    currency (`CurrencyRef`, else the home currency); one the portal does not have is excluded (`other_currency`).
    The QBO id is kept in the unique invoice property `hsqbo_qbo_invoice_id`, so a crash after
    the create adopts the invoice instead of making a second one; line items are matched through the link, then by
    content, for the same reason. A QBO invoice hsqbo made from a HubSpot invoice (its PrivateNote names it) is never
    copied back, even when the apply that made it died before saving the link: that HubSpot invoice's apply adopts it.
    Balance: HubSpot computes `hs_amount_billed`/`hs_balance_due` from line items and payment records and lets no one
    write them. hsqbo does not fake payments: the status follows QBO — `paid` when the QBO Balance is 0, `open`
    otherwise, `voided` once voided (final) — and the payment records themselves are the payments rule's work.
    Voids propagate as status `voided`; a QBO delete also sets `voided` (HubSpot deletes only drafts, and a voided
    invoice keeps the record of what was billed); the link is then marked deleted. A void or delete event is a hint:
    the invoice read back from QBO decides.

HubSpot → QBO (two_way or hubspot_to_qbo; filter: created after the setup date; drafts never sync)
    The QBO invoice carries `hs_currency` as `CurrencyRef`, with QBO's exchange rate for its date when that is not
    the home currency; an invoice QBO cannot hold in its currency (multicurrency off, or a customer in another
    currency) is excluded (`other_currency`).
    CustomerRef from the contact's link, else the customer with the contact's email (neither → failing
    `customer_not_synced`). Lines are matched to items through the product link, then by SKU; unmatched lines go to
    the "Custom line item" item (`custom_line_item_name`, looked up by name, created once on `income_account`).
    Line-item and invoice discounts become QBO's one DiscountLineDetail (a fixed amount); invoice fees, and taxes
    unless QBO computes them, become lines on that same custom item.
    With `tax_code` every line carries that TaxCodeRef and QBO computes TxnTaxDetail (non-US VAT codes work), after
    the discount (`ApplyTaxAfterDiscount`) as HubSpot does; the HubSpot invoice must carry the same tax.
    `custom_fields` fill up to three QBO custom string fields from HubSpot properties. DocNumber is HubSpot's number;
    when QBO already uses it (6140) the invoice is created without one, so QBO numbers it, and HubSpot's number stays
    in PrivateNote. Every QBO write carries a deterministic requestid, and before creating, the DocNumber is looked
    up (an invoice whose PrivateNote names this HubSpot invoice is adopted), so no duplicate can appear.
    A date HubSpot lacks (invoice or due date) is no change: QBO keeps its TxnDate and DueDate.
    Dates: TxnDate/DueDate are days; hs_invoice_date/hs_due_date are written as midnight UTC of that day and read
    as that day, or, for any other instant, as its day in the portal's time zone (`_dates.py`).
    Updates flow to QBO only for invoices created in HubSpot. Edits made in QBO to such an invoice (lines, prices,
    tax, or anything else) are not synced back: the activity log says so; a QBO void still voids the HubSpot invoice.

Every write is a plan (`services/worker/_plan.py`), computed from what the rule read by the `plan_*` functions below
(each says its crash windows) and carried out by `_executor.carry_out`: the HubSpot copy made (`plan_hubspot_invoice`),
then brought to the QBO invoice, line items, discounts and tax included (`plan_hubspot_copy`, a second plan since its
line items are made associated with the copy); the QBO invoice made or adopted (`plan_qbo_invoice`), updated
(`plan_qbo_invoice_update`, its write intent saved first), voided; deletions both ways.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.worker import _fields
from services.worker._executor import carry_out
from services.worker._fields import FieldMap, Values
from services.worker._plan import (
    Alternative,
    Answer,
    Answered,
    ArchiveHubSpot,
    AsJson,
    AssociateInvoicePart,
    CheckInvoiceTotal,
    CreateHubSpot,
    CreateQboOneOf,
    Plan,
    Refusal,
    RequestId,
    SaveLink,
    Step,
    UpdateHubSpot,
    UpdateQbo,
    VoidQbo,
)
from services.worker.rules import GONE, Excluded, Failing, Hints, Outcome, hubspot_version, qbo_version, saw
from services.worker.rules import _currency as currencies
from services.worker.rules import _dates as dates
from services.worker.rules import _filters as filters
from services.worker.rules import _invoice_lines as lines
from services.worker.rules import _invoice_refs as refs
from services.worker.rules._invoice_lines import Adjustment, HubSpotLine, Line
from services.worker.rules._origin import OriginProperty, made_from
from shared import money
from shared.clients import HubSpotObject, NewAssociation, QboEntity
from shared.company import Company
from shared.connections import SyncContext
from shared.domain import Action, Direction, Kind, Provider
from shared.errors import NotFound
from shared.money import decimal
from shared.store import Link, LinkStatus
from shared.syncconfig import ConnectionSettings, InvoiceSettings

QBO_ID_PROPERTY = "hsqbo_qbo_invoice_id"  # unique HubSpot invoice property: the QBO invoice a copy was made from
INVOICE_ORIGIN = OriginProperty("invoices", QBO_ID_PROPERTY, "QuickBooks invoice id", "invoiceinformation")
INVOICE_TO_CONTACT = 177
INVOICE_TO_COMPANY = 179
LINE_ITEM_TO_INVOICE = 410
INVOICE_TO_ADJUSTMENT = {"discounts": 411, "fees": 413, "taxes": 415}  # HubSpot-defined (reference §4)
DOC_NUMBER_MAX = 21
COPY_PARTS = ["line_items", "discounts", "taxes"]  # what a HubSpot copy of a QBO invoice is made of
ALL_PARTS = ["contacts", "line_items", *INVOICE_TO_ADJUSTMENT]  # what a HubSpot invoice going to QBO is made of
VOIDED = "voided"
LINE_MAP = "line_items"  # link.synced key: QBO line key -> HubSpot line item id, as JSON
QBO_INTENT = "qbo_intent"  # link.synced key: what an update of the QBO invoice will leave (`_qbo_state`)


def _day(value: Any, portal_zone: ZoneInfo = dates.UTC) -> str | None:
    """A date in any form the APIs use ("2026-01-05", epoch ms, ISO datetime) as the day it means: midnight UTC is
    that day, any other instant its day in the HubSpot portal's zone (`_dates.hubspot_day`)."""
    cleaned = _fields.text(value)
    if cleaned is None:
        return None
    try:
        day = dates.hubspot_day(cleaned, portal_zone)
    except ValueError:
        return None
    return day.isoformat() if day is not None else None


HEADER = (
    FieldMap("invoice_date", "hs_invoice_date", "TxnDate", _day),
    FieldMap("due_date", "hs_due_date", "DueDate", _day),
    FieldMap("memo", "hs_comments", "CustomerMemo.value"),
)
DATE_PROPERTIES = frozenset({"hs_invoice_date", "hs_due_date"})


def _header(portal_zone: ZoneInfo) -> tuple[FieldMap, ...]:
    """HEADER, its dates read in the HubSpot portal's zone."""
    day = functools.partial(_day, portal_zone=portal_zone)
    return tuple(dataclasses.replace(m, canonical=day) if m.hubspot_property in DATE_PROPERTIES else m for m in HEADER)


def _hubspot_values(maps: list[FieldMap], values: Values) -> dict[str, str]:
    """HubSpot properties for header values; dates as epoch ms at 00:00 UTC of the day (a HubSpot date value)."""
    properties = _fields.to_hubspot(maps, values)
    for name in DATE_PROPERTIES & properties.keys():
        if properties[name]:
            properties[name] = dates.hubspot_date(dt.date.fromisoformat(properties[name]))
    return properties


def _is_voided(invoice: QboEntity) -> bool:
    """QBO has no void flag: a void zeroes the total and prefixes PrivateNote with "Voided"."""
    total = money.decimal(invoice.get("TotalAmt")) or money.ZERO
    return total == 0 and str(invoice.get("PrivateNote") or "").startswith("Voided")


def _qbo_status(invoice: QboEntity, hints: Hints, link: Link | None) -> str:
    # A "voided" hint is only a hint (webhooks are): the invoice just read says whether it is voided.
    if _is_voided(invoice) or (link is not None and link.synced.get("status") == VOIDED):
        return VOIDED
    return "paid" if (money.decimal(invoice.get("Balance")) or money.ZERO) == 0 else "open"


def _lines_hash(qbo_lines: Sequence[Mapping[str, Any]]) -> str:
    """What a QBO invoice's lines hold (items, quantities, prices, descriptions), as hashed on the link: of the lines
    read, or of the lines hsqbo writes (which read back the same)."""
    signature = lines.qbo_line_signature(qbo_lines, with_tax_code=False)
    return _fields.content_hash({"lines": orjson.dumps(signature).decode()})


def _marker(record: HubSpotObject) -> str:
    """PrivateNote of a QBO invoice made from a HubSpot invoice: finds it again, and keeps HubSpot's number."""
    return f"HubSpot invoice {record.properties.get('hs_number') or ''} (id {record.id})"


MARKER = re.compile(r"HubSpot invoice .* \(id (?P<id>\d+)\)")  # a `_marker`


def _claim(connection: str, link: Link | None, origin: Provider, hubspot_id: str | None, qbo_id: str | None) -> Link:
    """The link of a newly paired invoice: the source record's excluded/failing link if it has one."""
    if link is None:
        return Link(connection=connection, kind=Kind.INVOICE, origin=origin, hubspot_id=hubspot_id, qbo_id=qbo_id)
    return dataclasses.replace(link, origin=origin, hubspot_id=hubspot_id, qbo_id=qbo_id)


def _adjustment_kind(key: str) -> str | None:
    """The HubSpot object type of a line map key naming an invoice discount or tax (`_invoice_lines.hubspot_copy`)."""
    if key.startswith("discount:"):
        return "discounts"
    return "taxes" if key == lines.TAX_KEY else None


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotCopyRead:
    """The HubSpot copy of a QBO invoice as read: the invoice, its line items, its discounts and taxes (kind -> id ->
    record), and those of the link's line map a crashed run made but had not yet associated with it (same shape)."""

    record: HubSpotObject
    line_items: Mapping[str, Line]
    adjustments: Mapping[str, Mapping[str, Adjustment]]
    unassociated: Mapping[str, Mapping[str, Adjustment]]


class InvoiceRule:
    kind = Kind.INVOICE

    def settings(self, connection: ConnectionSettings) -> InvoiceSettings:
        return connection.invoices

    # --- QBO -> HubSpot ----------------------------------------------------------------------------------------------

    async def from_qbo(self, ctx: SyncContext, invoice_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.invoices
        link = await ctx.store.get_link(ctx.name, Kind.INVOICE, qbo_id=invoice_id)
        try:
            invoice = await ctx.qbo.read("Invoice", invoice_id)
        except NotFound:
            saw(GONE)
            return await self._deleted_in_qbo(ctx, settings, link)
        saw(qbo_version(invoice), invoice)
        if link is not None and link.qbo_written_sync_token == str(invoice.get("SyncToken")):
            return Outcome(Action.ECHO, link=link, detail="our own write")
        status = _qbo_status(invoice, hints, link)
        if link is not None and link.origin == Provider.HUBSPOT and link.hubspot_id is not None:
            if QBO_INTENT in link.synced:  # an update of ours whose link save was lost (`plan_qbo_invoice_update`)?
                maps = _fields.active_maps(_header((await ctx.company()).hubspot_zone), settings)
                if link.synced[QBO_INTENT] == _qbo_state(maps, settings.tax_code is not None, invoice):
                    return Outcome(Action.ECHO, link=link, detail="our own write (the update its intent names)")
            return await self._qbo_edit_of_hubspot_invoice(ctx, link, invoice, status)
        if link is not None and link.hubspot_id is not None:
            synced = link.qbo_version == str(invoice.get("SyncToken")) and link.status == LinkStatus.SYNCED
            if synced and not hints.get("drifted"):  # drifted: the HubSpot copy moved, not QBO (see _reconcile)
                return Outcome(Action.UNCHANGED, link=link, detail="this QuickBooks version is synced")
            try:
                record = await ctx.hubspot.get(
                    "invoices", link.hubspot_id, properties=self._properties(settings), associations=COPY_PARTS
                )
            except NotFound:
                return Outcome(Action.SKIPPED, link=link, detail="the linked HubSpot invoice was deleted")
            return await self._push_to_hubspot(ctx, settings, link, invoice, record, status, Action.UPDATED)

        if (marker := MARKER.fullmatch(str(invoice.get("PrivateNote") or ""))) is not None:
            # made by hsqbo from a HubSpot invoice whose apply died before saving the link: that invoice's next
            # apply adopts it (`plan_qbo_invoice`); a copy made here would be a second HubSpot invoice
            detail = f"made from HubSpot invoice {marker['id']}, whose sync links it"
            return Outcome(Action.SKIPPED, link=link, detail=detail)
        await filters.check_qbo(ctx, settings.qbo_to_hubspot, invoice)
        company = await ctx.company()
        currency = currencies.qbo_currency(invoice, company)
        currencies.check_hubspot_holds(currency, company, "invoice")
        if status == VOIDED:
            raise Excluded("voided before it synced", category="voided")
        lines.hubspot_copy(invoice, {}, {}, currency)  # not representable: failing before anything is written
        properties = self._properties(settings)
        found = await made_from(ctx, INVOICE_ORIGIN, invoice_id, properties)
        if found is not None:  # made by a run that crashed before recording the link
            record = await ctx.hubspot.get("invoices", found.id, properties=properties, associations=COPY_PARTS)
            claimed = _claim(ctx.name, link, Provider.QUICKBOOKS, record.id, invoice_id)
            return await self._push_to_hubspot(ctx, settings, claimed, invoice, record, status, Action.LINKED)
        contact_id = await refs.hubspot_contact(ctx, str(_fields.get_path(invoice, "CustomerRef.value")))
        company_id = await refs.primary_company(ctx, contact_id)
        maps = _fields.active_maps(_header(company.hubspot_zone), settings)
        plan = plan_hubspot_invoice(_claim(ctx.name, link, Provider.QUICKBOOKS, None, invoice_id), invoice, currency,
                                    maps, contact_id, company_id)  # fmt: skip
        made = await carry_out(ctx, plan)
        assert made.link is not None
        assert made.link.hubspot_id is not None
        [create] = [step for step in plan.steps if isinstance(step, CreateHubSpot)]
        record = HubSpotObject(made.link.hubspot_id, dict(create.properties), None, None)  # as created: no parts yet
        return await self._push_to_hubspot(ctx, settings, made.link, invoice, record, status, Action.CREATED)

    def _properties(self, settings: InvoiceSettings) -> list[str]:
        maps = _fields.active_maps(HEADER, settings)
        extra = ("hs_currency", "hs_invoice_status", "hs_invoice_billable", "hs_number", "hs_amount_billed",
                 QBO_ID_PROPERTY)  # fmt: skip
        return sorted({m.hubspot_property for m in maps} | set(extra) | set(settings.custom_fields.values()))

    async def _push_to_hubspot(
        self,
        ctx: SyncContext,
        settings: InvoiceSettings,
        link: Link,
        invoice: QboEntity,
        record: HubSpotObject,
        status: str,
        action: Action,
    ) -> Outcome:
        """Bring the HubSpot copy to the QBO invoice (`plan_hubspot_copy`), after reading its parts."""
        company = await ctx.company()
        maps = _fields.active_maps(_header(company.hubspot_zone), settings)
        copy, read = lines.HubSpotCopy({}, {}), HubSpotCopyRead(record, {}, {}, {})  # voided: no parts written
        if status != VOIDED and record.properties.get("hs_invoice_status") != VOIDED:
            item_ids = [
                str(item_id)
                for line in lines.item_lines(invoice)
                if (item_id := _fields.get_path(line, "SalesItemLineDetail.ItemRef.value"))
                and item_id != lines.SHIPPING_ITEM_ID
            ]
            skus = await refs.item_skus(ctx, item_ids)
            currency = currencies.qbo_currency(invoice, company)
            copy = lines.hubspot_copy(invoice, skus, await refs.products_for_items(ctx, skus), currency)
            read = await self._read_copy(ctx, record, orjson.loads(link.synced.get(LINE_MAP) or "{}"))
        return await carry_out(ctx, plan_hubspot_copy(link, invoice, status, action, maps, copy, read, ctx.clock()))

    async def _read_copy(self, ctx: SyncContext, record: HubSpotObject, known: Mapping[str, str]) -> HubSpotCopyRead:
        """The HubSpot copy's line items, discounts and taxes; and the discounts and taxes of the line map that are
        not associated with it (a run crashed between making one and associating it)."""
        items: dict[str, Line] = {}
        if ids := record.associations.get("line_items", []):
            batch = await ctx.hubspot.batch_read("line_items", ids, properties=lines.LINE_ITEM_PROPERTIES)
            items = {item.id: Line.from_hubspot(item.properties) for item in batch.results}
        associated: dict[str, dict[str, Adjustment]] = {}
        unassociated: dict[str, dict[str, Adjustment]] = {}
        for kind in ("discounts", "taxes"):
            ids = record.associations.get(kind, [])
            loose = sorted({i for key, i in known.items() if _adjustment_kind(key) == kind and i not in ids}, key=int)
            for found, wanted in ((associated, ids), (unassociated, loose)):
                if wanted:
                    batch = await ctx.hubspot.batch_read(kind, wanted, properties=lines.ADJUSTMENT_PROPERTIES)
                    found[kind] = {r.id: Adjustment.from_hubspot(kind, r.properties) for r in batch.results}
        return HubSpotCopyRead(record, items, associated, unassociated)

    async def _qbo_edit_of_hubspot_invoice(
        self, ctx: SyncContext, link: Link, invoice: QboEntity, status: str
    ) -> Outcome:
        """HubSpot is the master of invoices created there: a QBO edit is not synced back, except a void."""
        return await carry_out(ctx, plan_qbo_edit_of_hubspot_invoice(link, invoice, status))

    async def _deleted_in_qbo(self, ctx: SyncContext, settings: InvoiceSettings, link: Link | None) -> Outcome:
        if link is None or link.hubspot_id is None or link.status == LinkStatus.DELETED:
            return Outcome(Action.SKIPPED, detail="deleted in QuickBooks; nothing linked in HubSpot")
        status: str | None = None
        if settings.on_delete == "propagate":
            with contextlib.suppress(NotFound):
                record = await ctx.hubspot.get("invoices", link.hubspot_id, properties=["hs_invoice_status"])
                status = record.properties.get("hs_invoice_status")
        return await carry_out(ctx, plan_hubspot_invoice_deletion(settings, link, status))

    # --- HubSpot -> QBO ----------------------------------------------------------------------------------------------

    async def from_hubspot(self, ctx: SyncContext, invoice_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.invoices
        link = await ctx.store.get_link(ctx.name, Kind.INVOICE, hubspot_id=invoice_id)
        try:
            record = await ctx.hubspot.get(
                "invoices", invoice_id, properties=self._properties(settings), associations=ALL_PARTS
            )
        except NotFound:
            saw(GONE)
            return await self._deleted_in_hubspot(ctx, settings, link)
        saw(hubspot_version(record), record)
        if (link is not None and link.origin == Provider.QUICKBOOKS) or (
            link is None and record.properties.get(QBO_ID_PROPERTY)
        ):
            return Outcome(
                Action.SKIPPED, link=link, detail="created in QuickBooks, its master: HubSpot edits stay there"
            )
        status = record.properties.get("hs_invoice_status")
        if link is not None and link.qbo_id is not None:
            try:
                invoice = await ctx.qbo.read("Invoice", link.qbo_id)
            except NotFound:
                return Outcome(Action.SKIPPED, link=link, detail="the linked QuickBooks invoice was deleted")
            if status == VOIDED:
                return await self._void_in_qbo(ctx, link, invoice, "voided in HubSpot")
            return await self._push_to_qbo(ctx, settings, link, record, invoice)

        await filters.check_hubspot(ctx, settings.hubspot_to_qbo, record)
        if status in ("draft", None):
            raise Excluded("draft invoices do not sync", category="draft")
        if status == VOIDED:
            raise Excluded("voided before it synced", category="voided")
        company = await ctx.company()
        currency = currencies.hubspot_currency(record.properties.get("hs_currency"), company)
        currencies.check_qbo_holds(currency, company, "invoice")
        body = await self._qbo_body(ctx, settings, record)
        body.update(await _qbo_currency_fields(ctx, company, currency, body))
        return await self._create_in_qbo(ctx, record, body, link)

    async def _qbo_body(self, ctx: SyncContext, settings: InvoiceSettings, record: HubSpotObject) -> dict[str, Any]:
        """The QBO fields hsqbo sets from a HubSpot invoice (no Id/SyncToken/DocNumber)."""
        customer_id = await refs.qbo_customer(ctx, record.associations.get("contacts", []))
        ids = sorted(record.associations.get("line_items", []), key=int)
        if not ids:
            raise Failing("the HubSpot invoice has no line items", category="no_line_items")
        batch = await ctx.hubspot.batch_read("line_items", ids, properties=lines.LINE_ITEM_PROPERTIES)
        by_id = {item.id: item.properties for item in batch.results}
        read = [by_id[i] for i in ids if i in by_id]
        ordered = [Line.from_hubspot(properties) for properties in read]
        adjustments = await self._adjustments(ctx, record)
        items = await refs.items_for_lines(ctx, [line.product_id for line in ordered], [line.sku for line in ordered])
        tax_code = await refs.tax_code(ctx, settings)
        custom: str | None = None
        if None in items or any(a.kind == "fees" or (a.kind == "taxes" and not tax_code) for a in adjustments):
            custom = str(await refs.custom_line_item(ctx, settings))
            items = [item or custom for item in items]
        company = await ctx.company()
        currency = currencies.hubspot_currency(record.properties.get("hs_currency"), company)
        hubspot_lines = [
            HubSpotLine(line, str(item), decimal(properties.get("amount")))
            for line, item, properties in zip(ordered, items, read, strict=True)
        ]
        billed = decimal(record.properties.get("hs_amount_billed"))
        qbo_lines = lines.qbo_lines(
            hubspot_lines, adjustments, billed, adjustment_item=custom, tax_code=tax_code, currency=currency
        )
        maps = _fields.active_maps(_header(company.hubspot_zone), settings)
        header = {k: v for k, v in _fields.to_qbo(maps, _fields.from_hubspot(maps, record.properties)).items() if v}
        body: dict[str, Any] = {**header, "CustomerRef": {"value": customer_id}, "Line": qbo_lines}
        if tax_code and any(line["DetailType"] == "DiscountLineDetail" for line in qbo_lines):
            body["ApplyTaxAfterDiscount"] = True  # HubSpot taxes what is left after its discounts
        custom_fields = [
            {"DefinitionId": definition, "Type": "StringType", "StringValue": value}
            for definition, name in sorted(settings.custom_fields.items())
            if (value := _fields.text(record.properties.get(name)))
        ]
        if custom_fields:
            body["CustomField"] = custom_fields
        return body

    async def _adjustments(self, ctx: SyncContext, record: HubSpotObject) -> list[Adjustment]:
        """The invoice's discount, fee and tax objects, each kind in HubSpot's order (sort order, then id)."""
        found: list[Adjustment] = []
        for kind in lines.ADJUSTMENT_KINDS:
            ids = sorted(record.associations.get(kind, []), key=int)
            if not ids:
                continue
            batch = await ctx.hubspot.batch_read(kind, ids, properties=lines.ADJUSTMENT_PROPERTIES)
            ordered = sorted(batch.results, key=lambda r: (decimal(r.properties.get("hs_sort_order")) or 0, int(r.id)))
            found += [Adjustment.from_hubspot(kind, r.properties) for r in ordered]  # type: ignore[arg-type]
        return found

    async def _create_in_qbo(
        self, ctx: SyncContext, record: HubSpotObject, body: dict[str, Any], link: Link | None
    ) -> Outcome:
        """Create the QBO invoice once (`plan_qbo_invoice`), or adopt one a crashed run made (same DocNumber,
        PrivateNote naming this invoice)."""
        number = _fields.text(record.properties.get("hs_number"))
        adopted: QboEntity | None = None
        if number is not None and len(number) <= DOC_NUMBER_MAX:
            found = await ctx.qbo.find("Invoice", "DocNumber", number)  # concurrent applies' in one query
            adopted = next((invoice for invoice in found if invoice.get("PrivateNote") == _marker(record)), None)
        else:
            number = None
        return await carry_out(ctx, plan_qbo_invoice(link, record, body, number, adopted, ctx.name, ctx.clock()))

    async def _push_to_qbo(
        self, ctx: SyncContext, settings: InvoiceSettings, link: Link, record: HubSpotObject, invoice: QboEntity
    ) -> Outcome:
        """Bring the QBO invoice made from a HubSpot invoice to it (`plan_qbo_invoice_update`)."""
        assert link.qbo_id is not None
        body = await self._qbo_body(ctx, settings, record)
        maps = _fields.active_maps(_header((await ctx.company()).hubspot_zone), settings)
        request_id = ctx.request_id("Invoice", link.qbo_id, "update", str(invoice["SyncToken"]), link=link)
        plan = plan_qbo_invoice_update(link, record, invoice, body, maps, settings.tax_code is not None, request_id,
                                       ctx.clock())  # fmt: skip
        return await carry_out(ctx, plan)

    async def _void_in_qbo(self, ctx: SyncContext, link: Link, invoice: QboEntity, why: str) -> Outcome:
        assert link.qbo_id is not None
        request_id = ctx.request_id("Invoice", link.qbo_id, "void", str(invoice["SyncToken"]), link=link)
        return await carry_out(ctx, plan_qbo_invoice_void(link, invoice, why, request_id))

    async def _deleted_in_hubspot(self, ctx: SyncContext, settings: InvoiceSettings, link: Link | None) -> Outcome:
        """Never delete accounting data: a HubSpot-made invoice deleted in HubSpot is voided in QBO (propagate)."""
        if link is None or link.qbo_id is None or link.status == LinkStatus.DELETED:
            return Outcome(Action.SKIPPED, detail="deleted in HubSpot; nothing linked in QuickBooks")
        invoice: QboEntity | None = None
        request_id = ""
        if link.origin == Provider.HUBSPOT and settings.on_delete == "propagate":
            with contextlib.suppress(NotFound):
                invoice = await ctx.qbo.read("Invoice", link.qbo_id)
                request_id = ctx.request_id("Invoice", link.qbo_id, "void", str(invoice["SyncToken"]), link=link)
        return await carry_out(ctx, plan_qbo_invoice_deletion(link, invoice, request_id))


# --- plans (see services/worker/_plan.py) ---------------------------------------------------------------------------


def plan_hubspot_invoice(
    link: Link, invoice: QboEntity, currency: str, maps: list[FieldMap], contact_id: str, company_id: str | None
) -> Plan:
    """The HubSpot copy of a new QBO invoice created (a draft with its header, contact and company: its line items
    need its id, so they are the next plan's, `plan_hubspot_copy`) and the link naming it. The copy carries the QBO
    id in its unique `QBO_ID_PROPERTY`: after a crash before the link save, the next apply finds it by that property
    and adopts it (`made_from`) instead of making a second one."""
    associations = [NewAssociation(contact_id, INVOICE_TO_CONTACT)]
    if company_id is not None:
        associations.append(NewAssociation(company_id, INVOICE_TO_COMPANY))
    values = {k: v for k, v in _hubspot_values(maps, _fields.from_qbo(maps, invoice)).items() if v}
    values.update({"hs_currency": currency, "hs_invoice_billable": "false", QBO_ID_PROPERTY: str(invoice["Id"])})
    steps = (
        CreateHubSpot("invoices", values, tuple(associations)),
        SaveLink({"hubspot_id": Answered(Answer.HUBSPOT_ID)}),
    )
    return Plan(link, steps, Action.CREATED, Direction.QBO_TO_HUBSPOT)


def plan_hubspot_copy(
    link: Link,
    invoice: QboEntity,
    status: str,
    action: Action,
    maps: list[FieldMap],
    copy: lines.HubSpotCopy,
    read: HubSpotCopyRead,
    now: float,
) -> Plan:
    """The HubSpot copy brought to the QBO invoice: its line items (updated, created associated with it, archived),
    its discounts and tax, then its header and status (HubSpot opens an invoice only once it has line items), then
    the link with the line map (QBO line key -> HubSpot id) and what HubSpot computed checked against QBO's total.
    Only what differs is written; a voided copy is final.

    Crash windows: line items made but the link not saved: the next plan finds them on the invoice, identical to
    what it wants, and keeps them (`_invoice_lines.plan_records`); a discount or tax made but not yet associated
    (HubSpot associates these from the invoice's side only, a second call): the link's line map names it before the
    association, so the next plan reads it (`HubSpotCopyRead.unassociated`) and associates it, or archives it when no
    longer wanted; any other write is idempotent, and the re-run only finds less to do."""
    assert link.hubspot_id is not None
    invoice_id, record = link.hubspot_id, read.record
    known: dict[str, str] = orjson.loads(link.synced.get(LINE_MAP) or "{}")
    current_status = record.properties.get("hs_invoice_status")
    seen = hubspot_version(record) or link.hubspot_version
    steps: list[Step] = []
    mapping: dict[str, str | Answered] = dict(known)
    wrote: list[str] = []
    version: str | Answered | None = seen
    if current_status == VOIDED:
        status = VOIDED
    else:
        changes: dict[str, str] = {}
        if status != VOIDED:  # a void zeroes QBO's lines: HubSpot keeps what was billed
            wanted = _fields.from_qbo(maps, invoice)
            changes = _hubspot_values(maps, _fields.changed(wanted, _fields.from_hubspot(maps, record.properties)))
            mapping, writes = _part_steps(link, invoice_id, known, copy, read, steps)
            wrote += [f"{writes} line items, discounts and taxes"] if writes else []
        if status != current_status:
            changes["hs_invoice_status"] = status
        if changes:
            steps.append(UpdateHubSpot("invoices", invoice_id, changes, label="invoice"))
            version = Answered(Answer.HUBSPOT_UPDATED_AT, seen, "invoice")
            wrote += sorted(changes)
    steps.append(SaveLink({
        "synced": {**link.synced, LINE_MAP: AsJson(mapping), "status": status},
        "qbo_version": str(invoice.get("SyncToken")), "qbo_hash": _lines_hash(invoice.get("Line") or []),
        "hubspot_version": version, "last_synced_at": now, "status": LinkStatus.SYNCED, "error_category": None,
        "error_message": None,
    }))  # fmt: skip
    if status != VOIDED and (wrote or link.status != LinkStatus.SYNCED):
        steps.append(CheckInvoiceTotal(decimal(invoice.get("TotalAmt")), hubspot_invoice_id=invoice_id, label="total"))
        if wrote:  # HubSpot recomputed the invoice's amounts: a version of our making
            steps.append(SaveLink({"hubspot_version": Answered(Answer.HUBSPOT_UPDATED_AT, seen, "total")}))
    if not wrote and action == Action.UPDATED:
        return Plan(link, tuple(steps), Action.UNCHANGED)
    return Plan(link, tuple(steps), action, Direction.QBO_TO_HUBSPOT, "wrote: " + ", ".join(wrote) if wrote else "")


def _part_steps(
    link: Link, invoice_id: str, known: Mapping[str, str], copy: lines.HubSpotCopy, read: HubSpotCopyRead,
    steps: list[Step],
) -> tuple[dict[str, str | Answered], int]:  # fmt: skip
    """The writes bringing the copy's line items, discounts and tax to `copy` (appended to `steps`): the new line map
    and how many records they write."""
    mapping: dict[str, str | Answered] = {}
    plan = lines.plan_line_items(copy.line_items, read.line_items, known)
    steps += [UpdateHubSpot("line_items", item_id, line.hubspot_properties()) for item_id, line in plan.update.items()]
    mapping.update(plan.kept)
    for key, line in plan.create.items():
        label = f"line_items:{key}"
        association = NewAssociation(invoice_id, LINE_ITEM_TO_INVOICE)  # made with the line item: one call
        steps.append(CreateHubSpot("line_items", line.hubspot_properties(), (association,), label))
        mapping[key] = Answered(Answer.HUBSPOT_ID, label=label)
    steps += [ArchiveHubSpot("line_items", item_id) for item_id in plan.archive]
    writes = len(plan.update) + len(plan.create) + len(plan.archive)
    for kind in ("discounts", "taxes"):
        wanted = {key: a for key, a in copy.adjustments.items() if a.kind == kind}
        associated, loose = read.adjustments.get(kind, {}), read.unassociated.get(kind, {})
        if not wanted and not associated and not loose:
            continue
        type_id = INVOICE_TO_ADJUSTMENT[kind]
        records = lines.plan_records(wanted, {**associated, **loose}, known)
        steps += [UpdateHubSpot(kind, i, adjustment.hubspot_properties()) for i, adjustment in records.update.items()]
        mapping.update(records.kept)
        steps += [AssociateInvoicePart(invoice_id, kind, i, type_id) for i in records.kept.values() if i in loose]
        for key, adjustment in records.create.items():
            label = f"{kind}:{key}"
            made = Answered(Answer.HUBSPOT_ID, label=label)
            mapping[key] = made
            steps += [
                CreateHubSpot(kind, adjustment.hubspot_properties(), label=label),
                SaveLink(
                    {"synced": {**link.synced, LINE_MAP: AsJson({**known, **mapping})}}
                ),  # named before associated
                AssociateInvoicePart(invoice_id, kind, made, type_id),
            ]
        steps += [ArchiveHubSpot(kind, i) for i in records.archive]
        associating = sum(1 for i in records.kept.values() if i in loose)
        writes += len(records.update) + len(records.create) + len(records.archive) + associating
    return mapping, writes


def plan_qbo_invoice(
    link: Link | None,
    record: HubSpotObject,
    body: Mapping[str, Any],
    number: str | None,
    adopted: QboEntity | None,
    connection: str,
    now: float,
) -> Plan:
    """The QBO invoice of a HubSpot invoice created (`body`, PrivateNote naming the HubSpot invoice; DocNumber
    `number`, or none when QBO refuses it as taken or there is none: QBO numbers it), or `adopted` (found by its
    DocNumber and PrivateNote: made by a run that crashed before saving the link), then the link naming its
    SyncToken (the echo of our write), then QBO's total checked against HubSpot's amount billed. A crash after the
    create: the re-run's `requestid`s are the same (the link has not moved), so QBO replays its answers; and the
    DocNumber look-up adopts it."""
    base = _claim(connection, link, Provider.HUBSPOT, record.id, None)
    billed = decimal(record.properties.get("hs_amount_billed"))
    settled: dict[str, Any] = {
        "hubspot_version": hubspot_version(record) or base.hubspot_version, "last_synced_at": now,
        "status": LinkStatus.SYNCED, "error_category": None, "error_message": None,
    }  # fmt: skip
    if adopted is not None:
        token = str(adopted["SyncToken"])
        saved = {**settled, "qbo_id": str(adopted["Id"]), "qbo_version": token, "qbo_written_sync_token": token,
                 "qbo_hash": _lines_hash(adopted.get("Line") or [])}  # fmt: skip
        steps: tuple[Step, ...] = (SaveLink(saved), CheckInvoiceTotal(billed, decimal(adopted.get("TotalAmt"))))
        return Plan(base, steps, Action.LINKED, Direction.HUBSPOT_TO_QBO)
    numbered_by_qbo = Alternative({"DocNumber": None}, RequestId(("Invoice", "create", record.id, "numbered-by-qbo")))
    alternatives: tuple[Alternative, ...] = (numbered_by_qbo,)
    if number is not None:
        alternatives = (Alternative({"DocNumber": number}, RequestId(("Invoice", "create", record.id, number))),
                        numbered_by_qbo)  # fmt: skip
    written = {**body, "PrivateNote": _marker(record)}
    create = CreateQboOneOf("Invoice", written, alternatives, Refusal.DUPLICATE_DOC_NUMBER)
    answered = Answered(Answer.QBO_SYNC_TOKEN)
    saved = {**settled, "qbo_id": Answered(Answer.QBO_ID), "qbo_version": answered,
             "qbo_written_sync_token": answered, "qbo_hash": _lines_hash(body["Line"])}  # fmt: skip
    steps = (create, SaveLink(saved), CheckInvoiceTotal(billed, Answered(Answer.QBO_TOTAL)))
    return Plan(base, steps, Action.CREATED, Direction.HUBSPOT_TO_QBO)


def plan_qbo_invoice_update(
    link: Link,
    record: HubSpotObject,
    invoice: QboEntity,
    body: Mapping[str, Any],
    maps: list[FieldMap],
    with_tax: bool,
    request_id: str,
    now: float,
) -> Plan:
    """The QBO invoice made from a HubSpot invoice brought to it (`body`): the write intent (what the invoice will
    read after the update, `QBO_INTENT`), a sparse update of what differs, the link naming its SyncToken (the echo of
    our write), then QBO's total checked against HubSpot's amount billed. A crash after the update: the re-run finds
    nothing to change and, the invoice being what the intent names, takes it for our write (QBO's echo of it is
    ours, never an edit made there)."""
    assert link.qbo_id is not None
    changed: dict[str, Any] = {}
    current_lines = lines.qbo_line_signature(invoice.get("Line") or [], with_tax_code=with_tax)
    if lines.qbo_line_signature(body["Line"], with_tax_code=with_tax) != current_lines:
        changed["Line"] = body["Line"]
    if body.get("ApplyTaxAfterDiscount") and not invoice.get("ApplyTaxAfterDiscount"):
        changed["ApplyTaxAfterDiscount"] = True
    if str(_fields.get_path(invoice, "CustomerRef.value")) != body["CustomerRef"]["value"]:
        changed["CustomerRef"] = body["CustomerRef"]
    header = _fields.changed(_fields.from_hubspot(maps, record.properties), _fields.from_qbo(maps, invoice))
    # QBO fills a missing due date from the terms and a missing TxnDate with the day of the write: a date
    # HubSpot lacks is no change (writing none would rewrite QBO's on every apply).
    for date in ("invoice_date", "due_date"):
        if date in header and header[date] is None:
            del header[date]
    changed.update(_fields.to_qbo(maps, header, invoice))
    current_fields = {f.get("DefinitionId"): f.get("StringValue") for f in invoice.get("CustomField") or ()}
    if any(current_fields.get(f["DefinitionId"]) != f["StringValue"] for f in body.get("CustomField", ())):
        changed["CustomField"] = body["CustomField"]
    billed = decimal(record.properties.get("hs_amount_billed"))
    synced = {key: value for key, value in link.synced.items() if key != QBO_INTENT}
    settled: dict[str, Any] = {
        "synced": synced, "hubspot_version": hubspot_version(record) or link.hubspot_version, "last_synced_at": now,
        "status": LinkStatus.SYNCED, "error_category": None, "error_message": None,
    }  # fmt: skip
    if not changed:
        token = str(invoice.get("SyncToken"))
        saved = {**settled, "qbo_version": token, "qbo_hash": _lines_hash(invoice.get("Line") or [])}
        if link.synced.get(QBO_INTENT) == _qbo_state(maps, with_tax, invoice) and token != link.qbo_version:
            saved["qbo_written_sync_token"] = token  # our update, its link save lost: QBO's echo of it is ours
        steps: tuple[Step, ...] = (SaveLink(saved), CheckInvoiceTotal(billed, decimal(invoice.get("TotalAmt"))))
        return Plan(link, steps, Action.UNCHANGED)
    answered = Answered(Answer.QBO_SYNC_TOKEN)
    update = {"Id": link.qbo_id, "SyncToken": invoice["SyncToken"], **changed}
    intent = SaveLink({"synced": {**link.synced, QBO_INTENT: _qbo_state(maps, with_tax, {**invoice, **changed})}})
    saved = {**settled, "qbo_version": answered, "qbo_written_sync_token": answered,
             "qbo_hash": _lines_hash(body["Line"])}  # fmt: skip
    steps = (intent, UpdateQbo("Invoice", update, request_id), SaveLink(saved),
             CheckInvoiceTotal(billed, Answered(Answer.QBO_TOTAL)))  # fmt: skip
    return Plan(link, steps, Action.UPDATED, Direction.HUBSPOT_TO_QBO, "fields: " + ", ".join(sorted(changed)))


def _qbo_state(maps: list[FieldMap], with_tax: bool, invoice: Mapping[str, Any]) -> str:
    """A hash of what hsqbo sets on a QBO invoice (lines, customer, header, custom fields), as read or as it will
    read after an update: the write intent `plan_qbo_invoice_update` records before updating."""
    signature = lines.qbo_line_signature(invoice.get("Line") or [], with_tax_code=with_tax)
    custom = sorted((str(f.get("DefinitionId")), str(f.get("StringValue"))) for f in invoice.get("CustomField") or ()
                    if f.get("StringValue"))  # fmt: skip
    state = {
        "lines": signature, "customer": _fields.get_path(invoice, "CustomerRef.value"), "custom": custom,
        "header": _fields.from_qbo(maps, invoice), "after_discount": bool(invoice.get("ApplyTaxAfterDiscount")),
    }  # fmt: skip
    return _fields.content_hash({"state": orjson.dumps(state, default=str).decode()})


def plan_qbo_edit_of_hubspot_invoice(link: Link, invoice: QboEntity, status: str) -> Plan:
    """A QBO edit of an invoice made in HubSpot: not synced back, except a void, once (the HubSpot invoice voided,
    unless deleted there meanwhile). A crash before the link save: the re-run voids it again, which changes nothing."""
    assert link.hubspot_id is not None
    if status == VOIDED and link.synced.get("status") != VOIDED:
        changes = {"synced": {**link.synced, "status": VOIDED}, "qbo_version": str(invoice["SyncToken"])}
        steps = (UpdateHubSpot("invoices", link.hubspot_id, {"hs_invoice_status": VOIDED}, gone_ok=True),
                 SaveLink(changes))  # fmt: skip
        return Plan(link, steps, Action.VOIDED, Direction.QBO_TO_HUBSPOT, "voided in QuickBooks")
    what = "its lines, prices or tax" if _lines_hash(invoice.get("Line") or []) != link.qbo_hash else "it"
    detail = f"edited {what} in QuickBooks; not synced back: the invoice was created in HubSpot, which stays its "
    return Plan(link, (), Action.SKIPPED, detail=detail + "master (edit it there)")


def plan_hubspot_invoice_deletion(settings: InvoiceSettings, link: Link, status: str | None) -> Plan:
    """The QBO invoice was deleted: its HubSpot invoice (`status`: as read, None if gone or not read) archived while
    a draft, else voided, and the link deleted. A crash before the link save: the re-run reads it archived or voided
    and only saves the link."""
    assert link.hubspot_id is not None
    steps: list[Step] = []
    if status == "draft":
        steps.append(ArchiveHubSpot("invoices", link.hubspot_id))
    elif status is not None and status != VOIDED:
        steps.append(UpdateHubSpot("invoices", link.hubspot_id, {"hs_invoice_status": VOIDED}, gone_ok=True))
    steps.append(SaveLink({"status": LinkStatus.DELETED}))
    detail = "HubSpot invoice voided" if settings.on_delete == "propagate" else "on_delete=ignore"
    return Plan(link, tuple(steps), Action.DELETED, Direction.QBO_TO_HUBSPOT, detail)


def plan_qbo_invoice_void(link: Link, invoice: QboEntity, why: str, request_id: str) -> Plan:
    """The QBO invoice (as read) voided, once, and the link naming the SyncToken of our void (its echo). A crash
    before the link save: the re-run reads it voided and only saves the link."""
    assert link.qbo_id is not None
    steps: list[Step] = []
    token: str | Answered = str(invoice["SyncToken"])
    if not _is_voided(invoice):
        steps.append(VoidQbo("Invoice", link.qbo_id, str(invoice["SyncToken"]), request_id))
        token = Answered(Answer.QBO_SYNC_TOKEN)
    steps.append(SaveLink({"synced": {**link.synced, "status": VOIDED}, "qbo_version": token,
                           "qbo_written_sync_token": token}))  # fmt: skip
    return Plan(link, tuple(steps), Action.VOIDED, Direction.HUBSPOT_TO_QBO, why)


def plan_qbo_invoice_deletion(link: Link, invoice: QboEntity | None, request_id: str) -> Plan:
    """A HubSpot invoice deleted: its QBO invoice (`invoice`: as read; None when not voided: made in QBO, gone, or
    on_delete=ignore) voided (never deleted: accounting data), then the link deleted."""
    voiding = plan_qbo_invoice_void(link, invoice, "deleted in HubSpot", request_id).steps if invoice else ()
    steps = (*voiding, SaveLink({"status": LinkStatus.DELETED}))
    return Plan(link, steps, Action.DELETED, Direction.HUBSPOT_TO_QBO, "QuickBooks invoice voided")


async def _qbo_currency_fields(
    ctx: SyncContext, company: Company, currency: str, body: dict[str, Any]
) -> dict[str, Any]:
    """CurrencyRef (and ExchangeRate: QBO's rate on the invoice date) of a new QBO invoice in `currency`; excluded
    when its customer is in another currency (multicurrency companies give each customer one)."""
    rate = None
    if company.qbo.multicurrency:
        customer = await ctx.qbo.read("Customer", str(body["CustomerRef"]["value"]))
        currencies.check_customer_currency(currency, customer, company, "invoice")
    if currency != company.home_currency:
        day = body.get("TxnDate")  # without one QBO dates the invoice today, in the company's zone
        on = (
            dt.date.fromisoformat(str(day))
            if day
            else dates.day_in(dt.datetime.fromtimestamp(ctx.clock(), dt.UTC), company.qbo_zone)
        )
        rate = await ctx.qbo.exchange_rate(currency, on)
    return currencies.qbo_currency_fields(currency, company, rate)

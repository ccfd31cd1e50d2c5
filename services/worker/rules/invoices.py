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
    content, for the same reason.
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
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from services.worker import _fields
from services.worker._executor import carry_out
from services.worker._fields import FieldMap, Values
from services.worker._plan import Answer, Answered, ArchiveHubSpot, Plan, SaveLink, Step, UpdateHubSpot, VoidQbo
from services.worker.rules import GONE, Excluded, Failing, Hints, Outcome, hubspot_version, qbo_version, saw
from services.worker.rules import _currency as currencies
from services.worker.rules import _dates as dates
from services.worker.rules import _filters as filters
from services.worker.rules import _invoice_lines as lines
from services.worker.rules import _invoice_refs as refs
from services.worker.rules._invoice_lines import Adjustment, HubSpotLine, Line
from services.worker.rules._origin import OriginProperty, made_from
from shared import money
from shared.clients import HubSpotObject, NewAssociation, QboEntity, qbo_quote
from shared.company import Company
from shared.connections import SyncContext
from shared.domain import Action, Direction, Kind, Provider
from shared.errors import DuplicateDocNumber, NotFound
from shared.money import decimal, plain
from shared.store import Link, LinkStatus
from shared.syncconfig import ConnectionSettings, InvoiceSettings

QBO_ID_PROPERTY = "hsqbo_qbo_invoice_id"  # unique HubSpot invoice property: the QBO invoice a copy was made from
INVOICE_ORIGIN = OriginProperty("invoices", QBO_ID_PROPERTY, "QuickBooks invoice id", "invoiceinformation")
INVOICE_TO_CONTACT = 177
INVOICE_TO_COMPANY = 179
LINE_ITEM_TO_INVOICE = 410
INVOICE_TO_ADJUSTMENT = {"discounts": 411, "fees": 413, "taxes": 415}  # HubSpot-defined (reference §4)
TOTAL_MISMATCH = "total_mismatch"
DOC_NUMBER_MAX = 21
COPY_PARTS = ["line_items", "discounts", "taxes"]  # what a HubSpot copy of a QBO invoice is made of
ALL_PARTS = ["contacts", "line_items", *INVOICE_TO_ADJUSTMENT]  # what a HubSpot invoice going to QBO is made of
VOIDED = "voided"
LINE_MAP = "line_items"  # link.synced key: QBO line key -> HubSpot line item id, as JSON


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


def _lines_hash(invoice: QboEntity) -> str:
    signature = lines.qbo_line_signature(invoice.get("Line") or [], with_tax_code=True)
    tax = _fields.number(_fields.get_path(invoice, "TxnTaxDetail.TotalTax"))
    return _fields.content_hash({"lines": orjson.dumps(signature).decode(), "tax": tax})


def _marker(record: HubSpotObject) -> str:
    """PrivateNote of a QBO invoice made from a HubSpot invoice: finds it again, and keeps HubSpot's number."""
    return f"HubSpot invoice {record.properties.get('hs_number') or ''} (id {record.id})"


def _claim(ctx: SyncContext, link: Link | None, origin: Provider, hubspot_id: str, qbo_id: str) -> Link:
    """The link of a newly paired invoice: the source record's excluded/failing link if it has one."""
    if link is None:
        return Link(connection=ctx.name, kind=Kind.INVOICE, origin=origin, hubspot_id=hubspot_id, qbo_id=qbo_id)
    return dataclasses.replace(link, origin=origin, hubspot_id=hubspot_id, qbo_id=qbo_id)


def _check_qbo_total(record: HubSpotObject, invoice: QboEntity) -> None:
    """What QBO computed must be HubSpot's amount billed to the cent; else the record is failing with both."""
    billed = decimal(record.properties.get("hs_amount_billed"))
    total = decimal(invoice.get("TotalAmt"))
    if billed is not None and billed != total:
        raise Failing(
            f"QuickBooks totals {plain(total) if total is not None else 'nothing'} for the HubSpot invoice billing "
            f"{plain(billed)}",
            category=TOTAL_MISMATCH,
        )


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

        await filters.check_qbo(ctx, settings.qbo_to_hubspot, invoice)
        company = await ctx.company()
        currency = currencies.qbo_currency(invoice, company)
        currencies.check_hubspot_holds(currency, company, "invoice")
        if status == VOIDED:
            raise Excluded("voided before it synced", category="voided")
        lines.hubspot_copy(invoice, {}, {}, currency)  # not representable: failing before anything is written
        record, action = await self._create_in_hubspot(ctx, settings, invoice, currency)
        link = await ctx.store.save_link(_claim(ctx, link, Provider.QUICKBOOKS, record.id, invoice_id))
        return await self._push_to_hubspot(ctx, settings, link, invoice, record, status, action)

    def _properties(self, settings: InvoiceSettings) -> list[str]:
        maps = _fields.active_maps(HEADER, settings)
        extra = ("hs_currency", "hs_invoice_status", "hs_invoice_billable", "hs_number", "hs_amount_billed",
                 QBO_ID_PROPERTY)  # fmt: skip
        return sorted({m.hubspot_property for m in maps} | set(extra) | set(settings.custom_fields.values()))

    async def _create_in_hubspot(
        self, ctx: SyncContext, settings: InvoiceSettings, invoice: QboEntity, currency: str
    ) -> tuple[HubSpotObject, Action]:
        """The HubSpot copy of a QBO invoice: adopted if a crashed run made it, else created with its associations."""
        properties = self._properties(settings)
        invoice_id = str(invoice["Id"])
        found = await made_from(ctx, INVOICE_ORIGIN, invoice_id, properties)
        if found is not None:
            return await ctx.hubspot.get("invoices", found.id, properties=properties, associations=COPY_PARTS), (
                Action.LINKED
            )
        contact_id = await refs.hubspot_contact(ctx, str(_fields.get_path(invoice, "CustomerRef.value")))
        company_id = await refs.primary_company(ctx, contact_id)
        associations = [NewAssociation(contact_id, INVOICE_TO_CONTACT)]
        if company_id is not None:
            associations.append(NewAssociation(company_id, INVOICE_TO_COMPANY))
        maps = _fields.active_maps(_header((await ctx.company()).hubspot_zone), settings)
        values = {k: v for k, v in _hubspot_values(maps, _fields.from_qbo(maps, invoice)).items() if v}
        values.update({"hs_currency": currency, "hs_invoice_billable": "false", QBO_ID_PROPERTY: invoice_id})
        created = await ctx.hubspot.create("invoices", values, associations=associations)
        return created, Action.CREATED

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
        """Bring the HubSpot copy to the QBO invoice: header fields, line items, status; only what differs."""
        assert link.hubspot_id is not None
        wrote: list[str] = []
        line_map: dict[str, str] = orjson.loads(link.synced.get(LINE_MAP) or "{}")
        current_status = record.properties.get("hs_invoice_status")
        if current_status == VOIDED:
            return await self._save_qbo_origin(ctx, link, invoice, line_map, VOIDED, action, wrote)
        changes: dict[str, str] = {}
        if status != VOIDED:  # a void zeroes QBO's lines: HubSpot keeps what was billed
            maps = _fields.active_maps(_header((await ctx.company()).hubspot_zone), settings)
            wanted = _fields.from_qbo(maps, invoice)
            changes = _hubspot_values(maps, _fields.changed(wanted, _fields.from_hubspot(maps, record.properties)))
            line_map, line_writes = await self._sync_line_items(ctx, link.hubspot_id, invoice, record, line_map)
            wrote += line_writes
        if status != current_status:
            changes["hs_invoice_status"] = status
        seen = hubspot_version(record)
        if changes:
            seen = hubspot_version(await ctx.hubspot.update("invoices", link.hubspot_id, changes))
            wrote += sorted(changes)
        elif wrote:  # line items written: HubSpot recomputed the invoice's amounts, a version of our making
            seen = hubspot_version(await ctx.hubspot.get("invoices", link.hubspot_id, properties=["hs_invoice_status"]))
        link = dataclasses.replace(link, hubspot_version=seen or link.hubspot_version)
        outcome = await self._save_qbo_origin(ctx, link, invoice, line_map, status, action, wrote)
        if status != VOIDED and (wrote or link.status != LinkStatus.SYNCED):
            await self._check_hubspot_total(ctx, record.id, invoice)
        return outcome

    async def _check_hubspot_total(self, ctx: SyncContext, hubspot_id: str, invoice: QboEntity) -> None:
        """What HubSpot computed must be QBO's total to the cent; else the record is failing with both."""
        read = await ctx.hubspot.get("invoices", hubspot_id, properties=["hs_amount_billed"])
        billed = decimal(read.properties.get("hs_amount_billed"))
        total = decimal(invoice.get("TotalAmt"))
        if billed != total:
            raise Failing(
                f"HubSpot bills {plain(billed) if billed is not None else 'nothing'} for the QuickBooks invoice of "
                f"{plain(total) if total is not None else 'nothing'}",
                category=TOTAL_MISMATCH,
            )

    async def _sync_line_items(
        self, ctx: SyncContext, invoice_id: str, invoice: QboEntity, record: HubSpotObject, known: dict[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """Line items, invoice-level discounts and tax of the HubSpot copy brought to the QBO invoice
        (`_invoice_lines`)."""
        item_ids = [
            str(item_id)
            for line in lines.item_lines(invoice)
            if (item_id := _fields.get_path(line, "SalesItemLineDetail.ItemRef.value"))
            and item_id != lines.SHIPPING_ITEM_ID
        ]
        skus = await refs.item_skus(ctx, item_ids)
        currency = currencies.qbo_currency(invoice, await ctx.company())
        copy = lines.hubspot_copy(invoice, skus, await refs.products_for_items(ctx, skus), currency)
        current: dict[str, Line] = {}
        if ids := record.associations.get("line_items", []):
            batch = await ctx.hubspot.batch_read("line_items", ids, properties=lines.LINE_ITEM_PROPERTIES)
            current = {item.id: Line.from_hubspot(item.properties) for item in batch.results}
        plan = lines.plan_line_items(copy.line_items, current, known)
        for item_id, line in plan.update.items():
            await ctx.hubspot.update("line_items", item_id, line.hubspot_properties())
        mapping = dict(plan.kept)
        for key, line in plan.create.items():
            association = NewAssociation(invoice_id, LINE_ITEM_TO_INVOICE)
            created = await ctx.hubspot.create("line_items", line.hubspot_properties(), associations=[association])
            mapping[key] = created.id
        for item_id in plan.archive:
            await ctx.hubspot.archive("line_items", item_id)
        writes = len(plan.update) + len(plan.create) + len(plan.archive)
        for kind in ("discounts", "taxes"):
            wanted = {key: a for key, a in copy.adjustments.items() if a.kind == kind}
            current_adjustments: dict[str, Adjustment] = {}
            if ids := record.associations.get(kind, []):
                batch = await ctx.hubspot.batch_read(kind, ids, properties=lines.ADJUSTMENT_PROPERTIES)
                current_adjustments = {r.id: Adjustment.from_hubspot(kind, r.properties) for r in batch.results}
            if not wanted and not current_adjustments:
                continue
            adjustment_plan = lines.plan_records(wanted, current_adjustments, known)
            for adjustment_id, adjustment in adjustment_plan.update.items():
                await ctx.hubspot.update(kind, adjustment_id, adjustment.hubspot_properties())
            mapping.update(adjustment_plan.kept)
            for key, adjustment in adjustment_plan.create.items():
                created = await ctx.hubspot.create(kind, adjustment.hubspot_properties())
                await ctx.hubspot.associate(
                    "invoices", invoice_id, kind, created.id, type_id=INVOICE_TO_ADJUSTMENT[kind]
                )
                mapping[key] = created.id
            for adjustment_id in adjustment_plan.archive:
                await ctx.hubspot.archive(kind, adjustment_id)
            writes += len(adjustment_plan.update) + len(adjustment_plan.create) + len(adjustment_plan.archive)
        return mapping, [f"{writes} line items, discounts and taxes"] if writes else []

    async def _save_qbo_origin(
        self,
        ctx: SyncContext,
        link: Link,
        invoice: QboEntity,
        line_map: dict[str, str],
        status: str,
        action: Action,
        wrote: list[str],
    ) -> Outcome:
        saved = await ctx.store.save_link(
            dataclasses.replace(
                link,
                synced={**link.synced, LINE_MAP: orjson.dumps(line_map).decode(), "status": status},
                qbo_version=str(invoice.get("SyncToken")),
                qbo_hash=_lines_hash(invoice),
                last_synced_at=ctx.clock(),
                status=LinkStatus.SYNCED,
                error_category=None,
                error_message=None,
            )
        )
        if not wrote and action == Action.UPDATED:
            return Outcome(Action.UNCHANGED, None, saved)
        return Outcome(action, Direction.QBO_TO_HUBSPOT, saved, "wrote: " + ", ".join(wrote) if wrote else "")

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
        invoice, action = await self._create_in_qbo(ctx, record, body, link)
        link = _claim(ctx, link, Provider.HUBSPOT, record.id, str(invoice["Id"]))
        outcome = await self._save_hubspot_origin(ctx, settings, link, record, invoice, action, written=True)
        _check_qbo_total(record, invoice)
        return outcome

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
    ) -> tuple[QboEntity, Action]:
        """Create the QBO invoice once: adopt one a crashed run made (same DocNumber, PrivateNote naming this
        invoice); on a DocNumber collision let QBO number it."""
        marker = _marker(record)
        body = {**body, "PrivateNote": marker}
        number = _fields.text(record.properties.get("hs_number"))
        if number is not None and len(number) <= DOC_NUMBER_MAX:
            for found in await ctx.qbo.query(f"SELECT * FROM Invoice WHERE DocNumber = {qbo_quote(number)}"):
                if found.get("PrivateNote") == marker:
                    return found, Action.LINKED
            try:
                request_id = ctx.request_id("Invoice", "create", record.id, number, link=link)
                return await ctx.qbo.create(
                    "Invoice", {**body, "DocNumber": number}, request_id=request_id
                ), Action.CREATED
            except DuplicateDocNumber:
                pass
        request_id = ctx.request_id("Invoice", "create", record.id, "numbered-by-qbo", link=link)
        created = await ctx.qbo.create("Invoice", body, request_id=request_id)
        return created, Action.CREATED

    async def _push_to_qbo(
        self, ctx: SyncContext, settings: InvoiceSettings, link: Link, record: HubSpotObject, invoice: QboEntity
    ) -> Outcome:
        """Bring the QBO invoice made from a HubSpot invoice to it; a sparse update of what differs."""
        assert link.qbo_id is not None
        body = await self._qbo_body(ctx, settings, record)
        with_tax = settings.tax_code is not None
        changed: dict[str, Any] = {}
        current_lines = lines.qbo_line_signature(invoice.get("Line") or [], with_tax_code=with_tax)
        if lines.qbo_line_signature(body["Line"], with_tax_code=with_tax) != current_lines:
            changed["Line"] = body["Line"]
        if body.get("ApplyTaxAfterDiscount") and not invoice.get("ApplyTaxAfterDiscount"):
            changed["ApplyTaxAfterDiscount"] = True
        if str(_fields.get_path(invoice, "CustomerRef.value")) != body["CustomerRef"]["value"]:
            changed["CustomerRef"] = body["CustomerRef"]
        maps = _fields.active_maps(_header((await ctx.company()).hubspot_zone), settings)
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
        if not changed:
            outcome = await self._save_hubspot_origin(
                ctx, settings, link, record, invoice, Action.UNCHANGED, written=False
            )
            _check_qbo_total(record, invoice)
            return outcome
        request_id = ctx.request_id("Invoice", link.qbo_id, "update", str(invoice["SyncToken"]), link=link)
        update = {"Id": link.qbo_id, "SyncToken": invoice["SyncToken"], **changed}
        updated = await ctx.qbo.update("Invoice", update, request_id=request_id)
        outcome = await self._save_hubspot_origin(ctx, settings, link, record, updated, Action.UPDATED, written=True)
        _check_qbo_total(record, updated)
        return dataclasses.replace(outcome, detail="fields: " + ", ".join(sorted(changed)))

    async def _save_hubspot_origin(
        self,
        ctx: SyncContext,
        settings: InvoiceSettings,
        link: Link,
        record: HubSpotObject,
        invoice: QboEntity,
        action: Action,
        *,
        written: bool,
    ) -> Outcome:
        token = str(invoice.get("SyncToken"))
        saved = await ctx.store.save_link(
            dataclasses.replace(
                link,
                hubspot_version=record.updated_at.isoformat() if record.updated_at else link.hubspot_version,
                qbo_version=token,
                qbo_written_sync_token=token if written else link.qbo_written_sync_token,
                qbo_hash=_lines_hash(invoice),
                last_synced_at=ctx.clock(),
                status=LinkStatus.SYNCED,
                error_category=None,
                error_message=None,
            )
        )
        direction = Direction.HUBSPOT_TO_QBO if written else None
        return Outcome(action, direction, saved)

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


def plan_qbo_edit_of_hubspot_invoice(link: Link, invoice: QboEntity, status: str) -> Plan:
    """A QBO edit of an invoice made in HubSpot: not synced back, except a void, once (the HubSpot invoice voided,
    unless deleted there meanwhile). A crash before the link save: the re-run voids it again, which changes nothing."""
    assert link.hubspot_id is not None
    if status == VOIDED and link.synced.get("status") != VOIDED:
        changes = {"synced": {**link.synced, "status": VOIDED}, "qbo_version": str(invoice["SyncToken"])}
        steps = (UpdateHubSpot("invoices", link.hubspot_id, {"hs_invoice_status": VOIDED}, gone_ok=True),
                 SaveLink(changes))  # fmt: skip
        return Plan(link, steps, Action.VOIDED, Direction.QBO_TO_HUBSPOT, "voided in QuickBooks")
    what = "its lines, prices or tax" if _lines_hash(invoice) != link.qbo_hash else "it"
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

"""HubSpot commerce payment ↔ QBO Payment. A payment syncs from the side it was made on and is never synced back:
QBO edits of a payment made in HubSpot, and HubSpot edits of a payment made from QBO, are skipped with that reason.

QBO → HubSpot (the default direction): every invoice a Payment is applied to (`Line[].LinkedTxn`, TxnType Invoice)
must be linked (`Kind.INVOICE`), else the payment is failing `invoice_not_synced`, waiting for that invoice (the
engine runs it again once the invoice syncs). The HubSpot payment carries the applied amount, the date, currency and
reference number, and is associated with the HubSpot invoice (payment → invoice 542), which HubSpot then shows paid
or partially paid with its balance, and with the invoice's deals (payment → deal 391), so the payment shows on each
deal's timeline too (one association read per new HubSpot payment; a deal associated with the invoice after the
payment synced does not get it). HubSpot payments cannot be split, so a payment
applied to several invoices is excluded (`multi_invoice`) unless `allocate_multi_invoice` is on: then one HubSpot
payment per invoice, with the amount applied to it. A payment voided or deleted in QBO archives its HubSpot payments
(the invoice's balance is due again) once, when the payment read back from QBO is voided or gone (a "deleted" event
is a hint; a payment QBO still has stays synced); `on_delete = "ignore"` leaves them. `hs_latest_status` is not
written: the API lists some payment properties as read-only without naming them, and a payment created without it is
succeeded.

Amounts are Decimals from QBO's answer to HubSpot's request (`shared.money`): `hs_initial_amount` is a plain string
rounded to the currency's minor unit ("55.00"); the parts of a payment split over several invoices are allocated so
that they add up exactly to the rounded amount applied; voided and unchanged are decided by Decimal equality.

Currency and date: the HubSpot payment is in the QBO payment's currency (one the portal does not have is excluded,
`other_currency`); `hs_initiated_date` (an instant) is the start of the QBO TxnDate in the QBO company's time zone.

Each HubSpot payment made from QBO holds `hsqbo_qbo_payment` = "<QBO payment id>-<QBO invoice id>", a unique
property: the natural key looked up before creating, so a crash between the create and saving the link cannot
leave a duplicate, and the mark by which the other direction recognises it.

HubSpot → QBO (`two_way` or `hubspot_to_qbo`): a succeeded HubSpot payment associated with one linked invoice becomes a
QBO Payment for the invoice's customer, applied to the QBO invoice, its amount rounded half away from zero to the
currency's minor unit (QBO takes no more decimals); its PrivateNote names the HubSpot payment, the
natural key looked up (among the invoice's payments) before creating. A payment still processing (ACH) is excluded
until it completes: the status change is itself a change, and syncs it then. A payment that failed, was canceled or
refunded, or was deleted, voids its QBO payment. Processing fees create nothing in QBO. Its TxnDate is the day
`hs_initiated_date` falls on in the QBO company's time zone (21:30 on 5 January in San Francisco is the 5th, not the
UTC 6th); its currency must be the QBO invoice's (else excluded, `other_currency`), with QBO's exchange rate for the
day when that is not the home currency.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.worker import _fields
from services.worker._executor import carry_out
from services.worker._plan import (
    Answer,
    Answered,
    ArchiveHubSpot,
    CreateHubSpot,
    CreateQbo,
    Plan,
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
from services.worker.rules._origin import OriginProperty, made_from
from shared import money
from shared.clients import HubSpotObject, NewAssociation, QboEntity
from shared.connections import SyncContext
from shared.domain import Action, Awaited, Direction, Kind, Provider
from shared.errors import NotFound
from shared.store import Link, LinkStatus
from shared.syncconfig import ConnectionSettings, PaymentSettings

PAYMENT_TO_INVOICE = 542  # commerce_payment -> invoice (invoice -> payment is 541)
PAYMENT_TO_DEAL = 391  # commerce_payment -> deal (deal -> payment is 392)
ORIGIN_PROPERTY = "hsqbo_qbo_payment"  # "<QBO payment id>-<QBO invoice id>": one HubSpot payment per applied invoice
PAYMENT_ORIGIN = OriginProperty(
    "commerce_payments", ORIGIN_PROPERTY, "QuickBooks payment (hsqbo)", "commerce_paymentinformation"
)
SYNCED_PROPERTIES = ("hs_initial_amount", "hs_initiated_date", "hs_currency_code", "hs_reference_number")
READ_PROPERTIES = (*SYNCED_PROPERTIES, "hs_latest_status", ORIGIN_PROPERTY)
PROCESSING = frozenset({"processing", "pending"})
NOT_PAID = frozenset({"failed", "canceled", "refunded"})
PAYMENT_REF_MAX = 21  # QBO PaymentRefNum


# --- pure helpers ----------------------------------------------------------------------------------------------------


def applied_invoices(payment: Mapping[str, Any]) -> dict[str, Decimal]:
    """QBO invoice id -> the amount this payment applies to it (exact), leaving out zero amounts; in invoice id
    order, the order parts are allocated in."""
    applied: dict[str, Decimal] = {}
    for line in payment.get("Line") or ():
        for linked in line.get("LinkedTxn") or ():
            if linked.get("TxnType") == "Invoice":
                invoice_id = str(linked["TxnId"])
                applied[invoice_id] = applied.get(invoice_id, money.ZERO) + _amount(line.get("Amount"))
    ordered = sorted(applied.items(), key=lambda item: (len(item[0]), item[0]))  # numeric ids in numeric order
    return {invoice_id: amount for invoice_id, amount in ordered if amount > 0}


def hubspot_amounts(applied: Mapping[str, Decimal], currency: str) -> dict[str, Decimal]:
    """The amount of each HubSpot payment a QBO payment becomes (one per invoice), rounded to the currency's minor
    unit so that together they are exactly the rounded amount applied."""
    return money.allocate(applied, currency)


def is_voided(payment: Mapping[str, Any]) -> bool:
    """QBO keeps a voided payment readable with TotalAmt 0 and "Voided" leading its PrivateNote."""
    note = str(payment.get("PrivateNote") or "")
    return _amount(payment.get("TotalAmt")) == 0 and note.startswith("Voided")


def _amount(value: Any) -> Decimal:
    """An API amount as an exact Decimal (absent: 0)."""
    return money.decimal(value) or money.ZERO


def origin_key(payment_id: str, invoice_id: str) -> str:
    return f"{payment_id}-{invoice_id}"


def hubspot_payment_properties(
    payment: Mapping[str, Any], amount: Decimal, home_currency: str, company_zone: dt.tzinfo
) -> dict[str, str]:
    """The HubSpot payment recording `amount` of a QBO payment, a plain string rounded to the currency's minor unit;
    `hs_initiated_date`, an instant, is the start of the TxnDate in the QBO company's zone (its day there is the
    TxnDate again)."""
    currency = currency_of(payment, home_currency)
    initiated = dates.start_of_day(dt.date.fromisoformat(str(payment["TxnDate"])), company_zone)
    properties = {
        "hs_initial_amount": money.plain(money.round_money(amount, currency)),
        "hs_initiated_date": dates.hubspot_datetime(initiated),
        "hs_currency_code": currency,
    }
    if reference := _fields.text(payment.get("PaymentRefNum")):
        properties["hs_reference_number"] = reference
    return properties


def currency_of(entity: Mapping[str, Any], home_currency: str) -> str:
    return str(_fields.get_path(entity, "CurrencyRef.value") or home_currency)


def differing(current: Mapping[str, str | None], wanted: Mapping[str, str]) -> dict[str, str]:
    """The wanted HubSpot properties whose value differs (numbers and datetimes compared by value)."""
    return {name: value for name, value in wanted.items() if _canonical(current.get(name)) != _canonical(value)}


def _canonical(value: str | None) -> str | None:
    cleaned = _fields.text(value)
    if cleaned is None:
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.fromisoformat(cleaned.replace("Z", "+00:00")).isoformat()
    return _fields.number(cleaned)


def hubspot_marker(hubspot_payment_id: str) -> str:
    """PrivateNote of a QBO payment made from a HubSpot payment: its natural key."""
    return f"HubSpot payment {hubspot_payment_id}"


def qbo_payment_fields(record: HubSpotObject, company_zone: dt.tzinfo, currency: str | None = None) -> dict[str, Any]:
    """TotalAmt (rounded half away from zero to `currency`'s minor unit: QBO takes no more decimals) and TxnDate (the
    day `hs_initiated_date` falls on in the QBO company's zone) of the QBO payment recording a HubSpot payment."""
    return {
        "TotalAmt": money.round_money(_amount(record.properties.get("hs_initial_amount")), currency),
        "TxnDate": dates.qbo_txn_date(record.properties["hs_initiated_date"], company_zone),
    }


# --- plans (see services/worker/_plan.py) ---------------------------------------------------------------------------


def plan_qbo_payment(
    link: Link, payment_id: str, found: QboEntity | None, body: dict[str, Any] | None, request_id: str, now: float
) -> Plan:
    """The plan linking HubSpot payment `payment_id` to its QBO payment: the one `found` by its marker, else one
    created from `body`. A crash after the create, before the link save: the re-run finds it by its marker, or,
    missing it, sends the same `request_id` (the link unchanged) and QBO replays the create: never a second payment."""
    if found is not None:
        changes = _synced(link, Provider.HUBSPOT, str(found["Id"]), {}, str(found["SyncToken"]), hubspot_id=payment_id,
                          now=now)  # fmt: skip
        return Plan(link, (SaveLink(changes),), Action.LINKED, Direction.HUBSPOT_TO_QBO)
    if body is None:
        raise ValueError("a payment to create needs its body")
    made, token = Answered(Answer.QBO_ID), Answered(Answer.QBO_SYNC_TOKEN)
    changes = _synced(link, Provider.HUBSPOT, made, {}, token, hubspot_id=payment_id, now=now)
    return Plan(
        link, (CreateQbo("Payment", body, request_id), SaveLink(changes)), Action.CREATED, Direction.HUBSPOT_TO_QBO
    )


def plan_qbo_payment_update(
    link: Link, payment: QboEntity, fields: dict[str, Any], request_id: str, now: float
) -> Plan:  # fmt: skip
    """The plan giving the QBO payment (as read) the HubSpot payment's amount and date (`fields`), if they differ. A
    crash before the link save: the re-run reads them applied and only saves the link."""
    assert link.qbo_id is not None
    total: Decimal = fields["TotalAmt"]
    if _amount(payment.get("TotalAmt")) == total and payment.get("TxnDate") == fields["TxnDate"]:
        return Plan(link, (), Action.UNCHANGED)
    lines = [{**line, "Amount": fields["TotalAmt"]} for line in payment.get("Line") or ()]  # the one we made
    body = {"Id": link.qbo_id, "SyncToken": payment["SyncToken"], **fields, "Line": lines}
    token = Answered(Answer.QBO_SYNC_TOKEN)
    steps = (UpdateQbo("Payment", body, request_id), SaveLink(_synced(link, Provider.HUBSPOT, link.qbo_id, {}, token,
                                                                       now=now)))  # fmt: skip
    return Plan(link, steps, Action.UPDATED, Direction.HUBSPOT_TO_QBO, "amount/date")


def plan_qbo_void(link: Link, payment: QboEntity | None, status: str, request_id: str, now: float) -> Plan:
    """The plan voiding the QBO payment of a HubSpot payment that failed, was refunded or deleted (`payment`: as
    read; None under on_delete=ignore), once. A crash before the link save: the re-run reads it voided and only saves
    the link, naming the SyncToken of our void (its echo)."""
    if link.status == LinkStatus.DELETED:
        return Plan(link, (), Action.SKIPPED, detail=f"{status} in HubSpot; already handled")
    assert link.qbo_id is not None
    steps: list[Step] = []
    written: str | Answered | None = link.qbo_written_sync_token
    if payment is not None:
        written = str(payment["SyncToken"])
        if not is_voided(payment):
            steps.append(VoidQbo("Payment", link.qbo_id, str(payment["SyncToken"]), request_id))
            written = Answered(Answer.QBO_SYNC_TOKEN)
    steps.append(SaveLink({"status": LinkStatus.DELETED, "qbo_written_sync_token": written, "qbo_version": written,
                           "last_synced_at": now}))  # fmt: skip
    detail = "QuickBooks payment voided" if payment is not None else "on_delete=ignore"
    return Plan(link, tuple(steps), Action.DELETED, Direction.HUBSPOT_TO_QBO, f"{status} in HubSpot: {detail}")


@dataclasses.dataclass(slots=True)
class PaymentPart:
    """One HubSpot payment of a QBO payment: the part applied to one invoice, as read."""

    invoice_id: str  # the QBO invoice
    key: str  # its origin key (`origin_key`)
    properties: dict[str, str]  # what it should hold
    record: HubSpotObject | None  # the HubSpot payment made for it before (by the link, else by its origin key)
    associations: tuple[NewAssociation, ...] = ()  # a new one's: its invoice and the invoice's deals


def plan_hubspot_payments(
    link: Link, payment: QboEntity, dropped: list[str], parts: list[PaymentPart], now: float
) -> Plan:  # fmt: skip
    """The plan bringing the HubSpot payments of a QBO payment to it: the parts no longer applied archived, each part
    created (carrying its origin key) or updated where it differs, then the link recording them. A crash before the
    link save: the re-run finds each part made by its origin key (a unique property), never making it twice."""
    steps: list[Step] = [ArchiveHubSpot("commerce_payments", hubspot_id) for hubspot_id in dropped]
    synced: dict[str, str | Answered | None] = {}
    first_version: str | Answered | None = None
    created = updated = 0
    for part in parts:
        if part.record is None:
            properties = {**part.properties, ORIGIN_PROPERTY: part.key}
            steps.append(CreateHubSpot("commerce_payments", properties, part.associations, label=part.invoice_id))
            synced[part.invoice_id] = Answered(Answer.HUBSPOT_ID, label=part.invoice_id)
            version: str | Answered | None = Answered(Answer.HUBSPOT_UPDATED_AT, link.hubspot_version, part.invoice_id)
            created += 1
        else:
            synced[part.invoice_id] = part.record.id
            version = hubspot_version(part.record) or link.hubspot_version
            if changes := differing(part.record.properties, part.properties):
                steps.append(UpdateHubSpot("commerce_payments", part.record.id, changes, label=part.invoice_id))
                version = Answered(Answer.HUBSPOT_UPDATED_AT, link.hubspot_version, part.invoice_id)
                updated += 1
        if first_version is None:
            first_version = version
    changes = _synced(link, Provider.QUICKBOOKS, str(payment["Id"]), synced, str(payment["SyncToken"]), now=now,
                      hubspot_version=first_version)  # fmt: skip
    steps.append(SaveLink(changes))
    action = Action.CREATED if created else Action.UPDATED if updated else Action.UNCHANGED
    detail = f"{len(synced)} HubSpot payment(s): {created} created, {updated} updated"
    return Plan(link, tuple(steps), action, Direction.QBO_TO_HUBSPOT if created or updated else None, detail)


def plan_hubspot_removal(settings: PaymentSettings, link: Link, how: str, now: float) -> Plan:
    """The plan archiving the HubSpot payments of a QBO payment voided or deleted (`how`), once. A crash before the
    link save: the re-run archives again, which HubSpot answers as gone (counted archived)."""
    if link.status == LinkStatus.DELETED or not any(link.synced.values()):
        return Plan(link, (), Action.SKIPPED, detail=f"{how} in QuickBooks; nothing synced to HubSpot")
    steps: list[Step] = []
    if settings.on_delete == "propagate":
        steps += [ArchiveHubSpot("commerce_payments", str(made)) for made in link.synced.values() if made]
    steps.append(SaveLink({"status": LinkStatus.DELETED, "last_synced_at": now}))
    detail = "HubSpot payment(s) archived" if settings.on_delete == "propagate" else "on_delete=ignore"
    return Plan(link, tuple(steps), Action.DELETED, Direction.QBO_TO_HUBSPOT, f"{how} in QuickBooks: {detail}")


def _synced(
    base: Link,
    origin: Provider,
    qbo_id: str | Answered,
    synced: Mapping[str, str | Answered | None],
    sync_token: str | Answered,
    *,
    now: float,
    hubspot_id: str | None = None,
    hubspot_version: str | Answered | None = None,
) -> dict[str, Any]:
    """The link fields of a synced payment. From QBO, `synced` maps each QBO invoice to its HubSpot payment and the
    link's hubspot_id is the first of them, whose version after our writes (`hubspot_version`) is the one seen, so
    the poller does not take our own write for a HubSpot edit; from HubSpot, QBO's echo of our write is recognised by
    `sync_token`."""
    first: str | Answered | None = next(iter(synced.values()), None) if origin == Provider.QUICKBOOKS else hubspot_id
    return {
        "origin": origin,
        "hubspot_id": first if first is not None else base.hubspot_id,
        "hubspot_version": hubspot_version or base.hubspot_version,
        "qbo_id": qbo_id,
        "synced": synced,
        "qbo_version": sync_token,
        "qbo_written_sync_token": sync_token if origin == Provider.HUBSPOT else None,
        "last_synced_at": now,
        "status": LinkStatus.SYNCED,
        "error_category": None,
        "error_message": None,
    }


# --- the rule --------------------------------------------------------------------------------------------------------


class PaymentRule:
    kind = Kind.PAYMENT

    def settings(self, connection: ConnectionSettings) -> PaymentSettings:
        return connection.payments

    # --- QBO -> HubSpot ----------------------------------------------------------------------------------------------

    async def from_qbo(self, ctx: SyncContext, payment_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.payments
        link = await ctx.store.get_link(ctx.name, Kind.PAYMENT, qbo_id=payment_id)
        payment: QboEntity | None = None
        with contextlib.suppress(NotFound):  # a "deleted" hint is a hint: the payment is read whatever it says
            payment = await ctx.qbo.read("Payment", payment_id)
        saw(GONE if payment is None else qbo_version(payment), payment)
        if link is not None and link.origin == Provider.HUBSPOT:
            if payment is not None and link.qbo_written_sync_token == str(payment.get("SyncToken")):
                return Outcome(Action.ECHO, link=link, detail="our own write")
            return Outcome(Action.SKIPPED, link=link, detail="made in HubSpot: QuickBooks edits are not synced back")

        if payment is None or is_voided(payment):
            return await self._removed_in_qbo(ctx, settings, link, "deleted" if payment is None else "voided")
        wanted = applied_invoices(payment)
        if not link or not link.synced:
            await filters.check_qbo(ctx, settings.qbo_to_hubspot, payment)
        if not wanted:
            raise Excluded("not applied to an invoice (an unapplied credit)", category="unapplied")
        if len(wanted) > 1 and not settings.allocate_multi_invoice:
            raise Excluded(
                f"applied to {len(wanted)} invoices; HubSpot payments cannot be split (allocate_multi_invoice is off)",
                category="multi_invoice",
            )
        company = await ctx.company()
        currency = currencies.qbo_currency(payment, company)
        currencies.check_hubspot_holds(currency, company, "payment")
        hubspot_invoices = {invoice_id: await _hubspot_invoice(ctx, invoice_id) for invoice_id in wanted}
        amounts = hubspot_amounts(wanted, currency)

        made = dict(link.synced) if link is not None else {}  # QBO invoice id -> HubSpot payment id
        dropped = [str(made.pop(i)) for i in list(made) if i not in wanted and made[i]]
        current = await _read_payments(ctx, [str(made[i]) for i in wanted if made.get(i)])
        parts: list[PaymentPart] = []
        for invoice_id, amount in amounts.items():
            properties = hubspot_payment_properties(payment, amount, company.home_currency, company.qbo_zone)
            part = PaymentPart(
                invoice_id, origin_key(payment_id, invoice_id), properties, current.get(str(made.get(invoice_id)))
            )
            if part.record is None:
                part.record = await made_from(ctx, PAYMENT_ORIGIN, part.key, READ_PROPERTIES)
                if part.record is None:
                    part.associations = tuple(await _invoice_and_deals(ctx, hubspot_invoices[invoice_id]))
            parts.append(part)
        base = link or Link(connection=ctx.name, kind=Kind.PAYMENT, origin=Provider.QUICKBOOKS)
        return await carry_out(ctx, plan_hubspot_payments(base, payment, dropped, parts, ctx.clock()))

    async def _removed_in_qbo(
        self, ctx: SyncContext, settings: PaymentSettings, link: Link | None, how: str
    ) -> Outcome:
        if link is None:
            return Outcome(Action.SKIPPED, detail=f"{how} in QuickBooks; nothing synced to HubSpot")
        return await carry_out(ctx, plan_hubspot_removal(settings, link, how, ctx.clock()))

    # --- HubSpot -> QBO ----------------------------------------------------------------------------------------------

    async def from_hubspot(self, ctx: SyncContext, payment_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.payments
        link = await ctx.store.get_link(ctx.name, Kind.PAYMENT, hubspot_id=payment_id)
        record: HubSpotObject | None = None
        with contextlib.suppress(NotFound):
            record = await ctx.hubspot.get("commerce_payments", payment_id, properties=READ_PROPERTIES)
        saw(GONE if record is None else hubspot_version(record), record)  # even when skipped: that version is seen
        if link is not None and link.origin == Provider.QUICKBOOKS:
            return Outcome(Action.SKIPPED, link=link, detail="made from QuickBooks: HubSpot edits are not synced back")
        if record is not None and record.properties.get(ORIGIN_PROPERTY):  # a split part: linked through its payment
            return Outcome(Action.SKIPPED, detail="made from QuickBooks: HubSpot edits are not synced back")
        linked = link if link is not None and link.qbo_id is not None else None
        status = (record.properties.get("hs_latest_status") or "succeeded") if record is not None else "deleted"
        if status in NOT_PAID or status == "deleted":
            if linked is None:
                if record is None:
                    return Outcome(Action.SKIPPED, detail="deleted in HubSpot; nothing synced to QuickBooks")
                raise Excluded(f"payment {status}", category="payment_not_completed")
            return await self._void_in_qbo(ctx, settings, linked, status)
        if status in PROCESSING:
            if linked is not None:
                return Outcome(Action.SKIPPED, link=linked, detail=f"payment {status} again; QuickBooks payment kept")
            raise Excluded(f"payment {status} (ACH): synced once it completes", category="payment_processing")
        assert record is not None  # a missing record has status "deleted"
        if linked is not None:
            return await self._update_in_qbo(ctx, linked, record)

        await filters.check_hubspot(ctx, settings.hubspot_to_qbo, record)
        invoices = await ctx.hubspot.list_associations("commerce_payments", payment_id, "invoices")
        if not invoices:
            raise Excluded("not associated with an invoice", category="no_invoice")
        if len(invoices) > 1:
            raise Excluded(f"associated with {len(invoices)} invoices", category="multi_invoice")
        invoice_link = await ctx.store.get_link(ctx.name, Kind.INVOICE, hubspot_id=invoices[0].to_id)
        if invoice_link is None or invoice_link.qbo_id is None:
            raise Failing(
                f"HubSpot invoice {invoices[0].to_id} is not synced to QuickBooks",
                category="invoice_not_synced",
                awaits=Awaited(Kind.INVOICE, Provider.HUBSPOT, invoices[0].to_id),
            )
        invoice = await ctx.qbo.read("Invoice", invoice_link.qbo_id)
        company = await ctx.company()
        currency = currencies.hubspot_currency(record.properties.get("hs_currency_code"), company)
        currencies.check_qbo_holds(currency, company, "payment")
        if currency != currencies.qbo_currency(invoice, company):
            raise Excluded(
                f"payment in {currency}: its QuickBooks invoice is in {currencies.qbo_currency(invoice, company)}",
                category=currencies.OTHER_CURRENCY,
            )
        found = await _qbo_payment_by_marker(ctx, invoice, payment_id)
        body: dict[str, Any] | None = None
        if found is None:
            fields = qbo_payment_fields(record, company.qbo_zone, currency)
            rate = None
            if currency != company.home_currency:
                rate = await ctx.qbo.exchange_rate(currency, dt.date.fromisoformat(str(fields["TxnDate"])))
            body = _new_qbo_payment(record, invoice, fields, currencies.qbo_currency_fields(currency, company, rate))
        request_id = ctx.request_id("Payment", "create", payment_id, link=link)
        base = link or Link(connection=ctx.name, kind=Kind.PAYMENT, origin=Provider.HUBSPOT)
        outcome = await carry_out(ctx, plan_qbo_payment(base, payment_id, found, body, request_id, ctx.clock()))
        made = outcome.link.qbo_id if outcome.link is not None else None
        return dataclasses.replace(outcome, detail=f"QuickBooks payment {made}")

    async def _update_in_qbo(self, ctx: SyncContext, link: Link, record: HubSpotObject) -> Outcome:
        assert link.qbo_id is not None
        payment = await ctx.qbo.read("Payment", link.qbo_id)
        if is_voided(payment):
            return Outcome(Action.SKIPPED, link=link, detail="voided in QuickBooks; HubSpot edits are not applied")
        company = await ctx.company()
        fields = qbo_payment_fields(record, company.qbo_zone, currencies.qbo_currency(payment, company))
        request_id = ctx.request_id("Payment", link.qbo_id, "update", str(payment["SyncToken"]), link=link)
        return await carry_out(ctx, plan_qbo_payment_update(link, payment, fields, request_id, ctx.clock()))

    async def _void_in_qbo(self, ctx: SyncContext, settings: PaymentSettings, link: Link, status: str) -> Outcome:
        assert link.qbo_id is not None
        payment: QboEntity | None = None
        request_id = ""
        if settings.on_delete == "propagate" and link.status != LinkStatus.DELETED:
            payment = await ctx.qbo.read("Payment", link.qbo_id)
            request_id = ctx.request_id("Payment", link.qbo_id, "void", str(payment["SyncToken"]), link=link)
        return await carry_out(ctx, plan_qbo_void(link, payment, status, request_id, ctx.clock()))


# --- helpers that call the APIs --------------------------------------------------------------------------------------


async def _hubspot_invoice(ctx: SyncContext, qbo_invoice_id: str) -> str:
    link = await ctx.store.get_link(ctx.name, Kind.INVOICE, qbo_id=qbo_invoice_id)
    if link is None or link.hubspot_id is None:
        raise Failing(
            f"QuickBooks invoice {qbo_invoice_id} is not synced to HubSpot",
            category="invoice_not_synced",
            awaits=Awaited(Kind.INVOICE, Provider.QUICKBOOKS, qbo_invoice_id),
        )
    return link.hubspot_id


async def _invoice_and_deals(ctx: SyncContext, hubspot_invoice_id: str) -> list[NewAssociation]:
    """A new HubSpot payment's associations: its invoice, and the invoice's deals (the payment shows on them)."""
    deals = await ctx.hubspot.list_associations("invoices", hubspot_invoice_id, "deals")
    return [
        NewAssociation(hubspot_invoice_id, PAYMENT_TO_INVOICE),
        *(NewAssociation(deal.to_id, PAYMENT_TO_DEAL) for deal in deals),
    ]


async def _read_payments(ctx: SyncContext, ids: list[str]) -> dict[str, HubSpotObject]:
    """The HubSpot payments still there, by id."""
    if not ids:
        return {}
    batch = await ctx.hubspot.batch_read("commerce_payments", ids, properties=READ_PROPERTIES)
    return {record.id: record for record in batch.results}


async def _qbo_payment_by_marker(ctx: SyncContext, invoice: QboEntity, hubspot_id: str) -> QboEntity | None:
    """The QBO payment already made for this HubSpot payment, among those applied to the invoice."""
    for linked in invoice.get("LinkedTxn") or ():
        if linked.get("TxnType") == "Payment":
            payment = await ctx.qbo.read("Payment", str(linked["TxnId"]))
            if str(payment.get("PrivateNote") or "").endswith(hubspot_marker(hubspot_id)):
                return payment
    return None


def _new_qbo_payment(
    record: HubSpotObject, invoice: QboEntity, fields: dict[str, Any], currency: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
        **fields,
        "Line": [{"Amount": fields["TotalAmt"], "LinkedTxn": [{"TxnId": str(invoice["Id"]), "TxnType": "Invoice"}]}],
        "PrivateNote": hubspot_marker(record.id),
    }
    body.update(currency)  # CurrencyRef, and ExchangeRate for a foreign currency
    if reference := _fields.text(record.properties.get("hs_reference_number")):
        body["PaymentRefNum"] = reference[:PAYMENT_REF_MAX]
    return body

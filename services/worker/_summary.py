"""What a person recognises a synced record by, kept on its link for the status page (pure; the engine stores it).

After each apply the engine folds into the link's `summary` what the rule read (`rules.saw`) on the side it ran
from, so a list can show names instead of ids without calling either API:

    contact   name, email, company              (HubSpot firstname + lastname; QBO DisplayName, PrimaryEmailAddr)
    product   name, sku, price                  (HubSpot name, hs_sku, price; QBO Name, Sku, UnitPrice)
    invoice   number, customer, total, currency (HubSpot hs_number, hs_amount_billed, hs_currency; QBO DocNumber,
              date, status                       CustomerRef.name, TotalAmt, CurrencyRef, TxnDate)
    payment   amount, currency, date, customer,  (HubSpot hs_initial_amount, hs_currency_code, hs_initiated_date,
              reference                          hs_reference_number; QBO TotalAmt, CurrencyRef, TxnDate, CustomerRef)

The summary is `{"hubspot": {...}, "quickbooks": {...}, "changed": {field: [before, after]}, "changed_at": epoch,
"waits_for": {"kind", "side", "id"}}`: each side as it was last read (a side fills in when an apply runs from it,
an echo of our own write included), the mapped fields whose agreed value the last sync that changed any moved
(`Link.synced` before and after), and the record a failing one waits for. The label is one line of the newest
side's values over the other's; the store keeps it searchable. The daily reconciliation, which reads both records of
every synced pair, names them too (`named`): a record synced before the summary existed gets its name there."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.worker._fields import get_path, text
from shared import money
from shared.clients import HubSpotObject, QboEntity
from shared.domain import Awaited, Kind, Provider

Summary = dict[str, Any]
Values = dict[str, str]


def _amount(value: Any, currency: str | None) -> str | None:
    try:
        amount = money.decimal(value)
    except ValueError:
        return text(value)
    return None if amount is None else money.plain(money.round_money(amount, currency))


def _join(*parts: Any) -> str | None:
    return text(" ".join(p for p in (text(part) for part in parts) if p))


def _hubspot(kind: Kind, properties: Mapping[str, str | None]) -> dict[str, str | None]:
    get = properties.get
    if kind == Kind.CONTACT:
        return {"name": _join(get("firstname"), get("lastname")), "email": text(get("email")),
                "company": text(get("company"))}  # fmt: skip
    if kind == Kind.PRODUCT:
        return {"name": text(get("name")), "sku": text(get("hs_sku")), "price": text(get("price"))}
    if kind == Kind.INVOICE:
        currency = text(get("hs_currency"))
        day = (text(get("hs_invoice_date")) or "")[:10] or None  # midnight UTC of the invoice's day
        return {"number": text(get("hs_number")), "total": _amount(get("hs_amount_billed"), currency),
                "currency": currency, "date": day, "status": text(get("hs_invoice_status"))}  # fmt: skip
    currency = text(get("hs_currency_code"))
    return {"amount": _amount(get("hs_initial_amount"), currency), "currency": currency,
            "date": text(get("hs_initiated_date")), "reference": text(get("hs_reference_number"))}  # fmt: skip


def _qbo(kind: Kind, entity: QboEntity) -> dict[str, str | None]:
    if kind == Kind.CONTACT:
        name = text(entity.get("DisplayName")) or _join(entity.get("GivenName"), entity.get("FamilyName"))
        return {"name": name, "email": text(get_path(entity, "PrimaryEmailAddr.Address")),
                "company": text(entity.get("CompanyName"))}  # fmt: skip
    if kind == Kind.PRODUCT:
        return {"name": text(entity.get("Name")), "sku": text(entity.get("Sku")),
                "price": _amount(entity.get("UnitPrice"), None)}  # fmt: skip
    currency = text(get_path(entity, "CurrencyRef.value"))
    common = {"customer": text(get_path(entity, "CustomerRef.name")), "currency": currency,
              "date": text(entity.get("TxnDate"))}  # fmt: skip
    if kind == Kind.INVOICE:
        return {"number": text(entity.get("DocNumber")), "total": _amount(entity.get("TotalAmt"), currency), **common}
    return {"amount": _amount(entity.get("TotalAmt"), currency), "reference": text(entity.get("PaymentRefNum")),
            **common}  # fmt: skip


def side_values(kind: Kind, record: HubSpotObject | QboEntity) -> Values:
    """What one side's record shows a person, empty values left out."""
    found = _hubspot(kind, record.properties) if isinstance(record, HubSpotObject) else _qbo(kind, record)
    return {name: value for name, value in found.items() if value is not None}


def merged(summary: Mapping[str, Any], newest: Provider | None = None) -> Values:
    """Both sides' values, the newest side's over the other's (default: the side read last)."""
    newest = newest or Provider(summary.get("read_last", Provider.HUBSPOT))
    other = Provider.QUICKBOOKS if newest == Provider.HUBSPOT else Provider.HUBSPOT
    return {**summary.get(str(other), {}), **summary.get(str(newest), {})}


def _money(values: Values, field: str) -> str | None:
    return _join(values.get(field), values.get("currency")) if values.get(field) else None


_LABELS: dict[Kind, Callable[[Values], list[str | None]]] = {
    Kind.CONTACT: lambda v: [v.get("name"), v.get("email")],
    Kind.PRODUCT: lambda v: [v.get("name"), f"SKU {v['sku']}" if v.get("sku") else None],
    Kind.INVOICE: lambda v: [f"#{v['number']}" if v.get("number") else None, v.get("customer"), _money(v, "total")],
    Kind.PAYMENT: lambda v: [_money(v, "amount"), v.get("date"), v.get("customer")],
}


def label(kind: Kind, summary: Mapping[str, Any]) -> str:
    """One line naming the record: "Jane Doe · jane@example.com", "#1001 · Acme · 75.00 USD"."""
    return " · ".join(part for part in _LABELS[kind](merged(summary)) if part)


def changes(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> dict[str, list[str | None]]:
    """The agreed fields a sync moved: field -> [before, after]."""
    names = [*after, *(name for name in before if name not in after)]
    return {name: [before.get(name), after.get(name)] for name in names if before.get(name) != after.get(name)}


def next_summary(
    summary: Mapping[str, Any],
    kind: Kind,
    *,
    side: Provider,
    record: HubSpotObject | QboEntity | None,
    changed: Mapping[str, list[str | None]],
    awaits: Awaited | None,
    now: float,
) -> Summary:
    """The link's summary after an apply from `side` that read `record` (None: not read, or gone: that side's last
    values stay), moved the agreed fields `changed` and, failing, waits for `awaits`."""
    updated = {name: value for name, value in summary.items() if name != "waits_for"}
    if record is not None:
        updated[str(side)] = side_values(kind, record)
        updated["read_last"] = str(side)
    if changed:
        updated["changed"], updated["changed_at"] = dict(changed), now
    if awaits is not None:
        updated["waits_for"] = {"kind": str(awaits.kind), "side": str(awaits.side), "id": awaits.object_id}
    return updated


def named(
    link_summary: Mapping[str, Any],
    kind: Kind,
    hubspot: HubSpotObject | None,
    qbo: QboEntity | None,
    *,
    now: float,
) -> tuple[str, Summary]:
    """The label and summary of a link whose two records were just read together (the reconciliation): both sides'
    values as read, the rest (what the last sync changed) kept."""
    summary = dict(link_summary)
    for side, record in ((Provider.HUBSPOT, hubspot), (Provider.QUICKBOOKS, qbo)):
        summary = next_summary(summary, kind, side=side, record=record, changed={}, awaits=None, now=now)
    return label(kind, summary), summary

"""QBO's business rules for Customer, Item, Invoice and Payment: what a create, full or sparse update, delete or
void does to a realm, and which changes it reports (each becomes a webhook event).

Every operation validates first and only then changes the realm, so a Fault leaves nothing half-written.
Decisions where Intuit's documentation is silent (stricter reading):
- Customer DisplayName and Item Name are unique case-insensitively, inactive records included.
- An invoice with payments applied can be neither deleted nor voided; unapply (update/delete the payment) first.
- Applying a payment changes the invoice's Balance and LinkedTxn, so the invoice gets a new SyncToken and
  LastUpdatedTime and an Update event, as an edit would.
- Invoice lines: one DiscountLineDetail per transaction (the XSD: "the total discount on a transaction"); a
  percent discount applies to the subtotal of the item and bundle lines above it. A GroupLineDetail (bundle) takes
  the component lines sent, or else expands its Group item's ItemGroupLine x Quantity at each item's UnitPrice; its
  Amount is the sum of its components. Group items are made in the product only (user-edit), never through the API.
  ItemRef `SHIPPING_ITEM_ID` is the shipping pseudo-item. With ApplyTaxAfterDiscount the discount is shared over the
  tax codes in proportion to their amounts before the tax is computed.
- Amounts are exact Decimals (JSON numbers are read as Decimal, `shared.money`). Intuit documents a line Amount as
  at most 15 digits, 10 before and 5 after the point; the stricter reading refuses (2010) a money field (line
  Amount, TotalAmt, Balance, Deposit) with more decimals than its currency's minor unit, so a client's unrounded or
  float-damaged amount (2.4999999999) fails instead of being rounded silently, and UnitPrice and Qty with more than
  5 decimals. A JSON string where a number is required is refused as well. Computed amounts (percent discounts,
  tax) are rounded half away from zero to the minor unit (Intuit does not document its rounding mode).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hsqbo_sandbox.qbo import _company as company
from hsqbo_sandbox.qbo import _errors as errors
from hsqbo_sandbox.qbo._store import WRITABLE, Realm, Record
from hsqbo_sandbox.qbo._timestamps import company_date, company_time, whole_seconds
from shared import money as exact

CENT = Decimal("0.005")
ZERO = exact.ZERO
PRICE_PLACES = 5  # UnitPrice and Qty: Intuit's 15 digits, 10.5
INTEGER_DIGITS = 10
SYSTEM_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse")
COMPUTED_FIELDS = {
    "Customer": ("FullyQualifiedName", "BalanceWithJobs"),
    "Item": ("FullyQualifiedName",),
    "Invoice": ("TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt"),
    "Payment": ("UnappliedAmt",),
}
NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
ITEM_TYPES = frozenset({"Service", "NonInventory", "Inventory"})
SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"  # the shipping pseudo-item of a company with the shipping preference on


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    entity: str
    entity_id: str
    operation: str  # Create | Update | Delete | Void | Merge (webhook operation names)
    time: float
    deleted_id: str | None = None  # Merge: the record merged away


@dataclasses.dataclass(slots=True)
class Outcome:
    body: dict[str, Any]  # the entity as returned (or the Deleted stub)
    changes: list[Change]


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    sparse_allowed: bool = True
    check_sync_token: bool = True  # a QBO user in the UI always edits the latest version
    allow_duplicate_doc_number: bool = False
    allow_group_items: bool = False  # Group (bundle) items are made in the product only, never through the API


def money(value: Decimal | int, currency: str | None = None) -> Decimal:
    """An amount rounded half away from zero to the currency's minor unit (2 places unless it says otherwise)."""
    return exact.round_money(Decimal(value), currency)


# entry points


def create(realm: Realm, entity: str, body: dict[str, Any], now: float, options: Options = Options()) -> Outcome:
    _require_writable(entity, "Create")
    data = _writable(entity, body)
    prepared, applications = _prepare(realm, entity, data, None, now, options)
    entity_id = realm.new_id(entity)
    stamp = whole_seconds(now)
    prepared = {"Id": entity_id, "SyncToken": "0", "domain": "QBO", "sparse": False, **prepared,
                "MetaData": {"CreateTime": company_time(stamp), "LastUpdatedTime": company_time(stamp)}}  # fmt: skip
    record = Record(prepared, stamp, stamp)
    changes = [Change(entity, entity_id, "Create", stamp)]
    _commit(realm, entity, record, None, applications, changes)
    return Outcome(record.data, changes)


def update(realm: Realm, entity: str, body: dict[str, Any], now: float, options: Options = Options()) -> Outcome:
    _require_writable(entity, "Update")
    record = _current(realm, entity, body, options)
    sparse = body.get("sparse") is True
    incoming = _writable(entity, body)
    if sparse:
        if "DisplayName" in incoming and not incoming["DisplayName"]:
            raise errors.invalid("DisplayName", "cannot be removed with a sparse update")
        data = {**_writable(entity, record.data), **incoming}
    else:
        data = {**_preserved_on_full_update(entity, record.data), **incoming}
    prepared, applications = _prepare(realm, entity, data, record, now, options)
    new_record = _next_version(record, prepared, now)
    changes = [Change(entity, record.data["Id"], "Update", new_record.updated)]
    _commit(realm, entity, new_record, record, applications, changes)
    return Outcome(new_record.data, changes)


def delete(realm: Realm, entity: str, body: dict[str, Any], now: float, options: Options = Options()) -> Outcome:
    if entity not in ("Invoice", "Payment"):
        raise errors.unsupported("Delete", entity)
    record = _current(realm, entity, body, options)
    entity_id = record.data["Id"]
    if entity == "Invoice" and realm.paid_by.get(entity_id):
        raise errors.business_rule("This invoice has payments applied. Unlink them before deleting it.")
    stamp = whole_seconds(now)
    changes: list[Change] = []
    if entity == "Payment":
        _apply_payment(realm, entity_id, {}, stamp, changes)
    else:
        _adjust_customer_balance(realm, record.data, -record.data["Balance"])
        if realm.doc_numbers.get(record.data.get("DocNumber", "")) == entity_id:
            del realm.doc_numbers[record.data["DocNumber"]]
    del realm.records[entity][entity_id]
    realm.deleted[entity][entity_id] = stamp
    changes.insert(0, Change(entity, entity_id, "Delete", stamp))
    return Outcome({"status": "Deleted", "domain": "QBO", "Id": entity_id}, changes)


def void(realm: Realm, entity: str, body: dict[str, Any], now: float, options: Options = Options()) -> Outcome:
    if entity not in ("Invoice", "Payment"):
        raise errors.unsupported("Void", entity)
    record = _current(realm, entity, body, options)
    entity_id = record.data["Id"]
    if entity == "Invoice" and realm.paid_by.get(entity_id):
        raise errors.business_rule("This invoice has payments applied. Unlink them before voiding it.")
    data = _voided(record.data)
    new_record = _next_version(record, data, now)
    changes = [Change(entity, entity_id, "Void", new_record.updated)]
    if entity == "Payment":
        _apply_payment(realm, entity_id, {}, new_record.updated, changes)
    else:
        _adjust_customer_balance(realm, record.data, -record.data["Balance"])
    realm.records[entity][entity_id] = new_record
    return Outcome(new_record.data, changes)


def merge_customers(realm: Realm, survivor_id: str, merged_id: str, now: float) -> Outcome:
    """What a QBO user's merge does: the merged customer's transactions move to the survivor, it disappears."""
    survivor, merged = realm.get("Customer", survivor_id), realm.get("Customer", merged_id)
    if survivor is None or merged is None or survivor_id == merged_id:
        raise errors.not_found("Customer", merged_id if survivor is not None else survivor_id)
    stamp = whole_seconds(now)
    ref = {"value": survivor_id, "name": survivor.data["DisplayName"]}
    for entity in ("Invoice", "Payment"):
        for record in realm.records[entity].values():
            if record.data["CustomerRef"]["value"] == merged_id:
                record.data["CustomerRef"] = dict(ref)
    survivor.data["Balance"] = money(survivor.data["Balance"] + merged.data["Balance"])
    survivor.data["BalanceWithJobs"] = survivor.data["Balance"]
    del realm.records["Customer"][merged_id]
    del realm.display_names[merged.data["DisplayName"].casefold()]
    realm.deleted["Customer"][merged_id] = stamp
    new_survivor = _next_version(survivor, survivor.data, now)
    realm.records["Customer"][survivor_id] = new_survivor
    return Outcome(new_survivor.data, [Change("Customer", survivor_id, "Merge", stamp, deleted_id=merged_id)])


# shared steps


def _require_writable(entity: str, operation: str) -> None:
    if entity not in WRITABLE:
        raise errors.unsupported(operation, entity)


def _writable(entity: str, body: dict[str, Any]) -> dict[str, Any]:
    skipped = (*SYSTEM_FIELDS, *COMPUTED_FIELDS.get(entity, ()))
    return {key: value for key, value in body.items() if key not in skipped}


def _preserved_on_full_update(entity: str, data: dict[str, Any]) -> dict[str, Any]:
    """Fields a full update cannot null: write-on-create values and system-maintained links."""
    kept = {"Customer": ("Balance", "CurrencyRef"), "Invoice": ("CurrencyRef",), "Payment": ("CurrencyRef",)}
    return {key: data[key] for key in kept.get(entity, ()) if key in data}


def _current(realm: Realm, entity: str, body: dict[str, Any], options: Options) -> Record:
    entity_id = body.get("Id")
    if not entity_id:
        raise errors.required("Id")
    record = realm.get(entity, str(entity_id))
    if record is None:
        raise errors.not_found(entity, str(entity_id))
    if options.check_sync_token:
        if body.get("SyncToken") in (None, ""):
            raise errors.required("SyncToken")
        if str(body["SyncToken"]) != record.data["SyncToken"]:
            raise errors.stale_object()
    return record


def _next_version(record: Record, data: dict[str, Any], now: float) -> Record:
    stamp = max(whole_seconds(now), record.updated)
    version = str(int(record.data["SyncToken"]) + 1)
    meta = {"CreateTime": record.data["MetaData"]["CreateTime"], "LastUpdatedTime": company_time(stamp)}
    new = {"Id": record.data["Id"], "SyncToken": version, "domain": "QBO", "sparse": False, **data, "MetaData": meta}
    return Record(new, record.created, stamp)


def _ref(realm: Realm, data: dict[str, Any], field: str, entity: str, *, required: bool = True) -> Record | None:
    ref = data.get(field)
    if not isinstance(ref, dict) or not ref.get("value"):
        if required:
            raise errors.required(field)
        return None
    record = realm.get(entity, str(ref["value"]))
    if record is None or record.data.get("Active") is False:
        raise errors.not_found(entity, str(ref["value"]))
    name = record.data.get("DisplayName") or record.data.get("Name")
    data[field] = {"value": record.data["Id"], **({"name": name} if name else {})}
    return record


def _number(data: dict[str, Any], field: str, *, required: bool, places: int | None = None) -> Decimal | None:
    """The field as an exact Decimal: a JSON number (never a string), with at most `places` decimals (trailing zeros
    do not count) and at most 10 digits before the point when `places` is given."""
    value = data.get(field)
    if value is None:
        if required:
            raise errors.required(field)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise errors.invalid(field, f"must be a number, got {value!r}")
    # A float only reaches here from in-process callers (seed data, tests): read it as the number it prints as.
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise errors.invalid(field, f"must be a finite number, got {value!r}")
    if places is not None:
        if exact.decimal_places(number) > places:
            raise errors.invalid(field, f"has more than {places} decimal places: {exact.plain(number)}")
        if abs(number) >= Decimal(10) ** INTEGER_DIGITS:
            raise errors.invalid(field, f"has more than {INTEGER_DIGITS} digits before the decimal point")
    return number


def _amount(data: dict[str, Any], field: str, currency: str, *, required: bool) -> Decimal | None:
    """A money field: at most the currency's minor-unit decimals (stricter reading)."""
    return _number(data, field, required=required, places=exact.minor_unit(currency))


def _text_ok(field: str, value: Any, max_length: int) -> None:
    if not isinstance(value, str):
        raise errors.invalid(field, "must be a string")
    if len(value) > max_length:
        raise errors.invalid(field, f"is longer than {max_length} characters")
    if any(bad in value for bad in (":", "\t", "\n")):
        raise errors.business_rule(f"{field} cannot contain a colon, tab or newline")


def _prepare(
    realm: Realm, entity: str, data: dict[str, Any], existing: Record | None, now: float, options: Options
) -> tuple[dict[str, Any], dict[str, Decimal] | None]:
    """Validated entity fields plus computed ones; for a Payment also its applications {Invoice Id: amount}."""
    if entity == "Payment":
        return _prepare_payment(realm, data, existing, now)
    preparers: dict[str, Callable[..., dict[str, Any]]] = {
        "Customer": _prepare_customer,
        "Item": _prepare_item,
        "Invoice": _prepare_invoice,
    }
    return preparers[entity](realm, data, existing, now, options), None


def _commit(
    realm: Realm,
    entity: str,
    record: Record,
    previous: Record | None,
    applications: dict[str, Decimal] | None,
    changes: list[Change],
) -> None:
    entity_id = record.data["Id"]
    index = {"Customer": (realm.display_names, "DisplayName"), "Item": (realm.item_names, "Name")}.get(entity)
    if index is not None:
        names, field = index
        if previous is not None:
            names.pop(previous.data[field].casefold(), None)
        names[record.data[field].casefold()] = entity_id
    if entity == "Invoice":
        old_doc = previous.data.get("DocNumber") if previous is not None else None
        if old_doc and realm.doc_numbers.get(old_doc) == entity_id:
            del realm.doc_numbers[old_doc]
        if record.data.get("DocNumber"):
            realm.doc_numbers.setdefault(record.data["DocNumber"], entity_id)
        if previous is not None:
            _adjust_customer_balance(realm, previous.data, -previous.data["Balance"])
        _adjust_customer_balance(realm, record.data, record.data["Balance"])
    realm.records[entity][entity_id] = record
    if applications is not None:
        _apply_payment(realm, entity_id, applications, record.updated, changes)


# Customer


def _prepare_customer(
    realm: Realm, data: dict[str, Any], existing: Record | None, now: float, options: Options
) -> dict[str, Any]:
    for part in NAME_PARTS:
        if data.get(part):
            _text_ok(part, data[part], 16 if part in ("Title", "Suffix") else 100)
    if not data.get("DisplayName"):
        generated = " ".join(str(data[part]) for part in NAME_PARTS if data.get(part))
        if not generated:
            raise errors.no_name()
        data["DisplayName"] = generated
    name = data["DisplayName"]
    _text_ok("DisplayName", name, 500)
    for field, path, limit in (("CompanyName", ("CompanyName",), 100),
                               ("PrimaryPhone.FreeFormNumber", ("PrimaryPhone", "FreeFormNumber"), 30)):  # fmt: skip
        value: Any = data
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise errors.invalid(field, f"must be a string of at most {limit} characters")
    holder = realm.display_names.get(name.casefold())
    if holder is not None and (existing is None or holder != existing.data["Id"]):
        raise errors.duplicate_name("Customer", name)
    email = (data.get("PrimaryEmailAddr") or {}).get("Address")
    if email is not None and ("@" not in str(email) or "." not in str(email) or len(str(email)) > 100):
        raise errors.invalid("PrimaryEmailAddr.Address", "is not a valid email address")
    currency = data.get("CurrencyRef") or (existing.data["CurrencyRef"] if existing else realm.company.currency_ref())
    company.check_currency(realm.company, str(currency.get("value", "")).upper())
    if existing is not None and currency["value"] != existing.data["CurrencyRef"]["value"]:
        raise errors.business_rule("You can't change the currency of a customer once it is set.")
    if existing is not None:
        balance = existing.data["Balance"]
    else:
        balance = _amount(data, "Balance", currency["value"], required=False) or ZERO
    return {
        "Active": True,
        "Job": False,
        "BillWithParent": False,
        "Taxable": False,
        "PrintOnCheckName": name,
        **data,
        "CurrencyRef": dict(currency),
        "FullyQualifiedName": name,
        "Balance": money(balance),
        "BalanceWithJobs": money(balance),
    }


def _adjust_customer_balance(realm: Realm, transaction: dict[str, Any], delta: Decimal) -> None:
    """Customer Balance follows its invoices' balances; a derived figure, so no new SyncToken for the customer."""
    customer = realm.get("Customer", transaction["CustomerRef"]["value"])
    if customer is not None and delta:
        customer.data["Balance"] = money(customer.data["Balance"] + delta)
        customer.data["BalanceWithJobs"] = customer.data["Balance"]


# Item


def _prepare_item(
    realm: Realm, data: dict[str, Any], existing: Record | None, now: float, options: Options
) -> dict[str, Any]:
    name = data.get("Name")
    if not name:
        raise errors.required("Name")
    _text_ok("Name", name, 100)
    holder = realm.item_names.get(name.casefold())
    if holder is not None and (existing is None or holder != existing.data["Id"]):
        raise errors.duplicate_name("Item", name)
    item_type = data.get("Type")
    if not item_type:
        raise errors.required("Type")
    if item_type == "Group" and options.allow_group_items:
        return _prepare_group_item(realm, data)
    if item_type not in ITEM_TYPES:
        raise errors.invalid("Type", f"must be one of {sorted(ITEM_TYPES)}")
    if data.get("Sku") is not None:
        _text_ok("Sku", data["Sku"], 100)
    _ref(realm, data, "IncomeAccountRef", "Account", required=item_type in ("Service", "Inventory"))
    _ref(realm, data, "ExpenseAccountRef", "Account", required=False)
    if item_type == "Inventory":
        _ref(realm, data, "AssetAccountRef", "Account")
        if not data.get("InvStartDate"):
            raise errors.required("InvStartDate")
        data["TrackQtyOnHand"] = True
        data.setdefault("QtyOnHand", 0)
    if existing is not None and existing.data.get("TrackQtyOnHand") and not data.get("TrackQtyOnHand"):
        raise errors.business_rule("TrackQtyOnHand cannot be turned off once on.")
    unit_price = _number(data, "UnitPrice", required=False, places=PRICE_PLACES) or ZERO
    return {"Active": True, "Taxable": False, **data, "UnitPrice": unit_price, "FullyQualifiedName": name}


def _prepare_group_item(realm: Realm, data: dict[str, Any]) -> dict[str, Any]:
    """A bundle: ItemGroupDetail.ItemGroupLine[] of {ItemRef, Qty}; it has no price of its own."""
    components = (data.get("ItemGroupDetail") or {}).get("ItemGroupLine") or []
    if not components:
        raise errors.required("ItemGroupDetail.ItemGroupLine")
    for component in components:
        _ref(realm, component, "ItemRef", "Item")
        _number(component, "Qty", required=True, places=PRICE_PLACES)
    return {"Active": True, "Taxable": False, **data, "FullyQualifiedName": data["Name"]}


# Invoice


def _prepare_invoice(
    realm: Realm, data: dict[str, Any], existing: Record | None, now: float, options: Options
) -> dict[str, Any]:
    customer = _ref(realm, data, "CustomerRef", "Customer")
    currency_fields = _transaction_currency(realm, "Invoice", data, existing, customer)
    raw_lines = [line for line in data.get("Line") or [] if line.get("DetailType") != "SubTotalLineDetail"]
    if not raw_lines:
        raise errors.required("Line")
    existing_line_ids = {line.get("Id") for line in existing.data["Line"]} if existing is not None else set()
    next_line_id = 1 + max((int(i) for i in existing_line_ids if str(i).isdigit()), default=0)
    lines: list[dict[str, Any]] = []
    currency = str(currency_fields["CurrencyRef"]["value"])
    _amount(data, "Deposit", currency, required=False)
    subtotal = ZERO
    taxable: dict[str, Decimal] = {}  # TaxCode Id -> net amount
    discount: Decimal | None = None

    def new_id(raw: dict[str, Any]) -> str:
        nonlocal next_line_id
        line_id = str(raw.get("Id", ""))
        if line_id not in existing_line_ids:
            line_id, next_line_id = str(next_line_id), next_line_id + 1
        return line_id

    def sales(line: dict[str, Any]) -> Decimal:
        amount = _sales_line(realm, line, currency)
        code = line["SalesItemLineDetail"]["TaxCodeRef"]["value"]
        taxable[code] = taxable.get(code, ZERO) + amount
        return amount

    for position, raw in enumerate(raw_lines, start=1):
        line = {key: value for key, value in raw.items() if key not in ("Id", "LineNum")}
        line["Id"], line["LineNum"] = new_id(raw), position
        detail_type = line.get("DetailType")
        if detail_type == "SalesItemLineDetail":
            subtotal += sales(line)
        elif detail_type == "GroupLineDetail":
            subtotal += _group_line(realm, line, sales, new_id)
        elif detail_type == "DiscountLineDetail":
            if discount is not None:
                raise errors.invalid("Line", "a transaction takes one DiscountLineDetail line")
            discount = _discount_line(line, money(subtotal, currency), currency)
        elif detail_type == "DescriptionOnly":
            line.setdefault("DescriptionLineDetail", {})
            line["Amount"] = ZERO
        else:
            raise errors.invalid("Line.DetailType", f"unsupported value {detail_type!r}")
        lines.append(line)
    subtotal = money(subtotal, currency)
    discount = discount or ZERO
    if data.get("ApplyTaxAfterDiscount") and discount and subtotal:
        taxable = _after_discount(taxable, discount, subtotal, currency)
    tax_detail = _tax_detail(realm, data.get("TxnTaxDetail") or {}, taxable)
    lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    total = money(subtotal - discount + tax_detail["TotalTax"], currency)
    invoice_id = existing.data["Id"] if existing is not None else None
    applied = realm.applied_to(invoice_id) if invoice_id is not None else ZERO
    if total < applied - CENT:
        raise errors.business_rule(f"The invoice total {total} is less than the payments applied to it ({applied}).")
    doc_number = _doc_number(realm, data.get("DocNumber"), invoice_id, options)
    txn_date = data.get("TxnDate") or company_date(now)
    due_date = data.get("DueDate") or (datetime.date.fromisoformat(txn_date) + datetime.timedelta(days=30)).isoformat()
    linked = [link for link in data.get("LinkedTxn") or [] if link.get("TxnType") != "Payment"]
    if invoice_id is not None:
        linked += [{"TxnId": pid, "TxnType": "Payment"} for pid in sorted(realm.paid_by.get(invoice_id, ()), key=int)]
    return {
        "EmailStatus": "NotSet",
        "PrintStatus": "NotSet",
        "ApplyTaxAfterDiscount": False,
        "Deposit": 0,
        **data,
        **currency_fields,
        "DocNumber": doc_number,
        "TxnDate": txn_date,
        "DueDate": due_date,
        "Line": lines,
        "TxnTaxDetail": tax_detail,
        "LinkedTxn": linked,
        "TotalAmt": total,
        "Balance": money(total - applied),
    }


def _sales_line(realm: Realm, line: dict[str, Any], currency: str) -> Decimal:
    detail = dict(line.get("SalesItemLineDetail") or {})
    amount = _amount(line, "Amount", currency, required=True) or ZERO
    if (detail.get("ItemRef") or {}).get("value") == SHIPPING_ITEM_ID:
        detail["ItemRef"] = {"value": SHIPPING_ITEM_ID, "name": "Shipping"}
    else:
        _ref(realm, detail, "ItemRef", "Item", required=False)
    qty = _number(detail, "Qty", required=False, places=PRICE_PLACES)
    unit_price = _number(detail, "UnitPrice", required=False, places=PRICE_PLACES)
    if qty is not None and unit_price is not None and abs(qty * unit_price - amount) > CENT:
        raise errors.amount_mismatch(amount)
    code = (detail.get("TaxCodeRef") or {}).get("value") or "NON"
    detail["TaxCodeRef"] = {"value": code}
    _ref(realm, detail, "TaxCodeRef", "TaxCode")
    line["SalesItemLineDetail"], line["Amount"] = detail, money(amount)
    return money(amount)


def _group_line(realm: Realm, line: dict[str, Any], sales: Callable[[dict[str, Any]], Decimal],
                new_id: Callable[[dict[str, Any]], str]) -> Decimal:  # fmt: skip
    """A bundle line: its components as sent, or else expanded from the Group item (ItemGroupLine x Quantity, each
    at its item's UnitPrice); its Amount is the sum of the components' (XSD: "the lines expanded from the group
    item")."""
    detail = dict(line.get("GroupLineDetail") or {})
    group = _ref(realm, detail, "GroupItemRef", "Item")
    assert group is not None  # required
    if group.data.get("Type") != "Group":
        raise errors.invalid("GroupLineDetail.GroupItemRef", "must reference a Group item")
    quantity = _number(detail, "Quantity", required=False, places=PRICE_PLACES)
    quantity = Decimal(1) if quantity is None else quantity
    detail["Quantity"] = quantity
    given = detail.get("Line") or []
    if not given:
        for part in (group.data.get("ItemGroupDetail") or {}).get("ItemGroupLine") or []:
            item = realm.get("Item", str(part["ItemRef"]["value"]))
            price = Decimal(item.data.get("UnitPrice") or 0) if item is not None else ZERO
            qty = Decimal(part["Qty"]) * quantity
            given.append(
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": money(qty * price),
                    "SalesItemLineDetail": {"ItemRef": dict(part["ItemRef"]), "Qty": qty, "UnitPrice": price},
                }
            )
    components = []
    amount = ZERO
    for raw in given:
        if raw.get("DetailType") != "SalesItemLineDetail":
            raise errors.invalid("GroupLineDetail.Line.DetailType", "a bundle's lines are SalesItemLineDetail lines")
        component = {key: value for key, value in raw.items() if key not in ("Id", "LineNum")}
        component["Id"] = new_id(raw)
        amount += sales(component)
        components.append(component)
    detail["Line"] = components
    line["GroupLineDetail"], line["Amount"] = detail, amount
    return amount


def _after_discount(taxable: dict[str, Decimal], discount: Decimal, subtotal: Decimal,
                    currency: str) -> dict[str, Decimal]:  # fmt: skip
    """ApplyTaxAfterDiscount (XSD: "subtract the discount first and then calculate the sales tax"): the discount
    shared over the tax codes in proportion to their amounts, the last code taking what rounding leaves."""
    shared: dict[str, Decimal] = {}
    left = discount
    codes = sorted(taxable)
    for n, code in enumerate(codes):
        part = left if n == len(codes) - 1 else money(discount * taxable[code] / subtotal, currency)
        shared[code] = taxable[code] - part
        left -= part
    return shared


def _discount_line(line: dict[str, Any], subtotal: Decimal, currency: str) -> Decimal:
    detail = line.get("DiscountLineDetail") or {}
    if detail.get("PercentBased"):
        percent = _number(detail, "DiscountPercent", required=True) or ZERO
        line["Amount"] = money(subtotal * percent / 100, currency)
    else:
        line["Amount"] = money(_amount(line, "Amount", currency, required=True) or ZERO, currency)
    if line["Amount"] > subtotal + CENT:
        raise errors.business_rule("The discount amount can't be greater than the subtotal.")
    return Decimal(line["Amount"])


def _tax_detail(realm: Realm, given: dict[str, Any], taxable: dict[str, Decimal]) -> dict[str, Any]:
    """One TaxLine per rate, from the rates of each line's TaxCode (US TAX/NON pseudo-codes and VAT codes alike)."""
    by_rate: dict[str, Decimal] = {}
    for code_id, net in taxable.items():
        code = realm.records["TaxCode"][code_id].data
        for rate_detail in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail", []):
            rate_id = rate_detail["TaxRateRef"]["value"]
            by_rate[rate_id] = by_rate.get(rate_id, ZERO) + net
    tax_lines: list[dict[str, Any]] = []
    for rate_id, net in sorted(by_rate.items()):
        percent = exact.decimal(realm.records["TaxRate"][rate_id].data["RateValue"]) or ZERO
        tax_lines.append({
            "DetailType": "TaxLineDetail",
            "Amount": money(net * percent / 100),
            "TaxLineDetail": {"TaxRateRef": {"value": rate_id}, "PercentBased": True, "TaxPercent": percent,
                              "NetAmountTaxable": money(net)},
        })  # fmt: skip
    detail: dict[str, Any] = {"TotalTax": money(sum((line["Amount"] for line in tax_lines), ZERO)),
                              "TaxLine": tax_lines}  # fmt: skip
    if given.get("TxnTaxCodeRef"):
        detail["TxnTaxCodeRef"] = given["TxnTaxCodeRef"]
    return detail


def _doc_number(realm: Realm, doc_number: Any, invoice_id: str | None, options: Options) -> str:
    if not doc_number:
        while str(realm.next_doc_number) in realm.doc_numbers:
            realm.next_doc_number += 1
        return str(realm.next_doc_number)
    number = str(doc_number)
    if len(number) > 21:
        raise errors.invalid("DocNumber", "is longer than 21 characters")
    holder = realm.doc_numbers.get(number)
    if holder is not None and holder != invoice_id and not options.allow_duplicate_doc_number:
        raise errors.duplicate_doc_number(number, "Invoice", holder)
    return number


# Payment


def _prepare_payment(
    realm: Realm, data: dict[str, Any], existing: Record | None, now: float
) -> tuple[dict[str, Any], dict[str, Decimal]]:
    customer = _ref(realm, data, "CustomerRef", "Customer")
    assert customer is not None  # required=True
    currency_fields = _transaction_currency(realm, "Payment", data, existing, customer)
    currency = str(currency_fields["CurrencyRef"]["value"])
    total = _amount(data, "TotalAmt", currency, required=True) or ZERO
    if total < 0:
        raise errors.business_rule("TotalAmt cannot be negative.")
    previous = realm.applications.get(existing.data["Id"], {}) if existing is not None else {}
    applications: dict[str, Decimal] = {}
    lines = []
    for raw in data.get("Line") or []:
        if not isinstance(raw, dict):
            raise errors.invalid("Line", "each line must be an object")
        amount = _amount(raw, "Amount", currency, required=True) or ZERO
        links = [link for link in raw.get("LinkedTxn") or [] if link.get("TxnType") == "Invoice"]
        if len(links) != 1:
            raise errors.invalid("Line.LinkedTxn", "each line must link exactly one Invoice")
        invoice = realm.get("Invoice", str(links[0].get("TxnId")))
        if invoice is None:
            raise errors.not_found("Invoice", str(links[0].get("TxnId")))
        if invoice.data["CustomerRef"]["value"] != customer.data["Id"]:
            raise errors.business_rule("The invoice belongs to another customer.")
        invoice_id = invoice.data["Id"]
        applications[invoice_id] = money(applications.get(invoice_id, ZERO) + amount, currency)
        if applications[invoice_id] > invoice.data["Balance"] + previous.get(invoice_id, ZERO) + CENT:
            raise errors.business_rule(f"The payment amount exceeds the open balance of invoice {invoice_id}.")
        lines.append({**raw, "Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]})
    applied = sum(applications.values(), ZERO)
    if applied > total + CENT:
        raise errors.business_rule("The amounts applied to invoices exceed the payment's TotalAmt.")
    deposit = data.get("DepositToAccountRef") or {"value": _undeposited_funds(realm)}
    data["DepositToAccountRef"] = deposit
    _ref(realm, data, "DepositToAccountRef", "Account")
    prepared = {
        "ProcessPayment": False,
        **data,
        **currency_fields,
        "TxnDate": data.get("TxnDate") or company_date(now),
        "TotalAmt": total,
        "UnappliedAmt": total - applied,
        "Line": lines,
    }
    return prepared, applications


def _transaction_currency(
    realm: Realm, entity: str, data: dict[str, Any], existing: Record | None, customer: Record | None
) -> dict[str, Any]:
    """CurrencyRef (and ExchangeRate) of a transaction written: an update keeps the currency it has."""
    if existing is not None:
        if data.get("CurrencyRef") and data["CurrencyRef"].get("value") != existing.data["CurrencyRef"]["value"]:
            raise errors.business_rule("You can't change the currency of a transaction once it is set.")
        kept = {"CurrencyRef": existing.data["CurrencyRef"]}
        if "ExchangeRate" in existing.data:
            kept["ExchangeRate"] = data.get("ExchangeRate", existing.data["ExchangeRate"])
        return kept
    return company.transaction_currency(realm.company, entity, data, customer.data if customer else None)


def _undeposited_funds(realm: Realm) -> str:
    for record in realm.records["Account"].values():
        if record.data.get("AccountSubType") == "UndepositedFunds":
            return str(record.data["Id"])
    raise errors.required("DepositToAccountRef")


def _apply_payment(
    realm: Realm, payment_id: str, applications: dict[str, Decimal], stamp: float, changes: list[Change]
) -> None:
    """Replace what a payment applies; every invoice whose Balance moves gets a new version and an Update."""
    previous = realm.applications.pop(payment_id, {})
    for invoice_id in previous:
        realm.paid_by[invoice_id].discard(payment_id)
    if applications:
        realm.applications[payment_id] = applications
        for invoice_id in applications:
            realm.paid_by[invoice_id].add(payment_id)
    for invoice_id in sorted(set(previous) | set(applications), key=int):
        if previous.get(invoice_id) == applications.get(invoice_id):
            continue
        invoice = realm.get("Invoice", invoice_id)
        if invoice is None:
            continue
        data = dict(invoice.data)
        data["Balance"] = money(data["TotalAmt"] - realm.applied_to(invoice_id))
        data["LinkedTxn"] = [link for link in data.get("LinkedTxn", []) if link.get("TxnType") != "Payment"] + [
            {"TxnId": pid, "TxnType": "Payment"} for pid in sorted(realm.paid_by[invoice_id], key=int)
        ]
        _adjust_customer_balance(realm, data, data["Balance"] - invoice.data["Balance"])
        new_invoice = _next_version(invoice, _writable_and_computed(data), stamp)
        realm.records["Invoice"][invoice_id] = new_invoice
        changes.append(Change("Invoice", invoice_id, "Update", new_invoice.updated))


def _writable_and_computed(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in SYSTEM_FIELDS}


# void


def _voided(data: dict[str, Any]) -> dict[str, Any]:
    """Intuit: amounts and quantities zeroed, "Voided" prepended to PrivateNote, the record stays readable."""
    voided = _writable_and_computed(data)
    lines = []
    for line in data.get("Line", []):
        line = {**line, "Amount": ZERO}
        if "SalesItemLineDetail" in line:
            line["SalesItemLineDetail"] = {**line["SalesItemLineDetail"], "Qty": 0}
        if "GroupLineDetail" in line:
            parts = line["GroupLineDetail"].get("Line") or []
            line["GroupLineDetail"] = {**line["GroupLineDetail"], "Quantity": 0, "Line": [
                {**part, "Amount": ZERO, "SalesItemLineDetail": {**part["SalesItemLineDetail"], "Qty": 0}}
                for part in parts]}  # fmt: skip
        lines.append(line)
    voided["Line"] = lines
    if "TxnTaxDetail" in voided:
        voided["TxnTaxDetail"] = {
            **voided["TxnTaxDetail"],
            "TotalTax": ZERO,
            "TaxLine": [{**tax, "Amount": ZERO} for tax in voided["TxnTaxDetail"].get("TaxLine", [])],
        }
    voided["TotalAmt"] = ZERO
    voided["Balance" if "Balance" in voided else "UnappliedAmt"] = ZERO
    note = data.get("PrivateNote")
    voided["PrivateNote"] = f"Voided - {note}" if note else "Voided"
    return voided

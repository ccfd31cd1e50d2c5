"""Exact money end to end: items, invoices and payments with awkward amounts (0.1 + 0.2, 3 x 2.835, a HubSpot price
of 9 decimals, a payment split over two invoices) synced both ways through the sandboxes, then every request body
hsqbo sent, as the sandboxes recorded it, is read back: no amount in it was float-rounded (shared/money.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import pytest

from shared import money
from shared.domain import Kind
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration

EVERYTHING_BOTH_WAYS: dict[str, Any] = {
    "contacts": {"hubspot_to_qbo": {}},
    "products": {"direction": "two_way"},
    "invoices": {"direction": "two_way"},
    "payments": {"direction": "two_way", "allocate_multi_invoice": True},
}
INCOME_ACCOUNT = "1"  # the sandbox's "Sales of Product Income"

# QBO fields holding an amount (at most the currency's minor unit) or a unit price / quantity (at most 5 decimals)
QBO_AMOUNTS = frozenset({"Amount", "TotalAmt", "Balance", "UnappliedAmt", "TotalTax", "Deposit", "HomeTotalAmt",
                         "HomeBalance", "NetAmountTaxable"})  # fmt: skip
QBO_PRICES = frozenset({"UnitPrice", "Qty", "DiscountPercent"})
# HubSpot properties (strings) holding an amount, or a price / quantity / percentage
HUBSPOT_PRICES = frozenset({"price", "quantity", "hs_discount_percentage", "hs_tax_rate"})
# A JSON number with more fraction digits than any API is sent: what a float's binary error looks like
LONG_FRACTION = re.compile(rb"(?<![\w.\"])-?\d+\.\d{6,}(?![\w\"])")


@pytest.fixture
def sync_overrides() -> dict[str, Any]:
    return EVERYTHING_BOTH_WAYS


def _places(text: str) -> int:
    return money.decimal_places(Decimal(text))


def _qbo_problems(value: Any, where: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in QBO_AMOUNTS or key in QBO_PRICES:
                if not isinstance(item, int | Decimal) or isinstance(item, bool):
                    yield f"{where}{key} = {item!r} is not a JSON number"
                elif _places(str(item)) > (2 if key in QBO_AMOUNTS else money.PRICE_PLACES):
                    yield f"{where}{key} = {item} has too many decimals"
            yield from _qbo_problems(item, f"{where}{key}.")
    elif isinstance(value, list):
        for item in value:
            yield from _qbo_problems(item, where)


def _hubspot_problems(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "properties" and isinstance(item, dict):
                for name, text in item.items():
                    is_amount = "amount" in name or name in ("discount", "hs_balance_due")
                    if (is_amount or name in HUBSPOT_PRICES) and text not in (None, ""):
                        try:
                            places = _places(str(text))
                        except InvalidOperation:
                            yield f"{name} = {text!r} is not a number"
                            continue
                        if places > (2 if is_amount else money.PRICE_PLACES):
                            yield f"{name} = {text!r} has too many decimals"
            else:
                yield from _hubspot_problems(item)
    elif isinstance(value, list):
        for item in value:
            yield from _hubspot_problems(item)


async def _recorded_bodies(url: str) -> list[tuple[str, bytes]]:
    """(method and path, JSON body) of every API request the sandbox at `url` recorded with one."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_sandbox/requests", params={"bodies": "true"}) as r:
        assert r.status == 200
        log = await r.json()
    return [(f"{e['method']} {e['path']}", e["body"].encode()) for e in log["requests"] if e.get("body")]


def _float_rounded(bodies: list[tuple[str, bytes]], problems_of: Any) -> list[str]:
    found = []
    for request, body in bodies:
        found += [f"{request}: {number.decode()}" for number in LONG_FRACTION.findall(body)]
        found += [f"{request}: {problem}" for problem in problems_of(money.loads(body))]
    return found


def test_the_check_finds_float_rounded_amounts() -> None:
    qbo = [("POST /invoice", b'{"Line": [{"Amount": 2.4999999999, "SalesItemLineDetail": {"UnitPrice": 3.3333333}}]}'),
           ("POST /payment", b'{"TotalAmt": "10.00", "Line": [{"Amount": 10.005}]}')]  # fmt: skip
    assert len(_float_rounded(qbo, _qbo_problems)) == 6  # 2 long fractions, 3 too many decimals, 1 string
    hubspot = [("POST /line_items", b'{"properties": {"price": "3.333333333333333333333333333", "amount": "2.505"}}')]
    assert len(_float_rounded(hubspot, _hubspot_problems)) == 2
    assert (
        _float_rounded([("POST /x", b'{"properties": {"price": "9.12346", "amount": "8.51"}}')], _hubspot_problems)
        == []
    )


def _item(stack: Stack, name: str, sku: str, price: Decimal) -> str:
    body = {
        "Name": name,
        "Type": "Service",
        "Sku": sku,
        "UnitPrice": price,
        "IncomeAccountRef": {"value": INCOME_ACCOUNT},
    }
    return str(stack.qbo_edit("Item", "create", body)["Id"])


def _line(item_id: str, qty: Decimal | int, price: Decimal, amount: Decimal) -> dict[str, Any]:
    return {"DetailType": "SalesItemLineDetail", "Amount": amount,
            "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": price}}  # fmt: skip


async def test_no_float_rounded_amount_in_any_request(stack: Stack) -> None:
    email = "payer@example.com"
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Payer", "PrimaryEmailAddr": {"Address": email}})
    customer_id = str(customer["Id"])
    # QBO -> HubSpot: items at 5 decimals, invoices whose lines add up to cents only exactly
    gadget = _item(stack, "Gadget", "G-1", Decimal("2.835"))
    bolt = _item(stack, "Bolt", "B-1", Decimal("0.12345"))
    dime = _item(stack, "Dime", "D-1", Decimal("0.1"))
    # HubSpot -> QBO: a product priced with 9 decimals (QBO takes 5)
    stack.hubspot_edit("products", "create", properties={"name": "Gizmo", "hs_sku": "Z-1", "price": "9.123456789"})
    await stack.settle()
    first = stack.qbo_edit("Invoice", "create", {"CustomerRef": {"value": customer_id}, "Line": [
        _line(gadget, 3, Decimal("2.835"), Decimal("8.51")),  # 8.505, half away from zero
        _line(bolt, 7, Decimal("0.12345"), Decimal("0.86")),
        _line(dime, 3, Decimal("0.1"), Decimal("0.30")),  # 0.30000000000000004 as floats
    ]})  # fmt: skip
    dimes = _line(dime, 101, Decimal("0.1"), Decimal("10.10"))
    second = stack.qbo_edit("Invoice", "create", {"CustomerRef": {"value": customer_id}, "Line": [dimes]})
    await stack.settle()
    # one QBO payment over both invoices: split into two HubSpot payments
    applied = {str(first["Id"]): first["TotalAmt"], str(second["Id"]): Decimal("5.05")}
    lines = [{"Amount": amount, "LinkedTxn": [{"TxnId": i, "TxnType": "Invoice"}]} for i, amount in applied.items()]
    stack.qbo_edit("Payment", "create", {"CustomerRef": {"value": customer_id}, "TotalAmt": sum(applied.values()),
                                         "TxnDate": "2026-03-02", "Line": lines})  # fmt: skip
    await stack.settle()
    # HubSpot -> QBO: an invoice with a line item of a 0.1 price, then a HubSpot payment of part of it
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("email") == email]
    invoice = stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD"})
    line = stack.hubspot_edit("line_items", "create", properties={"name": "Dime", "hs_sku": "D-1", "price": "0.1",
                                                                   "quantity": "3"})  # fmt: skip
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="line_items", to_id=line["id"])
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="contacts", to_id=contact["id"])
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_invoice_status": "open"})
    await stack.settle()
    paid = {"hs_initial_amount": "0.2", "hs_initiated_date": "2026-03-02T15:00:00Z", "hs_currency_code": "USD"}
    payment = stack.hubspot_edit("commerce_payments", "create", properties=paid)
    stack.hubspot_edit(
        "commerce_payments", "associate", id=payment["id"], to_object_type="invoices", to_id=invoice["id"]
    )
    await stack.settle()

    # everything synced, to the cent
    [gizmo] = [i for i in stack.qbo_entities("Item") if i.get("Sku") == "Z-1"]
    assert gizmo["UnitPrice"] == Decimal("9.12346")
    parts = sorted(Decimal(p["hs_initial_amount"]) for p in stack.hubspot_records("commerce_payments")
                   if p.get("hsqbo_qbo_payment"))  # fmt: skip
    assert parts == sorted(applied.values())
    link = await stack.store.get_link(CONNECTION, Kind.PAYMENT, hubspot_id=str(payment["id"]))
    assert link is not None
    assert link.status == LinkStatus.SYNCED
    [made] = [p for p in stack.qbo_entities("Payment") if p["Id"] == link.qbo_id]
    assert made["TotalAmt"] == Decimal("0.20")

    # and not one amount float-rounded in what hsqbo sent
    qbo_bodies = await _recorded_bodies(stack.sandbox.qbo_server.url)
    hubspot_bodies = await _recorded_bodies(stack.sandbox.hubspot_server.url)
    assert any("/payment" in request for request, _ in qbo_bodies)  # the log did keep the bodies
    assert any("commerce_payments" in request for request, _ in hubspot_bodies)
    assert _float_rounded(qbo_bodies, _qbo_problems) == []
    assert _float_rounded(hubspot_bodies, _hubspot_problems) == []

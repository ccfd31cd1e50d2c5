"""Currencies end to end (the issue's "Currency" rules): each side's currencies are read through its API; invoices
and payments carry their currency both ways or are excluded with that reason; item prices sync only in the QBO home
currency. Both sandboxes model the accounts' settings (QBO home currency, multicurrency and exchange rates; the
HubSpot portal's company and additional currencies)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.domain import Kind
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration

INCOME_ACCOUNT = "1"  # the sandbox's "Sales of Product Income"
INVOICES_BOTH_WAYS = {"contacts": {"hubspot_to_qbo": {}}, "products": {"direction": "off"},
                      "invoices": {"direction": "two_way"}, "payments": {"direction": "two_way"}}  # fmt: skip


@pytest.fixture
def sync_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = getattr(request, "param", INVOICES_BOTH_WAYS)
    return overrides


def multicurrency(stack: Stack, rate: str = "1.0825") -> None:
    """A USD company with multicurrency on and a EUR rate; a USD portal that also has EUR."""
    stack.sandbox.qbo.realms[stack.realm_id].company.configure({"multicurrency": True, "exchange_rates": {"EUR": rate}})
    stack.sandbox.hubspot.accounts.get(stack.portal_id).configure(additional_currencies=["EUR"])


async def euro_customer(stack: Stack, email: str) -> tuple[str, str]:
    """A QBO customer in EUR and the HubSpot contact the contacts rule makes of it."""
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": email, "CurrencyRef": {"value": "EUR"},
                                                     "PrimaryEmailAddr": {"Address": email}})  # fmt: skip
    await stack.settle()
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("email") == email]
    return str(customer["Id"]), contact["id"]


def hubspot_invoice(stack: Stack, contact_id: str, currency: str, price: str = "40") -> str:
    invoice = stack.hubspot_edit("invoices", "create", properties={"hs_currency": currency})
    line = stack.hubspot_edit("line_items", "create", properties={"name": "Consulting", "quantity": "1",
                                                                   "price": price})  # fmt: skip
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="line_items", to_id=line["id"])
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="contacts", to_id=contact_id)
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_invoice_status": "open"})
    return str(invoice["id"])


def qbo_invoice(stack: Stack, customer_id: str, currency: str | None) -> str:
    item = stack.qbo_edit("Item", "create", {"Name": f"Design {customer_id}", "Type": "Service", "UnitPrice": 30,
                                             "IncomeAccountRef": {"value": INCOME_ACCOUNT}})  # fmt: skip
    body: dict[str, Any] = {"CustomerRef": {"value": customer_id}, "Line": [{
        "DetailType": "SalesItemLineDetail", "Amount": 30,
        "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 30}}]}  # fmt: skip
    if currency:
        body["CurrencyRef"] = {"value": currency}
    return str(stack.qbo_edit("Invoice", "create", body)["Id"])


async def test_invoice_in_foreign_currency_carries_currency_ref(stack: Stack) -> None:
    multicurrency(stack)
    customer_id, contact_id = await euro_customer(stack, "kunde@example.de")
    hubspot_id = hubspot_invoice(stack, contact_id, "EUR")
    qbo_id = qbo_invoice(stack, customer_id, "EUR")
    await stack.settle()

    link = await stack.store.get_link(CONNECTION, Kind.INVOICE, hubspot_id=hubspot_id)
    assert link is not None
    assert link.status == LinkStatus.SYNCED
    assert link.qbo_id is not None
    [made] = [i for i in stack.qbo_entities("Invoice") if i["Id"] == link.qbo_id]
    assert made["CurrencyRef"]["value"] == "EUR"
    assert made["ExchangeRate"] == Decimal("1.0825")  # QBO's own rate for the invoice date, sent with it
    assert made["CustomerRef"]["value"] == customer_id

    [copy] = [i for i in stack.hubspot_records("invoices") if i.get("hsqbo_qbo_invoice_id") == qbo_id]
    assert copy["hs_currency"] == "EUR"

    payment = stack.hubspot_edit("commerce_payments", "create", properties={
        "hs_initial_amount": "40", "hs_initiated_date": "2026-01-05T12:00:00Z", "hs_currency_code": "EUR"})  # fmt: skip
    stack.hubspot_edit("commerce_payments", "associate", id=payment["id"], to_object_type="invoices", to_id=hubspot_id)
    await stack.settle()
    [paid] = [p for p in stack.qbo_entities("Payment") if p["CustomerRef"]["value"] == customer_id]
    assert (paid["CurrencyRef"]["value"], paid["ExchangeRate"]) == ("EUR", Decimal("1.0825"))


async def test_other_currency_excluded_when_multicurrency_off(stack: Stack) -> None:
    stack.sandbox.hubspot.accounts.get(stack.portal_id).configure(additional_currencies=["EUR"])
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Home Co",
                                                     "PrimaryEmailAddr": {"Address": "home@example.com"}})  # fmt: skip
    await stack.settle()
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("email") == "home@example.com"]
    hubspot_id = hubspot_invoice(stack, contact["id"], "EUR")
    await stack.settle()

    link = await stack.store.get_link(CONNECTION, Kind.INVOICE, hubspot_id=hubspot_id)
    assert link is not None
    assert (link.status, link.error_category) == (LinkStatus.EXCLUDED, "other_currency")
    assert "multicurrency is off" in (link.error_message or "")
    assert [i for i in stack.qbo_entities("Invoice") if i["CustomerRef"]["value"] == customer["Id"]] == []


PRODUCTS_BOTH_WAYS = {"contacts": {"direction": "off"}, "invoices": {"direction": "off"},
                      "products": {"direction": "two_way", "require_sku": False}}  # fmt: skip


@pytest.mark.parametrize("sync_overrides", [PRODUCTS_BOTH_WAYS], indirect=True)
async def test_item_price_syncs_when_hubspots_currency_is_the_home_currency(stack: Stack) -> None:
    stack.qbo_edit("Item", "create", {"Name": "Priced", "Type": "Service", "UnitPrice": 120,
                                               "IncomeAccountRef": {"value": INCOME_ACCOUNT}})  # fmt: skip
    await stack.settle()
    [product] = [p for p in stack.hubspot_records("products") if p.get("name") == "Priced"]
    assert product["price"] == "120"


@pytest.mark.parametrize("sync_overrides", [PRODUCTS_BOTH_WAYS], indirect=True)
async def test_item_price_only_in_home_currency(stack: Stack) -> None:
    stack.sandbox.hubspot.accounts.get(stack.portal_id).configure(company_currency="EUR", additional_currencies=["USD"])
    item = stack.qbo_edit("Item", "create", {"Name": "Dollar item", "Type": "Service", "UnitPrice": 120,
                                             "IncomeAccountRef": {"value": INCOME_ACCOUNT}})  # fmt: skip
    await stack.settle()
    [product] = [p for p in stack.hubspot_records("products") if p.get("name") == "Dollar item"]
    assert product.get("price") in (None, "")  # 120 USD is not 120 EUR

    stack.hubspot_edit("products", "update", id=product["id"], properties={"price": "99", "description": "new"})
    await stack.settle()
    [after] = [i for i in stack.qbo_entities("Item") if i["Id"] == item["Id"]]
    assert after["Description"] == "new"  # the rest syncs
    assert after["UnitPrice"] == 120  # the EUR price is not written over the USD one


@pytest.mark.parametrize("sync_overrides", [{**INVOICES_BOTH_WAYS, "hubspot_currency": "EUR"}], indirect=True)
async def test_configured_hubspot_currency_must_be_the_portals(stack: Stack) -> None:
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Config Co"})
    await stack.settle()
    invoice_id = qbo_invoice(stack, str(customer["Id"]), None)
    await stack.settle()
    link = await stack.store.get_link(CONNECTION, Kind.INVOICE, qbo_id=invoice_id)
    assert link is not None
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "config")
    assert "hubspot_currency = 'EUR'" in (link.error_message or "")
    assert "company currency is USD" in (link.error_message or "")

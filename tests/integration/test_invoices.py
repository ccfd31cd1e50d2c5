"""Invoices ↔ Invoices end to end: sandboxes → signed webhooks → receiver → RabbitMQ → worker → the other API.

Each test is named after the rule it checks (incumbent-integration.md and the issue's invoice rules). Invoices sync
both ways here; products do not sync, so line items meet items only through the invoice rule's own SKU matching."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from shared.domain import Awaited, Kind, PendingKey, Provider
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack, review

pytestmark = pytest.mark.integration

INVOICES = {"direction": "two_way"}
BASE = {"contacts": {"hubspot_to_qbo": {}}, "products": {"direction": "off"}, "invoices": INVOICES}
INCOME_ACCOUNT = "1"  # the sandbox's "Sales of Product Income"


@pytest.fixture
def sync_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Invoices both ways, products off; a test parametrizes it (`indirect=True`) to change more."""
    overrides: dict[str, Any] = getattr(request, "param", BASE)
    return overrides


# --- helpers ---------------------------------------------------------------------------------------------------------


async def customer_with_contact(stack: Stack, email: str, *, company: str | None = None) -> tuple[str, str]:
    """A QBO customer and the HubSpot contact the contacts rule makes of it (with a primary company if named)."""
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": email, "PrimaryEmailAddr": {"Address": email}})
    await stack.settle()
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("email") == email]
    if company is not None:
        made = stack.hubspot_edit("companies", "create", properties={"name": company})
        stack.hubspot_edit("contacts", "associate", id=contact["id"], to_object_type="companies", to_id=made["id"],
                           association_type_id=1)  # fmt: skip
        await stack.settle()
    return str(customer["Id"]), contact["id"]


def item(stack: Stack, name: str, price: float, sku: str | None = None) -> str:
    body: dict[str, Any] = {"Name": name, "Type": "Service", "UnitPrice": price,
                            "IncomeAccountRef": {"value": INCOME_ACCOUNT}}  # fmt: skip
    if sku:
        body["Sku"] = sku
    return str(stack.qbo_edit("Item", "create", body)["Id"])


def sales_line(item_id: str, qty: float, price: float, line_id: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "DetailType": "SalesItemLineDetail",
        "Amount": qty * price,
        "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": price},
    }
    if line_id:
        line["Id"] = line_id
    return line  # fmt: skip


def qbo_invoice(stack: Stack, customer_id: str, *lines: dict[str, Any], **extra: Any) -> str:
    return str(stack.qbo_edit("Invoice", "create", {"CustomerRef": {"value": customer_id}, "Line": list(lines),
                                                    **extra})["Id"])  # fmt: skip


def hubspot_copy(stack: Stack, qbo_id: str) -> dict[str, str]:
    [copy] = [i for i in stack.hubspot_records("invoices") if i.get("hsqbo_qbo_invoice_id") == qbo_id]
    return copy


def associated(stack: Stack, from_type: str, record_id: str, to_type: str) -> list[str]:
    portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal
    return sorted(str(i) for i in portal.associations.targets((from_type, int(record_id)), to_type))


def line_items(stack: Stack, invoice_id: str) -> list[dict[str, str]]:
    ids = associated(stack, "invoices", invoice_id, "line_items")
    return [r for r in stack.hubspot_records("line_items") if r["id"] in ids]


def hubspot_invoice(
    stack: Stack, contact_id: str, *lines: dict[str, Any], adjustments: tuple[tuple[str, dict[str, str]], ...] = ()
) -> dict[str, Any]:
    """What a HubSpot user does: a draft, its line items, discounts, fees and taxes and contact, then open it.
    `adjustments`: ("discounts" | "fees" | "taxes", properties)."""
    invoice = stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD"})
    for properties in lines:
        made = stack.hubspot_edit("line_items", "create", properties=properties)
        stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="line_items", to_id=made["id"])
    for kind, properties in adjustments:
        made = stack.hubspot_edit(kind, "create", properties=properties)
        stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type=kind, to_id=made["id"])
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="contacts", to_id=contact_id)
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_invoice_status": "open"})
    return invoice


def made_from_hubspot(stack: Stack) -> list[dict[str, Any]]:
    return [i for i in stack.qbo_entities("Invoice") if str(i.get("PrivateNote", "")).startswith("HubSpot invoice")]


async def link_of(stack: Stack, *, qbo_id: str | None = None, hubspot_id: str | None = None) -> Any:
    return await stack.store.get_link(CONNECTION, Kind.INVOICE, qbo_id=qbo_id, hubspot_id=hubspot_id)


# --- QBO -> HubSpot --------------------------------------------------------------------------------------------------


async def test_qbo_invoice_becomes_a_hubspot_invoice_with_lines_contact_and_primary_company(stack: Stack) -> None:
    customer_id, contact_id = await customer_with_contact(stack, "ann@example.com", company="Ann Co")
    widget = item(stack, "Widget", 25, sku="W-1")
    product = stack.hubspot_edit("products", "create", properties={"name": "Widget", "hs_sku": "W-1"})
    invoice_id = qbo_invoice(stack, customer_id, sales_line(widget, 2, 25), TxnDate="2026-03-02",
                             DueDate="2026-04-01")  # fmt: skip
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    assert (copy["hs_invoice_billable"], copy["hs_invoice_status"], copy["hs_currency"]) == ("false", "open", "USD")
    assert (copy["hs_invoice_date"][:10], copy["hs_due_date"][:10]) == ("2026-03-02", "2026-04-01")
    assert copy["hs_amount_billed"] == "50"
    [line] = line_items(stack, copy["id"])
    assert (line["name"], line["quantity"], line["price"], line["hs_sku"]) == ("Widget", "2", "25", "W-1")
    assert line["hs_product_id"] == product["id"]
    assert associated(stack, "invoices", copy["id"], "contacts") == [contact_id]
    [company] = [c for c in stack.hubspot_records("companies") if c.get("name") == "Ann Co"]
    assert associated(stack, "invoices", copy["id"], "companies") == [company["id"]]


async def test_qbo_invoice_of_a_contact_without_company_has_no_company(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "solo@example.com")
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Gadget", 10), 1, 10))
    await stack.settle()
    assert associated(stack, "invoices", hubspot_copy(stack, invoice_id)["id"], "companies") == []


@pytest.mark.parametrize(
    "sync_overrides", [{**BASE, "setup_date": dt.date.today() + dt.timedelta(days=1)}], indirect=True
)
async def test_invoice_created_before_the_setup_date_is_excluded(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "old@example.com")
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Old", 5), 1, 5))
    await stack.settle()
    assert stack.hubspot_records("invoices") == []
    link = await link_of(stack, qbo_id=invoice_id)
    assert (link.status, link.error_category) == (LinkStatus.EXCLUDED, "filtered")
    assert "created_after" in link.error_message


async def test_invoice_in_another_currency_than_the_portals_is_excluded_with_that_reason(stack: Stack) -> None:
    stack.sandbox.qbo.realms[stack.realm_id].company.configure({"multicurrency": True})  # the portal has USD only
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Euro GmbH", "CurrencyRef": {"value": "EUR"},
                                                     "PrimaryEmailAddr": {"Address": "euro@example.com"}})  # fmt: skip
    await stack.settle()
    line = sales_line(item(stack, "Euro", 5), 1, 5)
    invoice_id = qbo_invoice(stack, str(customer["Id"]), line, CurrencyRef={"value": "EUR"})
    await stack.settle()
    assert stack.hubspot_records("invoices") == []
    link = await link_of(stack, qbo_id=invoice_id)
    assert (link.status, link.error_category) == (LinkStatus.EXCLUDED, "other_currency")
    assert "EUR" in link.error_message
    assert "USD" in link.error_message


async def test_qbo_edit_of_amount_and_lines_updates_hubspot_once_without_echo(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "edit@example.com")
    widget = item(stack, "Widget", 25)
    invoice_id = qbo_invoice(stack, customer_id, sales_line(widget, 2, 25))
    await stack.settle()
    stack.clear_request_logs()
    stack.qbo_edit("Invoice", "update", {"Id": invoice_id, "Line": [sales_line(widget, 3, 25, line_id="1")]})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 1, "quickbooks": 0}  # the one line item, nothing bounced back
    copy = hubspot_copy(stack, invoice_id)
    assert copy["hs_amount_billed"] == "75"
    [line] = line_items(stack, copy["id"])
    assert line["quantity"] == "3"


async def test_qbo_tax_reaches_hubspot_as_an_invoice_tax_so_the_amounts_agree(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "vat@example.com")
    line = sales_line(item(stack, "Taxed", 100), 1, 100)
    line["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "3"}  # the sandbox's 20% VAT code
    invoice_id = qbo_invoice(stack, customer_id, line)
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    assert (copy["hs_subtotal"], copy["hs_amount_billed"]) == ("100", "120")
    [tax] = [t for t in stack.hubspot_records("taxes") if t["id"] in associated(stack, "invoices", copy["id"], "taxes")]
    assert (tax["hs_label"], tax["hs_type"], tax["hs_value"]) == ("Tax", "FIXED", "20")
    assert [li["name"] for li in line_items(stack, copy["id"])] == ["Taxed"]


async def test_qbo_discount_line_reaches_hubspot_total(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "discount@example.com")
    percent = {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}}
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Widget", 100), 1, 100), percent)
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    assert (copy["hs_amount_billed"], copy["hs_balance_due"]) == ("90", "90")  # not 100
    [discount] = [d for d in stack.hubspot_records("discounts")
                  if d["id"] in associated(stack, "invoices", copy["id"], "discounts")]  # fmt: skip
    assert (discount["hs_type"], discount["hs_value"], discount["hs_label"]) == ("FIXED", "10", "Discount 10 %")
    assert (await link_of(stack, qbo_id=invoice_id)).status == LinkStatus.SYNCED
    stack.qbo_edit("Invoice", "update", {"Id": invoice_id, "Line": [sales_line(item(stack, "Other", 50), 1, 50)]})
    await stack.settle()
    assert hubspot_copy(stack, invoice_id)["hs_amount_billed"] == "50"
    assert associated(stack, "invoices", copy["id"], "discounts") == []  # the discount went with QBO's


async def test_bundle_only_invoice_gets_line_items(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "bundle@example.com")
    widget, gadget = item(stack, "Widget", 25, sku="W-1"), item(stack, "Gadget", 5)
    kit = stack.qbo_edit("Item", "create", {"Name": "Kit", "Type": "Group", "ItemGroupDetail": {"ItemGroupLine": [
        {"ItemRef": {"value": widget}, "Qty": 1}, {"ItemRef": {"value": gadget}, "Qty": 2}]}})  # fmt: skip
    bundle = {"DetailType": "GroupLineDetail",
              "GroupLineDetail": {"GroupItemRef": {"value": kit["Id"]}, "Quantity": 3}}  # fmt: skip
    invoice_id = qbo_invoice(stack, customer_id, bundle)
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    found = sorted((li["name"], li["quantity"], li["price"], li.get("hs_sku")) for li in line_items(stack, copy["id"]))
    assert found == [("Gadget", "6", "5", None), ("Widget", "3", "25", "W-1")]
    assert copy["hs_amount_billed"] == "105"  # 3 x (25 + 2 x 5)


async def test_qbo_shipping_and_description_lines_reach_hubspot(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "ship@example.com")
    shipping = {"DetailType": "SalesItemLineDetail", "Amount": Decimal("7.95"),
                "SalesItemLineDetail": {"ItemRef": {"value": "SHIPPING_ITEM_ID"}}}  # fmt: skip
    note = {"DetailType": "DescriptionOnly", "Description": "Delivered to the back door"}
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Widget", 10), 3, 10), shipping, note)
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    names = sorted((li["name"], li["amount"]) for li in line_items(stack, copy["id"]))
    assert names == [("Delivered to the back door", "0"), ("Shipping", "7.95"), ("Widget", "30")]
    assert copy["hs_amount_billed"] == "37.95"


async def test_qbo_line_hubspot_cannot_hold_is_failing_not_synced_with_another_total(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "credit@example.com")
    widget = item(stack, "Widget", 10)
    invoice_id = qbo_invoice(stack, customer_id, sales_line(widget, 2, 10), sales_line(widget, 1, -5))
    await stack.settle()
    link = await link_of(stack, qbo_id=invoice_id)
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "not_representable")
    assert "negative" in link.error_message
    assert [i for i in stack.hubspot_records("invoices") if i.get("hsqbo_qbo_invoice_id") == invoice_id] == []


async def test_qbo_balance_zero_marks_the_hubspot_invoice_paid(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "payer@example.com")
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Paid", 40), 1, 40))
    await stack.settle()
    stack.qbo_edit("Payment", "create", {"CustomerRef": {"value": customer_id}, "TotalAmt": 40,
                                         "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": invoice_id,
                                                                                "TxnType": "Invoice"}]}]})  # fmt: skip
    await stack.settle()
    assert hubspot_copy(stack, invoice_id)["hs_invoice_status"] == "paid"


async def test_qbo_void_voids_the_hubspot_invoice(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "void@example.com")
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Voided", 30), 1, 30))
    await stack.settle()
    stack.qbo_edit("Invoice", "void", {"Id": invoice_id})
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    assert copy["hs_invoice_status"] == "voided"
    assert copy["hs_amount_billed"] == "30"  # HubSpot keeps what was billed


async def test_qbo_delete_voids_the_hubspot_invoice_and_retires_the_link(stack: Stack) -> None:
    customer_id, _ = await customer_with_contact(stack, "del@example.com")
    invoice_id = qbo_invoice(stack, customer_id, sales_line(item(stack, "Deleted", 30), 1, 30))
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    stack.qbo_edit("Invoice", "delete", {"Id": invoice_id})
    await stack.settle()
    [after] = [i for i in stack.hubspot_records("invoices") if i["id"] == copy["id"]]
    assert after["hs_invoice_status"] == "voided"
    assert (await link_of(stack, qbo_id=invoice_id)).status == LinkStatus.DELETED


# --- HubSpot -> QBO --------------------------------------------------------------------------------------------------


async def test_hubspot_invoice_becomes_a_qbo_invoice_with_customer_and_lines_matched_by_sku(stack: Stack) -> None:
    customer_id, contact_id = await customer_with_contact(stack, "buyer@example.com")
    gadget = item(stack, "Gadget", 12, sku="G-1")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Gadget", "quantity": "3", "price": "12", "hs_sku": "G-1"})
    await stack.settle()
    [made] = made_from_hubspot(stack)
    assert made["CustomerRef"]["value"] == customer_id
    [line] = [line for line in made["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert line["SalesItemLineDetail"]["ItemRef"]["value"] == gadget
    assert (line["SalesItemLineDetail"]["Qty"], line["Amount"], made["TotalAmt"]) == (3, 36, 36)
    assert made["DocNumber"] == invoice["properties"]["hs_number"]
    assert (await link_of(stack, hubspot_id=invoice["id"])).qbo_id == made["Id"]


async def test_hubspot_line_discount_reaches_qbo_total(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "linediscount@example.com")
    invoice = hubspot_invoice(
        stack, contact_id,
        {"name": "Widget", "quantity": "10", "price": "234.56", "hs_discount_percentage": "20"},
        {"name": "Gadget", "quantity": "2", "price": "5", "discount": "1"},
    )  # fmt: skip
    await stack.settle()
    [made] = made_from_hubspot(stack)
    billed = next(i for i in stack.hubspot_records("invoices") if i["id"] == invoice["id"])["hs_amount_billed"]
    assert (billed, made["TotalAmt"], made["Balance"]) == ("1884.48", Decimal("1884.48"), Decimal("1884.48"))
    [discount] = [line for line in made["Line"] if line["DetailType"] == "DiscountLineDetail"]
    assert discount["Amount"] == Decimal("471.12")  # 469.12 + 2 x 1
    assert (await link_of(stack, hubspot_id=invoice["id"])).status == LinkStatus.SYNCED


async def test_hubspot_invoice_discount_fee_and_tax_reach_qbo_total(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "adjusted@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Widget", "quantity": "1", "price": "100"}, adjustments=(
        ("discounts", {"hs_label": "Loyalty", "hs_type": "PERCENT", "hs_value": "10"}),
        ("fees", {"hs_label": "Handling", "hs_type": "FIXED", "hs_value": "5"}),
        ("taxes", {"hs_label": "Sales tax", "hs_type": "PERCENT", "hs_value": "8.25"}),
    ))  # fmt: skip
    await stack.settle()
    [made] = made_from_hubspot(stack)
    billed = next(i for i in stack.hubspot_records("invoices") if i["id"] == invoice["id"])["hs_amount_billed"]
    assert (billed, made["TotalAmt"]) == ("102.84", Decimal("102.84"))  # 90 + 5 + 8.25 % of 95 (7.84)
    kinds = [(line["DetailType"], line.get("Description"), line["Amount"]) for line in made["Line"]][:-1]
    assert kinds == [
        ("SalesItemLineDetail", "Widget", 100),
        ("DiscountLineDetail", None, 10),
        ("SalesItemLineDetail", "Handling", 5),
        ("SalesItemLineDetail", "Sales tax", Decimal("7.84")),
    ]
    assert (await link_of(stack, hubspot_id=invoice["id"])).status == LinkStatus.SYNCED


async def test_hubspot_discount_edit_reaches_the_qbo_invoice_made_from_it(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "rediscount@example.com")
    promo = ("discounts", {"hs_label": "Promo", "hs_type": "FIXED", "hs_value": "5"})
    invoice = hubspot_invoice(
        stack, contact_id, {"name": "Widget", "quantity": "2", "price": "30"}, adjustments=(promo,)
    )
    await stack.settle()
    [discount_id] = associated(stack, "invoices", invoice["id"], "discounts")
    stack.hubspot_edit("discounts", "update", id=discount_id, properties={"hs_type": "PERCENT", "hs_value": "25"})
    await stack.settle()
    [made] = made_from_hubspot(stack)
    [discount] = [line for line in made["Line"] if line["DetailType"] == "DiscountLineDetail"]
    assert (discount["Amount"], made["TotalAmt"]) == (15, 45)
    assert (await link_of(stack, hubspot_id=invoice["id"])).status == LinkStatus.SYNCED


async def test_draft_hubspot_invoice_does_not_sync(stack: Stack) -> None:
    stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD"})
    await stack.settle()
    assert made_from_hubspot(stack) == []


async def test_unknown_sku_lines_go_to_one_custom_line_item_created_once(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "custom@example.com")
    hubspot_invoice(stack, contact_id, {"name": "Bespoke work", "quantity": "1", "price": "80", "hs_sku": "NOPE"})
    hubspot_invoice(stack, contact_id, {"name": "More bespoke work", "quantity": "2", "price": "15"})
    await stack.settle()
    [custom] = [i for i in stack.qbo_entities("Item") if i["Name"] == "Custom line item"]
    assert custom["IncomeAccountRef"]["value"] == INCOME_ACCOUNT
    made = made_from_hubspot(stack)
    assert len(made) == 2
    for invoice in made:
        [line] = [line for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail"]
        assert line["SalesItemLineDetail"]["ItemRef"]["value"] == custom["Id"]


async def test_doc_number_collision_lets_qbo_number_the_invoice(stack: Stack) -> None:
    customer_id, contact_id = await customer_with_contact(stack, "clash@example.com")
    widget = item(stack, "Widget", 5)
    draft = stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD"})
    number = draft["properties"]["hs_number"]
    qbo_invoice(stack, customer_id, sales_line(widget, 1, 5), DocNumber=number)  # a QBO user took the number
    line = stack.hubspot_edit("line_items", "create", properties={"name": "Widget", "quantity": "1", "price": "5"})
    stack.hubspot_edit("invoices", "associate", id=draft["id"], to_object_type="line_items", to_id=line["id"])
    stack.hubspot_edit("invoices", "associate", id=draft["id"], to_object_type="contacts", to_id=contact_id)
    stack.hubspot_edit("invoices", "update", id=draft["id"], properties={"hs_invoice_status": "open"})
    await stack.settle()
    [made] = made_from_hubspot(stack)
    assert made["DocNumber"]
    assert made["DocNumber"] != number
    assert number in made["PrivateNote"]
    assert (await link_of(stack, hubspot_id=draft["id"])).status == LinkStatus.SYNCED


@pytest.mark.parametrize("sync_overrides", [{**BASE, "invoices": {**INVOICES, "tax_code": "20.0% S"}}], indirect=True)
async def test_configured_tax_code_is_put_on_every_line_and_qbo_computes_the_tax(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "uk@example.com")
    vat = ("taxes", {"hs_label": "VAT", "hs_type": "PERCENT", "hs_value": "20"})
    invoice = hubspot_invoice(stack, contact_id, {"name": "Consulting", "quantity": "2", "price": "50"},
                              adjustments=(vat,))  # fmt: skip
    await stack.settle()
    [made] = made_from_hubspot(stack)
    [line] = [line for line in made["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert line["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "3"
    assert (made["TxnTaxDetail"]["TotalTax"], made["TotalAmt"]) == (20, 120)
    assert (await link_of(stack, hubspot_id=invoice["id"])).status == LinkStatus.SYNCED


@pytest.mark.parametrize("sync_overrides", [{**BASE, "invoices": {**INVOICES, "tax_code": "20.0% S"}}], indirect=True)
async def test_qbo_tax_hubspot_does_not_bill_is_failing_with_both_totals(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "untaxed@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Consulting", "quantity": "2", "price": "50"})
    await stack.settle()
    link = await link_of(stack, hubspot_id=invoice["id"])
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "total_mismatch")
    assert link.error_message == "QuickBooks totals 120.00 for the HubSpot invoice billing 100"


@pytest.mark.parametrize(
    "sync_overrides", [{**BASE, "invoices": {**INVOICES, "custom_fields": {"1": "hs_purchase_order_number"}}}],
    indirect=True,
)  # fmt: skip
async def test_hubspot_property_fills_a_qbo_invoice_custom_field(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "po@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Thing", "quantity": "1", "price": "9"})
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_purchase_order_number": "PO-7"})
    await stack.settle()
    [made] = made_from_hubspot(stack)
    assert made["CustomField"] == [{"DefinitionId": "1", "Type": "StringType", "StringValue": "PO-7"}]


async def test_hubspot_edit_of_a_hubspot_created_invoice_updates_qbo(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "upd@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Thing", "quantity": "1", "price": "9"})
    await stack.settle()
    stack.clear_request_logs()
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_comments": "Thanks!"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}
    [made] = made_from_hubspot(stack)
    assert made["CustomerMemo"]["value"] == "Thanks!"


async def test_invoice_without_date_does_not_rewrite_txndate(stack: Stack) -> None:
    """A date HubSpot lacks is no change: QBO keeps its TxnDate, and an edit writes only what changed."""
    _, contact_id = await customer_with_contact(stack, "undated@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Thing", "quantity": "1", "price": "9"})
    await stack.settle()
    [made] = made_from_hubspot(stack)
    stack.clear_request_logs()
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_invoice_date": ""})
    await stack.settle()
    assert "hs_invoice_date" not in next(i for i in stack.hubspot_records("invoices") if i["id"] == invoice["id"])
    [kept] = made_from_hubspot(stack)
    assert (kept["TxnDate"], kept["SyncToken"]) == (made["TxnDate"], made["SyncToken"])
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}

    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_comments": "Thanks!"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}
    [edited] = made_from_hubspot(stack)
    assert (edited["TxnDate"], edited["CustomerMemo"]["value"]) == (made["TxnDate"], "Thanks!")


async def test_qbo_edit_of_a_hubspot_created_invoice_is_not_synced_back_and_says_why(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "master@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Thing", "quantity": "1", "price": "9"})
    await stack.settle()
    [made] = made_from_hubspot(stack)
    [line] = [line for line in made["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    stack.clear_request_logs()
    repriced = {**line, "Amount": 19, "SalesItemLineDetail": {**line["SalesItemLineDetail"], "UnitPrice": 19}}
    stack.qbo_edit("Invoice", "update", {"Id": made["Id"], "Line": [repriced]})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    [item_line] = line_items(stack, invoice["id"])
    assert item_line["price"] == "9"
    [latest, *_] = await stack.store.activity(CONNECTION, Kind.INVOICE, qbo_id=made["Id"])
    assert latest.action == "skipped"
    assert "lines, prices or tax" in latest.detail
    assert "created in HubSpot" in latest.detail


async def test_hubspot_line_item_edit_reaches_the_qbo_invoice_made_from_it(stack: Stack) -> None:
    _, contact_id = await customer_with_contact(stack, "lines@example.com")
    invoice = hubspot_invoice(stack, contact_id, {"name": "Thing", "quantity": "1", "price": "9"})
    await stack.settle()
    [line_item_id] = associated(stack, "invoices", invoice["id"], "line_items")
    stack.clear_request_logs()
    stack.hubspot_edit("line_items", "update", id=line_item_id, properties={"name": "Better thing", "price": "11"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}
    [made] = made_from_hubspot(stack)
    [line] = [line for line in made["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert (line["Description"], line["SalesItemLineDetail"]["UnitPrice"], made["TotalAmt"]) == ("Better thing", 11, 11)


# --- records waiting for another record --------------------------------------------------------------------------

# Customers reach HubSpot only once a QBO user marks them ready, so an invoice can sync before its customer does.
CONTACTS_WHEN_READY = {**BASE, "contacts": {"hubspot_to_qbo": {}, "qbo_to_hubspot": {"qbo_fields": {"Notes": "ready"}}}}


@pytest.mark.parametrize("sync_overrides", [CONTACTS_WHEN_READY], indirect=True)
async def test_invoice_failing_for_want_of_its_contact_syncs_by_itself_once_the_contact_syncs(stack: Stack) -> None:
    email = "late@example.com"
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Late Ltd", "PrimaryEmailAddr": {"Address": email}})
    invoice_id = qbo_invoice(stack, str(customer["Id"]), sales_line(item(stack, "Late", 10), 1, 10))
    await stack.settle()
    assert stack.hubspot_records("invoices") == []
    link = await link_of(stack, qbo_id=invoice_id)
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "customer_not_synced")
    waiting = await stack.store.waiting_for(CONNECTION, Awaited(Kind.CONTACT, Provider.QUICKBOOKS, str(customer["Id"])))
    assert waiting == [PendingKey(CONNECTION, Kind.INVOICE, Provider.QUICKBOOKS, invoice_id)]
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "Notes": "ready"})
    await stack.settle()
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("email") == email]
    copy = hubspot_copy(stack, invoice_id)
    assert associated(stack, "invoices", copy["id"], "contacts") == [contact["id"]]
    assert (await link_of(stack, qbo_id=invoice_id)).status == LinkStatus.SYNCED


async def test_invoice_of_a_customer_sharing_its_email_waits_for_the_review(stack: Stack) -> None:
    """Matching never guesses for invoices either: the contact of a customer whose email other customers share is no
    match until an operator links it; the invoice then syncs by itself."""
    email = {"PrimaryEmailAddr": {"Address": "books@keeper.test"}}
    alpha = stack.qbo_edit("Customer", "create", {"DisplayName": "Alpha Bakery", **email})
    stack.qbo_edit("Customer", "create", {"DisplayName": "Beta Garage", **email})
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "books@keeper.test", "firstname": "Kim"})
    await stack.settle()
    invoice_id = qbo_invoice(stack, str(alpha["Id"]), sales_line(item(stack, "Bread", 4), 1, 4))
    await stack.settle()
    assert stack.hubspot_records("invoices") == []
    link = await link_of(stack, qbo_id=invoice_id)
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "customer_not_synced")
    contact_link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert contact_link is not None
    assert contact_link.status == LinkStatus.NEEDS_REVIEW
    await review(stack, "resolve", str(contact_link.id), "--pick", str(alpha["Id"]))
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    assert associated(stack, "invoices", copy["id"], "contacts") == [contact["id"]]

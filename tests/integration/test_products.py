"""Products ↔ Items end to end: sandboxes → signed webhooks → receiver → RabbitMQ → worker → the other API.

Each test is named after the rule it checks (incumbent-integration.md: "Products match on SKU", "only products with
a SKU sync by default", default direction QBO → HubSpot; the issue: Item Name uniqueness, price, description, type,
the configured income account)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import Kind
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration

TWO_WAY = pytest.mark.parametrize(
    "sync_overrides", [{"products": {"direction": "two_way", "income_account": "Services"}}], ids=["two_way"]
)


@pytest.fixture
def sync_overrides() -> dict[str, Any]:
    return {"products": {}}  # the defaults: QBO -> HubSpot, require_sku


def create_item(stack: Stack, name: str, **fields: Any) -> dict[str, Any]:
    income = account_id(stack, "Sales of Product Income")
    return stack.qbo_edit("Item", "create", {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": income},
                                             **fields})  # fmt: skip


def account_id(stack: Stack, name: str) -> str:
    return next(str(a["Id"]) for a in stack.qbo_entities("Account") if a["Name"] == name)


def items_with_sku(stack: Stack, sku: str) -> list[dict[str, Any]]:
    return [item for item in stack.qbo_entities("Item") if item.get("Sku") == sku]


def products_with_sku(stack: Stack, sku: str) -> list[dict[str, str]]:
    return [product for product in stack.hubspot_records("products") if product.get("hs_sku") == sku]


async def test_item_with_sku_created_in_qbo_becomes_one_product_with_that_sku(stack: Stack) -> None:
    create_item(stack, "Widget", Sku="W-1", UnitPrice=12.5, Description="A widget")
    await stack.settle()
    [product] = products_with_sku(stack, "W-1")
    assert (product["name"], product["price"], product["description"]) == ("Widget", "12.5", "A widget")
    assert product["hs_product_type"] == "service"


async def test_item_without_sku_is_excluded_with_the_reason(stack: Stack) -> None:
    item = create_item(stack, "No code")
    await stack.settle()
    assert not [p for p in stack.hubspot_records("products") if p.get("name") == "No code"]
    link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, qbo_id=str(item["Id"]))
    assert link is not None
    assert link.status == LinkStatus.EXCLUDED
    assert "require_sku" in (link.error_message or "")


@TWO_WAY
async def test_price_edit_in_qbo_makes_one_hubspot_write_and_no_echo(stack: Stack) -> None:
    item = create_item(stack, "Gadget", Sku="G-1", UnitPrice=10)
    await stack.settle()
    stack.clear_request_logs()
    stack.qbo_edit("Item", "update", {"Id": item["Id"], "UnitPrice": 11.75})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 1, "quickbooks": 0}
    [product] = products_with_sku(stack, "G-1")
    assert product["price"] == "11.75"


@TWO_WAY
async def test_product_created_in_hubspot_becomes_one_item_on_the_income_account(stack: Stack) -> None:
    stack.hubspot_edit("products", "create", properties={"name": "Setup", "hs_sku": "S-1", "price": "300"})
    await stack.settle()
    [item] = items_with_sku(stack, "S-1")
    assert (item["Name"], item["UnitPrice"], item["Type"]) == ("Setup", 300, "Service")
    assert item["IncomeAccountRef"]["value"] == account_id(stack, "Services")
    assert len(products_with_sku(stack, "S-1")) == 1  # and no product bounced back as a duplicate


@TWO_WAY
async def test_name_collision_is_disambiguated_with_the_sku_one_item_per_sku(stack: Stack) -> None:
    create_item(stack, "Sensor", Sku="A-1")
    await stack.settle()
    product = stack.hubspot_edit("products", "create", properties={"name": "Sensor", "hs_sku": "B-2", "price": "5"})
    await stack.settle()
    [item] = items_with_sku(stack, "B-2")
    assert item["Name"] == "Sensor (B-2)"
    stack.clear_request_logs()
    stack.hubspot_edit("products", "update", id=product["id"], properties={"price": "6"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}  # the price only: the name is not renamed back
    [item] = items_with_sku(stack, "B-2")
    assert (item["Name"], item["UnitPrice"]) == ("Sensor (B-2)", 6)
    assert len(items_with_sku(stack, "A-1")) == 1


async def test_product_matched_by_sku_links_instead_of_duplicating(stack: Stack) -> None:
    stack.hubspot_edit("products", "create", properties={"name": "Licence", "hs_sku": "L-1", "price": "90"})
    await stack.settle()  # QBO -> HubSpot only: the product stays HubSpot's for now
    create_item(stack, "Licence", Sku="L-1", UnitPrice=99)
    await stack.settle()
    [product] = products_with_sku(stack, "L-1")
    assert product["price"] == "99"


@TWO_WAY
async def test_product_matched_by_sku_in_qbo_links_instead_of_creating_an_item(stack: Stack) -> None:
    item = create_item(stack, "Old plan", Sku="P-1", Active=False)  # inactive: not synced, still holds the SKU
    await stack.settle()
    stack.hubspot_edit("products", "create", properties={"name": "Old plan", "hs_sku": "P-1", "price": "0"})
    await stack.settle()
    [linked] = items_with_sku(stack, "P-1")
    assert linked["Id"] == item["Id"]
    assert linked["Active"] is True


async def test_item_made_inactive_in_qbo_archives_the_product(stack: Stack) -> None:
    item = create_item(stack, "Training", Sku="T-1")
    await stack.settle()
    assert products_with_sku(stack, "T-1")
    stack.qbo_edit("Item", "update", {"Id": item["Id"], "Active": False})
    await stack.settle()
    assert not products_with_sku(stack, "T-1")


@TWO_WAY
async def test_product_archived_in_hubspot_makes_the_item_inactive(stack: Stack) -> None:
    product = stack.hubspot_edit("products", "create", properties={"name": "Install", "hs_sku": "I-1"})
    await stack.settle()
    stack.hubspot_edit("products", "delete", id=product["id"])
    await stack.settle()
    [item] = items_with_sku(stack, "I-1")
    assert item["Active"] is False


async def test_shared_sku_needs_review(stack: Stack) -> None:
    """Two items sharing a SKU (QBO does not keep SKUs unique): which one a product is would be a guess."""
    first = create_item(stack, "Gasket small", Sku="G-7")
    second = create_item(stack, "Gasket large", Sku="G-7")
    await stack.settle()
    assert products_with_sku(stack, "G-7") == []  # nothing written
    for item in (first, second):
        link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, qbo_id=str(item["Id"]))
        assert link is not None
        assert link.status == LinkStatus.NEEDS_REVIEW
        assert "G-7 is shared" in (link.error_message or "")


@TWO_WAY
async def test_shared_sku_from_hubspot_needs_review_listing_inactive_items(stack: Stack) -> None:
    active = create_item(stack, "Valve A", Sku="V-1")
    inactive = create_item(stack, "Valve B", Sku="V-1", Active=False)
    await stack.settle()
    stack.clear_request_logs()
    product = stack.hubspot_edit("products", "create", properties={"name": "Valve", "hs_sku": "V-1", "price": "3"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, hubspot_id=product["id"])
    assert link is not None
    assert link.status == LinkStatus.NEEDS_REVIEW
    assert {c.id for c in link.candidates} == {str(active["Id"]), str(inactive["Id"])}
    assert any(c.label.endswith("inactive") for c in link.candidates)


@TWO_WAY
async def test_products_sharing_a_sku_need_review(stack: Stack) -> None:
    first = stack.hubspot_edit("products", "create", properties={"name": "Hose 1m", "hs_sku": "H-1", "price": "5"})
    second = stack.hubspot_edit("products", "create", properties={"name": "Hose 2m", "hs_sku": "H-1", "price": "9"})
    await stack.settle()
    assert items_with_sku(stack, "H-1") == []  # which product the SKU's item would be is a guess: nothing made
    for product in (first, second):
        link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, hubspot_id=product["id"])
        assert link is not None
        assert link.status == LinkStatus.NEEDS_REVIEW

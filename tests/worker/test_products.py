"""The products rule's pure helpers: type spelling, prices, item names and the QBO body of a price."""

from __future__ import annotations

from decimal import Decimal

from services.worker import _fields
from services.worker.rules.products import SPEC, item_names, price, product_type, unit_price
from shared import money


def test_qbo_item_types_read_in_hubspots_spelling() -> None:
    assert [product_type(t) for t in ("Service", "NonInventory", "Inventory", None)] == [
        "service", "non_inventory", "inventory", None
    ]  # fmt: skip
    assert product_type("non_inventory") == "non_inventory"


def test_a_missing_price_is_qbos_default_zero_and_prices_compare_as_numbers() -> None:
    assert price(None) == price("") == price(0) == "0"
    assert price("12.50") == price(Decimal("12.5")) == price(Decimal("12.500000")) == "12.5"
    assert price("100") == price(Decimal("1E+2")) == "100"


def test_prices_compare_at_five_decimals_so_a_longer_hubspot_price_equals_the_qbo_price_it_became() -> None:
    assert price("9.123456789") == price(Decimal("9.12346")) == "9.12346"
    assert price("0.000005") == "0.00001"  # half away from zero


def test_unit_price_is_sent_to_qbo_as_an_exact_number() -> None:
    body = _fields.to_qbo(SPEC.fields, {"price": "11.75", "name": "Widget"})
    assert body == {"UnitPrice": Decimal("11.75"), "Name": "Widget"}
    assert isinstance(body["UnitPrice"], Decimal)
    assert money.dumps(body["UnitPrice"]) == b"11.75"


def test_a_derived_price_never_carries_more_than_five_decimals() -> None:
    derived = money.plain(Decimal(10) / Decimal(3))  # 3.333333333333333333333333333
    assert unit_price(derived) == Decimal("3.33333")
    assert money.dumps({"UnitPrice": unit_price(derived)}) == b'{"UnitPrice":3.33333}'


def test_item_names_fall_back_to_the_sku_then_the_product_id() -> None:
    assert item_names("Widget", "W-1", "512") == ["Widget", "Widget (W-1)", "Widget (HubSpot 512)"]
    assert item_names("Widget", None, "512") == ["Widget", "Widget (HubSpot 512)"]


def test_item_names_drop_colons_and_keep_the_suffix_within_100_characters() -> None:
    assert item_names("Support: Gold", None, "7")[0] == "Support - Gold"
    names = item_names("x" * 120, "SKU-9", "7")
    assert all(len(name) <= 100 for name in names)
    assert names[1].endswith(" (SKU-9)")


def test_item_names_stay_distinct_at_the_limit() -> None:
    names = item_names("n" * 100, "SKU-9", "7")
    assert len(set(names)) == 3
    assert all(len(name) <= 100 for name in names)

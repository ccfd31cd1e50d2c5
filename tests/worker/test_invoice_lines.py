"""Invoice lines: one canonical form on both sides, and the line item plan that never duplicates on a replay."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.worker.rules import Failing
from services.worker.rules._invoice_lines import (
    TAX_KEY,
    Adjustment,
    HubSpotLine,
    Line,
    hubspot_copy,
    line_from_qbo,
    plan_line_items,
    plan_records,
    qbo_line,
    qbo_line_signature,
    qbo_lines,
    wanted_from_qbo,
)


def test_numbers_compare_in_canonical_form_whichever_side_they_come_from() -> None:
    hubspot = Line.from_hubspot(
        {"name": "Widget", "quantity": "2", "price": "25.00", "hs_sku": "", "hs_product_id": None}
    )
    qbo = line_from_qbo({"SalesItemLineDetail": {"ItemRef": {"value": "7", "name": "Widget"}, "Qty": Decimal(2),
                                                 "UnitPrice": 25}, "Amount": Decimal("50.0")}, None, None)  # fmt: skip
    assert hubspot == qbo
    assert hubspot.amount == 50


def test_a_qbo_line_with_only_an_amount_gets_its_unit_price_from_it() -> None:
    line = line_from_qbo({"Amount": 30, "Description": "Setup", "SalesItemLineDetail": {"Qty": 3}}, None, None)
    assert (line.name, line.quantity, line.price) == ("Setup", "3", "10")


def test_qbo_invoice_lines_become_line_items_keyed_by_line_id_and_its_tax_a_hubspot_tax() -> None:
    invoice = {
        "Line": [
            {"Id": "1", "DetailType": "SalesItemLineDetail", "Amount": 20,
             "SalesItemLineDetail": {"ItemRef": {"value": "7", "name": "Widget"}, "Qty": 2, "UnitPrice": 10}},
            {"DetailType": "SubTotalLineDetail", "Amount": 20},
        ],
        "TxnTaxDetail": {"TotalTax": 4},
    }  # fmt: skip
    wanted = wanted_from_qbo(invoice, {"7": "W-1"}, {"7": "901"})
    assert wanted == {"1": Line("Widget", "2", "10", "W-1", "901")}
    taxed = hubspot_copy({**invoice, "TotalAmt": Decimal(24)}, {}, {})
    assert taxed.adjustments == {TAX_KEY: Adjustment("taxes", "Tax", "FIXED", "4")}
    assert taxed.total == 24


def test_qbo_line_amount_is_quantity_times_price_in_cents_and_carries_the_tax_code() -> None:
    line = qbo_line(Line("Hour", "1.5", "33.33"), "9", "3")
    assert line["Amount"] == Decimal("50.00")
    assert line["SalesItemLineDetail"] == {"ItemRef": {"value": "9"}, "Qty": Decimal("1.5"),
                                           "UnitPrice": Decimal("33.33"), "TaxCodeRef": {"value": "3"}}  # fmt: skip
    assert "TaxCodeRef" not in qbo_line(Line("Hour", "1", "1"), "9", None)["SalesItemLineDetail"]


def test_line_signature_ignores_qbo_defaults_hsqbo_did_not_set() -> None:
    written = [qbo_line(Line("Hour", "1", "10"), "9", None)]
    read_back = [{**written[0], "Id": "1", "LineNum": 1,
                  "SalesItemLineDetail": {**written[0]["SalesItemLineDetail"], "TaxCodeRef": {"value": "NON"},
                                          "ItemRef": {"value": "9", "name": "Hour"}}}]  # fmt: skip
    assert qbo_line_signature(written, with_tax_code=False) == qbo_line_signature(read_back, with_tax_code=False)
    assert qbo_line_signature(written, with_tax_code=True) != qbo_line_signature(read_back, with_tax_code=True)


WIDGET = Line("Widget", "1", "10")
GADGET = Line("Gadget", "2", "5")


def test_plan_updates_known_line_items_in_place() -> None:
    plan = plan_line_items({"1": Line("Widget", "3", "10")}, {"101": WIDGET}, {"1": "101"})
    assert (plan.kept, plan.update, plan.create, plan.archive) == ({"1": "101"}, {"101": Line("Widget", "3", "10")},
                                                                  {}, [])  # fmt: skip


def test_plan_writes_nothing_when_hubspot_already_agrees() -> None:
    plan = plan_line_items({"1": WIDGET, "2": GADGET}, {"101": WIDGET, "102": GADGET}, {"1": "101", "2": "102"})
    assert (plan.update, plan.create, plan.archive) == ({}, {}, [])


def test_plan_adopts_an_identical_unrecorded_line_item_instead_of_duplicating_it() -> None:
    plan = plan_line_items({"1": WIDGET, "2": GADGET}, {"101": WIDGET, "102": GADGET}, {"1": "101"})
    assert plan.kept == {"1": "101", "2": "102"}
    assert (plan.create, plan.archive) == ({}, [])


def test_plan_creates_new_lines_and_archives_removed_ones() -> None:
    plan = plan_line_items({"2": GADGET}, {"101": WIDGET}, {"1": "101"})
    assert (plan.create, plan.archive) == ({"2": GADGET}, ["101"])


def test_plan_never_gives_one_line_item_to_two_lines() -> None:
    plan = plan_line_items({"1": WIDGET, "2": WIDGET}, {"101": WIDGET}, {"1": "101", "2": "101"})
    assert plan.kept == {"1": "101"}
    assert plan.create == {"2": WIDGET}


# --- every QBO line type reaches HubSpot at QBO's total ---------------------------------------------------------


def sales(line_id: str, qty: str, price: str, amount: str, item: str = "7", name: str = "Widget") -> dict[str, object]:
    return {"Id": line_id, "DetailType": "SalesItemLineDetail", "Amount": Decimal(amount),
            "SalesItemLineDetail": {"ItemRef": {"value": item, "name": name}, "Qty": Decimal(qty),
                                    "UnitPrice": Decimal(price)}}  # fmt: skip


def test_a_percent_discount_line_becomes_a_fixed_hubspot_discount_of_the_amount_qbo_computed() -> None:
    invoice = {"Line": [sales("1", "1", "100", "100"),
                        {"Id": "2", "DetailType": "DiscountLineDetail", "Amount": Decimal("10.00"),
                         "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": Decimal("10")}},
                        {"DetailType": "SubTotalLineDetail", "Amount": Decimal("100")}],
               "TotalAmt": Decimal("90.00")}  # fmt: skip
    copy = hubspot_copy(invoice, {}, {})
    assert copy.adjustments == {"discount:2": Adjustment("discounts", "Discount 10 %", "FIXED", "10")}
    assert copy.total == Decimal("90.00")


def test_a_bundle_becomes_its_components_with_their_own_items() -> None:
    group = {
        "Id": "3",
        "DetailType": "GroupLineDetail",
        "Amount": Decimal("35"),
        "GroupLineDetail": {
            "GroupItemRef": {"value": "20", "name": "Kit"},
            "Quantity": Decimal("1"),
            "Line": [sales("4", "1", "25", "25"), sales("5", "2", "5", "10", "8", "Gadget")],
        },
    }
    copy = hubspot_copy({"Line": [group], "TotalAmt": Decimal("35")}, {"8": "G-1"}, {})  # fmt: skip
    assert copy.line_items == {"3.1": Line("Widget", "1", "25"), "3.2": Line("Gadget", "2", "5", "G-1")}


def test_a_bundle_whose_components_do_not_add_up_is_one_line() -> None:
    group = {"Id": "3", "DetailType": "GroupLineDetail", "Amount": Decimal("30"),
             "GroupLineDetail": {"GroupItemRef": {"value": "20", "name": "Kit"}, "Quantity": Decimal("2"),
                                 "Line": [sales("4", "1", "25", "25")]}}  # fmt: skip
    assert hubspot_copy({"Line": [group], "TotalAmt": 30}, {}, {}).line_items == {"3": Line("Kit", "2", "15")}


def test_shipping_and_description_lines_are_copied_subtotals_are_not() -> None:
    shipping = sales("1", "1", "7.5", "7.5", "SHIPPING_ITEM_ID", "")
    shipping["SalesItemLineDetail"]["ItemRef"] = {"value": "SHIPPING_ITEM_ID"}  # type: ignore[index]
    invoice = {
        "Line": [
            shipping,
            {"Id": "2", "DetailType": "DescriptionOnly", "Description": "Thanks", "DescriptionLineDetail": {}},
            {"DetailType": "SubTotalLineDetail", "Amount": Decimal("7.5")},
        ],
        "TotalAmt": Decimal("7.50"),
    }
    assert hubspot_copy(invoice, {}, {}).line_items == {
        "1": Line("Shipping", "1", "7.5"),
        "2": Line("Thanks", "1", "0"),
    }


def test_a_price_is_never_derived_with_more_digits_than_qbo_takes() -> None:
    line = line_from_qbo({"Amount": Decimal("10.00"), "SalesItemLineDetail": {"Qty": Decimal("3")}}, None, None)
    assert (line.quantity, line.price) == ("1", "10")
    rounded = line_from_qbo({"Amount": Decimal("2.51"), "SalesItemLineDetail": {"Qty": 3, "UnitPrice": Decimal(
        "0.835")}}, None, None)  # fmt: skip
    assert (rounded.quantity, rounded.price) == ("1", "2.51")  # 3 x 0.835 = 2.505: HubSpot would round it


def test_a_negative_qbo_line_is_not_representable_in_hubspot() -> None:
    with pytest.raises(Failing) as failing:
        hubspot_copy({"Line": [sales("1", "1", "-5", "-5")], "TotalAmt": -5}, {}, {})
    assert failing.value.category == "not_representable"


def test_an_unknown_line_type_is_not_representable_rather_than_dropped() -> None:
    with pytest.raises(Failing, match="DepositLineDetail"):
        hubspot_copy({"Line": [{"Id": "1", "DetailType": "DepositLineDetail", "Amount": 5}], "TotalAmt": 5}, {}, {})


# --- HubSpot discounts, fees and taxes reach QBO's total --------------------------------------------------------


def test_line_item_discounts_become_one_qbo_discount_line_after_the_items() -> None:
    percent = Line.of("Widget", "10", "234.56", discount_percentage="20")
    unit = Line.of("Gadget", "2", "5", discount="1")
    assert (percent.amount, unit.amount) == (Decimal("1876.48"), Decimal("8.00"))
    body = qbo_lines([HubSpotLine(percent, "7", percent.amount), HubSpotLine(unit, "8", unit.amount)], [],
                     Decimal("1884.48"), adjustment_item=None, tax_code=None)  # fmt: skip
    assert [line["Amount"] for line in body] == [Decimal("2345.60"), Decimal("10.00"), Decimal("471.12")]
    assert body[2] == {"DetailType": "DiscountLineDetail", "Amount": Decimal("471.12"),
                       "DiscountLineDetail": {"PercentBased": False}}  # fmt: skip


def test_invoice_discount_fee_and_tax_apply_in_hubspots_order() -> None:
    line = Line.of("Widget", "1", "100")
    adjustments = [Adjustment("taxes", "VAT", "PERCENT", "20"), Adjustment("fees", "Handling", "FIXED", "5"),
                   Adjustment("discounts", "Loyalty", "PERCENT", "10")]  # fmt: skip
    body = qbo_lines([HubSpotLine(line, "7")], adjustments, Decimal("114.00"), adjustment_item="99", tax_code=None)
    assert [(line["DetailType"], line["Amount"], line.get("Description")) for line in body] == [
        ("SalesItemLineDetail", Decimal("100.00"), "Widget"),
        ("DiscountLineDetail", Decimal("10.00"), None),
        ("SalesItemLineDetail", Decimal("5"), "Handling"),
        ("SalesItemLineDetail", Decimal("19.00"), "VAT"),
    ]


def test_with_a_qbo_tax_code_hubspot_taxes_are_left_to_qbo() -> None:
    adjustments = [Adjustment("taxes", "VAT", "PERCENT", "20")]
    body = qbo_lines([HubSpotLine(Line.of("W", "1", "100"), "7")], adjustments, Decimal("120"), adjustment_item=None,
                     tax_code="3")  # fmt: skip
    assert [line["Amount"] for line in body] == [Decimal("100.00")]


def test_a_total_hsqbo_cannot_reproduce_is_not_representable_and_says_both_totals() -> None:
    with pytest.raises(Failing, match=r"QuickBooks would total 100\.00 for this HubSpot invoice billing 99\.99"):
        qbo_lines([HubSpotLine(Line.of("W", "1", "100"), "7")], [], Decimal("99.99"), adjustment_item=None,
                  tax_code=None)  # fmt: skip


def test_a_price_with_more_decimals_than_qbo_takes_is_not_representable() -> None:
    with pytest.raises(Failing, match="more than 5 decimals"):
        qbo_lines([HubSpotLine(Line.of("W", "1", "0.123456"), "7")], [], None, adjustment_item=None, tax_code=None)


def test_plan_works_for_discount_objects_too() -> None:
    ten = Adjustment("discounts", "Discount", "FIXED", "10")
    plan = plan_records({"discount:2": ten}, {"501": Adjustment("discounts", "Discount", "FIXED", "5")}, {})
    assert (plan.create, plan.archive) == ({"discount:2": ten}, ["501"])


def test_discounts_larger_than_the_lines_are_not_representable_in_qbo() -> None:
    with pytest.raises(Failing, match="exceed the lines"):
        qbo_lines([HubSpotLine(Line.of("W", "1", "0"), "7")], [Adjustment("discounts", "D", "FIXED", "0.01")],
                  Decimal("-0.01"), adjustment_item=None, tax_code=None)  # fmt: skip


def test_a_price_derived_from_a_qbo_amount_has_at_most_five_decimals() -> None:
    line = line_from_qbo({"Amount": Decimal("10.00"), "SalesItemLineDetail": {"Qty": 3}, "Description": "Thirds"},
                         None, None)  # fmt: skip
    assert len(line.price.partition(".")[2]) <= 5
    assert Decimal(line.quantity) * Decimal(line.price) == Decimal("10.00")  # and it bills exactly the amount

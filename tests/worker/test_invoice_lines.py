"""Invoice lines: one canonical form on both sides, and the line item plan that never duplicates on a replay."""

from __future__ import annotations

from decimal import Decimal

from services.worker.rules._invoice_lines import (
    TAX_LINE_KEY,
    Line,
    line_from_qbo,
    plan_line_items,
    qbo_line,
    qbo_line_signature,
    wanted_from_qbo,
)


def test_numbers_compare_in_canonical_form_whichever_side_they_come_from() -> None:
    hubspot = Line.from_hubspot(
        {"name": "Widget", "quantity": "2", "price": "25.00", "hs_sku": "", "hs_product_id": None}
    )
    qbo = line_from_qbo({"SalesItemLineDetail": {"ItemRef": {"value": "7", "name": "Widget"}, "Qty": 2.0,
                                                 "UnitPrice": 25}, "Amount": 50.0}, None, None)  # fmt: skip
    assert hubspot == qbo
    assert hubspot.amount == 50


def test_a_qbo_line_with_only_an_amount_gets_its_unit_price_from_it() -> None:
    line = line_from_qbo({"Amount": 30, "Description": "Setup", "SalesItemLineDetail": {"Qty": 3}}, None, None)
    assert (line.name, line.quantity, line.price) == ("Setup", "3", "10")


def test_qbo_invoice_lines_become_line_items_keyed_by_line_id_plus_a_tax_line() -> None:
    invoice = {
        "Line": [
            {"Id": "1", "DetailType": "SalesItemLineDetail", "Amount": 20,
             "SalesItemLineDetail": {"ItemRef": {"value": "7", "name": "Widget"}, "Qty": 2, "UnitPrice": 10}},
            {"DetailType": "SubTotalLineDetail", "Amount": 20},
        ],
        "TxnTaxDetail": {"TotalTax": 4},
    }  # fmt: skip
    wanted = wanted_from_qbo(invoice, {"7": "W-1"}, {"7": "901"})
    assert wanted == {"1": Line("Widget", "2", "10", "W-1", "901"), TAX_LINE_KEY: Line("Tax", "1", "4")}


def test_qbo_line_amount_is_quantity_times_price_in_cents_and_carries_the_tax_code() -> None:
    line = qbo_line(Line("Hour", "1.5", "33.33"), "9", "3")
    assert line["Amount"] == Decimal("50.00")
    assert line["SalesItemLineDetail"] == {"ItemRef": {"value": "9"}, "Qty": Decimal("1.5"),
                                           "UnitPrice": Decimal("33.33"), "TaxCodeRef": {"value": "3"}}  # fmt: skip
    assert all(isinstance(line["SalesItemLineDetail"][key], Decimal) for key in ("Qty", "UnitPrice"))
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


def test_a_price_derived_from_a_qbo_amount_has_at_most_five_decimals() -> None:
    line = line_from_qbo({"Amount": Decimal("10.00"), "SalesItemLineDetail": {"Qty": 3}, "Description": "Thirds"},
                         None, None)  # fmt: skip
    assert line.price == "3.33333"

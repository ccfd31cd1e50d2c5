"""Entity rules, checked over HTTP against the documented behaviour (qbo-api.md §3-§5)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared import money
from tests.sandbox.qbo.conftest import QboHttp, payment_body, sales_line


def _fault_code(answer: dict[str, Any]) -> str:
    return str(answer["Fault"]["Error"][0]["code"])


async def test_created_entity_has_id_sync_token_zero_and_metadata_times(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd", PrimaryEmailAddr={"Address": "ap@acme.example"})
    assert customer["SyncToken"] == "0"
    assert customer["Active"] is True
    assert customer["MetaData"]["CreateTime"] == customer["MetaData"]["LastUpdatedTime"]
    read = await qbo.ok("GET", f"customer/{customer['Id']}", minorversion="75")
    assert read["Customer"] == customer
    assert "time" in read


async def test_sparse_update_changes_only_sent_fields_and_increments_sync_token(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd", CompanyName="Acme", Notes="keep me")
    body = {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "CompanyName": "Acme Holdings"}
    updated = (await qbo.ok("POST", "customer", body))["Customer"]
    assert (updated["SyncToken"], updated["CompanyName"], updated["Notes"]) == ("1", "Acme Holdings", "keep me")


async def test_full_update_sets_omitted_writable_fields_to_null(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd", CompanyName="Acme", Notes="dropped")
    updated = await qbo.ok("POST", "customer", {"Id": customer["Id"], "SyncToken": "0", "DisplayName": "Acme Ltd"})
    assert "Notes" not in updated["Customer"]
    assert "CompanyName" not in updated["Customer"]


async def test_stale_sync_token_is_rejected_with_5010_and_nothing_changes(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    await qbo.ok("POST", "customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "first"})
    status, answer = await qbo.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"})
    assert (status, _fault_code(answer), answer["Fault"]["type"]) == (400, "5010", "ValidationFault")
    assert answer["Fault"]["Error"][0]["Message"] == "Stale Object Error"
    assert (await qbo.ok("GET", f"customer/{customer['Id']}"))["Customer"]["Notes"] == "first"


async def test_customer_display_name_is_unique_ignoring_case_and_including_inactive_customers(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    await qbo.ok("POST", "customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    status, answer = await qbo.post("customer", {"DisplayName": "ACME LTD"})
    assert (status, _fault_code(answer)) == (400, "6240")
    assert answer["Fault"]["Error"][0]["Message"] == "Duplicate Name Exists Error"


async def test_customer_names_keep_qbos_lengths_and_refuse_a_colon(qbo: QboHttp) -> None:
    assert (await qbo.post("customer", {"DisplayName": "d" * 500, "CompanyName": "c" * 100}))[0] == 200
    for body in ({"DisplayName": "d" * 501}, {"DisplayName": "Ok", "CompanyName": "c" * 101},
                 {"DisplayName": "Ok 2", "FamilyName": "f" * 101}, {"DisplayName": "A:B"},
                 {"DisplayName": "Ok 3", "PrimaryPhone": {"FreeFormNumber": "5" * 31}}):  # fmt: skip
        status, _ = await qbo.post("customer", body)
        assert status == 400, body


async def test_item_name_is_unique(qbo: QboHttp) -> None:
    await qbo.item("Widget")
    status, answer = await qbo.post("item", {"Name": "widget", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    assert (status, _fault_code(answer)) == (400, "6240")


async def test_display_name_is_generated_from_name_parts_and_required_otherwise(qbo: QboHttp) -> None:
    created = (await qbo.ok("POST", "customer", {"GivenName": "Ada", "FamilyName": "Lovelace"}))["Customer"]
    assert created["DisplayName"] == "Ada Lovelace"
    status, answer = await qbo.post("customer", {"CompanyName": "No Name Co"})
    assert (status, _fault_code(answer)) == (400, "6080")


async def test_reference_to_inactive_or_missing_entity_is_610(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    await qbo.ok("POST", "item", {"Id": item["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    status, answer = await qbo.post("invoice", {"CustomerRef": {"value": customer["Id"]},
                                                "Line": [sales_line(item["Id"], 1, 10)]})  # fmt: skip
    assert (status, _fault_code(answer)) == (400, "610")
    status, answer = await qbo.post(
        "invoice", {"CustomerRef": {"value": "999"}, "Line": [sales_line(item["Id"], 1, 10)]}
    )
    assert (status, _fault_code(answer)) == (400, "610")
    status, answer = await qbo.get("customer/999")
    assert (status, _fault_code(answer)) == (400, "610")


async def test_duplicate_invoice_doc_number_is_6140_unless_allowed(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"), DocNumber="INV-1")
    body = {"CustomerRef": {"value": customer["Id"]}, "Line": [sales_line(item["Id"], 1, 10)], "DocNumber": "INV-1"}
    status, answer = await qbo.post("invoice", body)
    assert (status, _fault_code(answer)) == (400, "6140")
    assert answer["Fault"]["Error"][0]["Message"] == "Duplicate Document Number Error"
    await qbo.ok("POST", "invoice", body, include="allowduplicatedocnum")


async def test_invoice_totals_tax_and_balance_are_computed(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget", 50)
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 2, 50, "TAX"), (item["Id"], 1, 50, "NON"),
                                (item["Id"], 1, 100, "3"))  # fmt: skip
    assert invoice["Line"][-1] == {"Amount": 250.0, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    tax = invoice["TxnTaxDetail"]
    assert [(line["TaxLineDetail"]["TaxPercent"], line["Amount"]) for line in tax["TaxLine"]] == [
        (8.0, 8.0),
        (20.0, 20.0),
    ]
    assert tax["TotalTax"] == 28.0
    assert (invoice["TotalAmt"], invoice["Balance"]) == (278.0, 278.0)
    assert (invoice["DocNumber"], invoice["EmailStatus"]) == ("1001", "NotSet")
    assert (await qbo.ok("GET", f"customer/{customer['Id']}"))["Customer"]["Balance"] == 278.0


async def test_line_amount_must_equal_qty_times_unit_price(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    line = {**sales_line(item["Id"], 2, 10), "Amount": 25}
    status, answer = await qbo.post("invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [line]})
    assert (status, _fault_code(answer)) == (400, "6070")


async def test_missing_required_field_is_2020(qbo: QboHttp) -> None:
    status, answer = await qbo.post("invoice", {"Line": []})
    assert (status, _fault_code(answer)) == (400, "2020")


async def test_line_array_is_replaced_whole_even_in_a_sparse_update(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"), (item["Id"], 2, 10, "NON"))
    kept = invoice["Line"][1]
    body = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "sparse": True, "Line": [kept]}
    updated = (await qbo.ok("POST", "invoice", body))["Invoice"]
    assert [line["Id"] for line in updated["Line"][:-1]] == [kept["Id"]]
    assert updated["TotalAmt"] == 20.0


async def test_payment_applied_to_several_invoices_reduces_each_balance_and_delete_restores_them(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    first = await qbo.invoice(customer["Id"], (item["Id"], 1, 100, "NON"))
    second = await qbo.invoice(customer["Id"], (item["Id"], 1, 50, "NON"))
    body = payment_body(customer["Id"], 130, (first["Id"], 100), (second["Id"], 20))
    payment = (await qbo.ok("POST", "payment", body))["Payment"]
    assert payment["UnappliedAmt"] == 10.0
    assert payment["DepositToAccountRef"]["name"] == "Undeposited Funds"
    first_now = (await qbo.ok("GET", f"invoice/{first['Id']}"))["Invoice"]
    second_now = (await qbo.ok("GET", f"invoice/{second['Id']}"))["Invoice"]
    assert (first_now["Balance"], second_now["Balance"]) == (0.0, 30.0)
    assert first_now["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert first_now["SyncToken"] == "1"
    deleted = await qbo.ok("POST", "payment", {"Id": payment["Id"], "SyncToken": "0"}, operation="delete")
    assert deleted["Payment"] == {"status": "Deleted", "domain": "QBO", "Id": payment["Id"]}
    assert (await qbo.ok("GET", f"invoice/{first['Id']}"))["Invoice"]["Balance"] == 100.0


async def test_payment_cannot_apply_more_than_the_open_balance(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    status, answer = await qbo.post("payment", payment_body(customer["Id"], 20, (invoice["Id"], 20)))
    assert (status, _fault_code(answer)) == (400, "6000")


async def test_invoice_void_zeroes_amounts_and_prepends_voided_to_private_note(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 3, 10, "TAX"), PrivateNote="rush order")
    voided = (await qbo.ok("POST", "invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="void"))["Invoice"]
    assert (voided["TotalAmt"], voided["Balance"], voided["TxnTaxDetail"]["TotalTax"]) == (0.0, 0.0, 0.0)
    assert voided["Line"][0]["Amount"] == 0.0
    assert voided["Line"][0]["SalesItemLineDetail"]["Qty"] == 0
    assert voided["PrivateNote"].startswith("Voided")
    assert voided["PrivateNote"].endswith("rush order")
    assert voided["SyncToken"] == "1"
    assert (await qbo.ok("GET", f"invoice/{invoice['Id']}"))["Invoice"]["TotalAmt"] == 0.0


async def test_invoice_delete_returns_a_deleted_stub_and_the_invoice_is_gone(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    answer = await qbo.ok("POST", "invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    assert answer["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": invoice["Id"]}
    status, read = await qbo.get(f"invoice/{invoice['Id']}")
    assert (status, _fault_code(read)) == (400, "610")


async def test_invoice_with_payments_applied_cannot_be_deleted_or_voided(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    await qbo.ok("POST", "payment", payment_body(customer["Id"], 5, (invoice["Id"], 5)))
    for operation in ("delete", "void"):
        status, answer = await qbo.post("invoice", {"Id": invoice["Id"], "SyncToken": "1"}, operation=operation)
        assert (status, _fault_code(answer)) == (400, "6000")


async def test_payment_void_uses_include_void_and_releases_the_invoice_balance(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    payment = (await qbo.ok("POST", "payment", payment_body(customer["Id"], 10, (invoice["Id"], 10))))["Payment"]
    body = {"Id": payment["Id"], "SyncToken": "0", "sparse": True}
    voided = (await qbo.ok("POST", "payment", body, operation="update", include="void"))["Payment"]
    assert (voided["TotalAmt"], voided["PrivateNote"]) == (0.0, "Voided")
    assert (await qbo.ok("GET", f"invoice/{invoice['Id']}"))["Invoice"]["Balance"] == 10.0


async def test_customers_cannot_be_deleted_only_inactivated(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    status, answer = await qbo.post("customer", {"Id": customer["Id"], "SyncToken": "0"}, operation="delete")
    assert (status, _fault_code(answer)) == (400, "500")


async def test_a_bundle_expands_from_its_group_item_and_a_percent_discount_applies_to_the_lines_above(
    qbo: QboHttp,
) -> None:
    customer = await qbo.customer("Acme Ltd")
    widget, gadget = await qbo.item("Widget", 25), await qbo.item("Gadget", 5)
    kit = await qbo.control(
        "POST",
        "user-edit",
        {
            "realm_id": next(iter(qbo.sandbox.realms)),
            "entity": "Item",
            "action": "create",
            "data": {
                "Name": "Kit",
                "Type": "Group",
                "ItemGroupDetail": {
                    "ItemGroupLine": [
                        {"ItemRef": {"value": widget["Id"]}, "Qty": 1},
                        {"ItemRef": {"value": gadget["Id"]}, "Qty": 2},
                    ]
                },
            },
        },
    )
    group = {
        "DetailType": "GroupLineDetail",
        "GroupLineDetail": {"GroupItemRef": {"value": kit["Item"]["Id"]}, "Quantity": 2},
    }
    discount = {
        "DetailType": "DiscountLineDetail",
        "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 12.5},
    }
    shipping = {"DetailType": "SalesItemLineDetail", "Amount": 7.5,
                "SalesItemLineDetail": {"ItemRef": {"value": "SHIPPING_ITEM_ID"}}}  # fmt: skip
    body = {"CustomerRef": {"value": customer["Id"]}, "Line": [group, discount, shipping]}
    invoice = (await qbo.ok("POST", "invoice", body))["Invoice"]
    expanded = invoice["Line"][0]
    assert expanded["Amount"] == 70  # 2 x (25 + 2 x 5)
    assert [c["Amount"] for c in expanded["GroupLineDetail"]["Line"]] == [50, 20]
    assert invoice["Line"][1]["Amount"] == 8.75  # 12.5 % of the 70 above it
    assert invoice["Line"][2]["SalesItemLineDetail"]["ItemRef"] == {"value": "SHIPPING_ITEM_ID", "name": "Shipping"}
    assert invoice["TotalAmt"] == 68.75  # 70 + 7.50 - 8.75


async def test_one_discount_line_per_invoice(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    discount = {"DetailType": "DiscountLineDetail", "Amount": 1, "DiscountLineDetail": {"PercentBased": False}}
    body = {"CustomerRef": {"value": customer["Id"]}, "Line": [sales_line(item["Id"], 1, 10), discount, discount]}
    status, answer = await qbo.post("invoice", body)
    assert (status, _fault_code(answer)) == (400, "2010")


async def test_tax_after_discount_taxes_what_the_discount_leaves(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget", 100)
    discount = {"DetailType": "DiscountLineDetail", "Amount": 10, "DiscountLineDetail": {"PercentBased": False}}
    lines = [sales_line(item["Id"], 1, 100, "3"), discount]
    before = (await qbo.ok("POST", "invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": lines}))["Invoice"]
    after = (await qbo.ok("POST", "invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": lines,
                                              "ApplyTaxAfterDiscount": True}))["Invoice"]  # fmt: skip
    assert (before["TxnTaxDetail"]["TotalTax"], before["TotalAmt"]) == (20, 110)
    assert (after["TxnTaxDetail"]["TotalTax"], after["TotalAmt"]) == (18, 108)


# --- exact money (stricter reading: amounts at the currency's minor unit, UnitPrice and Qty at 5 decimals) ---------


async def _post_raw(qbo: QboHttp, path: str, body: bytes) -> tuple[int, bytes]:
    """POST JSON text exactly as written (a test client's float would already be rounded)."""
    headers = {"Authorization": f"Bearer {qbo.token}", "Content-Type": "application/json"}
    async with qbo.http.post(qbo.api(path), data=body, headers=headers) as resp:
        return resp.status, await resp.read()


async def test_amounts_are_exact_decimals_in_and_out(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    lines = [
        f'{{"DetailType": "SalesItemLineDetail", "Amount": {amount}, "SalesItemLineDetail": '
        f'{{"ItemRef": {{"value": "{item["Id"]}"}}, "Qty": 1, "UnitPrice": {amount}}}}}'
        for amount in ("0.1", "0.2")
    ]
    body = f'{{"CustomerRef": {{"value": "{customer["Id"]}"}}, "Line": [{", ".join(lines)}]}}'
    status, answer = await _post_raw(qbo, "invoice", body.encode())
    assert status == 200, answer
    invoice = money.loads(answer)["Invoice"]
    assert invoice["TotalAmt"] == Decimal("0.30")
    assert isinstance(invoice["TotalAmt"], Decimal)
    assert b'"TotalAmt":0.30,' in answer  # never 0.30000000000000004


@pytest.mark.parametrize("amount", ["2.4999999999", "10.005"])
async def test_a_line_amount_with_more_decimals_than_the_currency_has_is_refused(qbo: QboHttp, amount: str) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    line = (f'{{"DetailType": "SalesItemLineDetail", "Amount": {amount}, '
            f'"SalesItemLineDetail": {{"ItemRef": {{"value": "{item["Id"]}"}}}}}}')  # fmt: skip
    status, answer = await _post_raw(qbo, "invoice", f'{{"CustomerRef": {{"value": "{customer["Id"]}"}}, '
                                                     f'"Line": [{line}]}}'.encode())  # fmt: skip
    assert (status, _fault_code(money.loads(answer))) == (400, "2010")
    assert "decimal places" in money.loads(answer)["Fault"]["Error"][0]["Detail"]


async def test_an_amount_sent_as_a_string_is_refused(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    invoice = await qbo.invoice(customer["Id"], ((await qbo.item("Widget"))["Id"], 1, 10, "NON"))
    status, answer = await qbo.post(
        "payment", {**payment_body(customer["Id"], 10, (invoice["Id"], 10)), "TotalAmt": "10.00"}
    )
    assert (status, _fault_code(answer)) == (400, "2010")


async def test_unit_price_and_qty_take_five_decimals_and_no_more(qbo: QboHttp) -> None:
    item = b'{"Name": "%s", "Type": "Service", "IncomeAccountRef": {"value": "1"}, "UnitPrice": %s}'
    status, answer = await _post_raw(qbo, "item", item % (b"Bolt", b"0.12345"))
    assert status == 200
    assert b'"UnitPrice":0.12345' in answer
    status, answer = await _post_raw(qbo, "item", item % (b"Nut", b"3.333333333333333333333333333"))
    assert (status, _fault_code(money.loads(answer))) == (400, "2010")


async def test_a_computed_discount_rounds_half_away_from_zero(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    discount = {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}}
    body = {"CustomerRef": {"value": customer["Id"]}, "Line": [sales_line(item["Id"], 1, 8.25), discount]}
    invoice = (await qbo.ok("POST", "invoice", body))["Invoice"]
    assert invoice["TotalAmt"] == 7.42  # 8.25 - 0.825 rounded up to 0.83 (half to even would make it 0.82)


async def test_payment_amounts_follow_the_payments_currency_minor_unit(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    status, answer = await _post_raw(qbo, "payment", f'{{"CustomerRef": {{"value": "{customer["Id"]}"}}, '
                                                     f'"TotalAmt": 10.001}}'.encode())  # fmt: skip
    assert (status, _fault_code(money.loads(answer))) == (400, "2010")

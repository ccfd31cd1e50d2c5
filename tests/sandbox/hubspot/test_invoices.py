"""Invoice rules (INV; PAY): draft -> open needs a contact and a line item, computed totals, payments mark an
invoice paid, only drafts can be deleted."""

from __future__ import annotations

from tests.sandbox.hubspot.conftest import Hub, association_to


async def _read(hub: Hub, invoice_id: str) -> dict[str, str]:
    props = "hs_invoice_status,hs_amount_billed,hs_balance_due,hs_amount_paid,hs_number"
    status, body = await hub.call("GET", f"/crm/v3/objects/invoices/{invoice_id}", params={"properties": props})
    assert status == 200
    return dict(body["properties"])


async def test_new_invoices_are_drafts_and_opening_needs_a_contact_and_a_line_item(hub: Hub) -> None:
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    assert (await _read(hub, invoice["id"]))["hs_invoice_status"] == "draft"
    path = f"/crm/v3/objects/invoices/{invoice['id']}"
    status, body = await hub.call("PATCH", path, json={"properties": {"hs_invoice_status": "open"}})
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    contact = await hub.create("contacts", {"email": "inv@x.co"})
    await hub.create("line_items", {"name": "L", "price": "12.50", "quantity": "2"},
                     associations=[association_to(invoice["id"], 410)])  # fmt: skip
    await hub.call("PUT", f"/crm/v4/objects/invoices/{invoice['id']}/associations/default/contacts/{contact['id']}")
    status, _ = await hub.call("PATCH", path, json={"properties": {"hs_invoice_status": "open"}})
    assert status == 200
    read = await _read(hub, invoice["id"])
    assert (read["hs_invoice_status"], read["hs_amount_billed"], read["hs_balance_due"]) == ("open", "25", "25")


async def test_payments_covering_the_balance_mark_the_invoice_paid(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "pay@x.co"})
    line = await hub.create("line_items", {"name": "L", "price": "100"})
    links = [association_to(contact["id"], 177), association_to(line["id"], 409)]
    invoice = await hub.create("invoices", {"hs_currency": "USD"}, associations=links)
    await hub.call(
        "PATCH", f"/crm/v3/objects/invoices/{invoice['id']}", json={"properties": {"hs_invoice_status": "open"}}
    )
    status, _ = await hub.call("PATCH", f"/crm/v3/objects/invoices/{invoice['id']}",
                               json={"properties": {"hs_invoice_status": "paid"}})  # fmt: skip
    assert status == 400  # a billable invoice with a balance cannot be marked paid by hand
    for amount in ("40", "60"):
        await hub.create("commerce_payments", {"hs_initial_amount": amount, "hs_initiated_date": "1767225600000"},
                         associations=[association_to(invoice["id"], 542)])  # fmt: skip
    read = await _read(hub, invoice["id"])
    assert (read["hs_invoice_status"], read["hs_amount_paid"], read["hs_balance_due"]) == ("paid", "100", "0")


async def test_computed_totals_and_number_are_read_only(hub: Hub) -> None:
    for prop in ("hs_amount_billed", "hs_balance_due", "hs_number"):
        status, body = await hub.call("POST", "/crm/v3/objects/invoices",
                                      json={"properties": {"hs_currency": "USD", prop: "1"}})  # fmt: skip
        assert (status, body["category"]) == (400, "VALIDATION_ERROR")


async def test_only_draft_invoices_can_be_deleted(hub: Hub) -> None:
    draft = await hub.create("invoices", {"hs_currency": "USD"})
    assert (await hub.call("DELETE", f"/crm/v3/objects/invoices/{draft['id']}"))[0] == 204
    tracked = await hub.create("invoices", {"hs_currency": "USD", "hs_invoice_billable": "false"})
    status, _ = await hub.call("PATCH", f"/crm/v3/objects/invoices/{tracked['id']}",
                               json={"properties": {"hs_invoice_status": "open"}})  # fmt: skip
    assert status == 200  # not billable: no contact or line item needed
    status, body = await hub.call("DELETE", f"/crm/v3/objects/invoices/{tracked['id']}")
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")


async def test_line_discounts_then_invoice_discounts_fees_and_taxes_make_the_amount_billed(hub: Hub) -> None:
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    line = await hub.create("line_items", {"name": "L", "price": "234.56", "quantity": "10",
                                           "hs_discount_percentage": "20"},
                            associations=[association_to(invoice["id"], 410)])  # fmt: skip
    status, body = await hub.call("GET", f"/crm/v3/objects/line_items/{line['id']}",
                                  params={"properties": "amount,hs_total_discount"})  # fmt: skip
    assert (body["properties"]["amount"], body["properties"]["hs_total_discount"]) == ("1876.48", "469.12")
    for kind, type_id, properties in (
        ("discounts", 411, {"hs_label": "Loyal", "hs_type": "PERCENT", "hs_value": "10"}),
        ("fees", 413, {"hs_label": "Handling", "hs_type": "FIXED", "hs_value": "5"}),
        ("taxes", 415, {"hs_label": "VAT", "hs_type": "PERCENT", "hs_value": "20"}),
    ):
        made = await hub.create(kind, properties)
        path = f"/crm/v4/objects/invoices/{invoice['id']}/associations/{kind}/{made['id']}"
        status, _ = await hub.call("PUT", path, json=[{"associationCategory": "HUBSPOT_DEFINED",
                                                       "associationTypeId": type_id}])  # fmt: skip
        assert status in (200, 201)
    status, body = await hub.call("GET", f"/crm/v3/objects/invoices/{invoice['id']}",
                                  params={"properties": "hs_subtotal,hs_amount_billed"})  # fmt: skip
    # 1876.48 - 187.65 (10 %, half up) = 1688.83; + 5 = 1693.83; + 20 % (338.77) = 2032.60
    assert (body["properties"]["hs_subtotal"], body["properties"]["hs_amount_billed"]) == ("1876.48", "2032.60")


async def test_a_discount_needs_its_type_and_value(hub: Hub) -> None:
    status, body = await hub.call("POST", "/crm/v3/objects/discounts", json={"properties": {"hs_label": "x"}})
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")

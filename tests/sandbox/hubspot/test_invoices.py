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

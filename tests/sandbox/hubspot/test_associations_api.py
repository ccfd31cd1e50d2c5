"""Associations v4 and inline associations with HubSpot's documented type ids (reference §4)."""

from __future__ import annotations

from tests.sandbox.hubspot.conftest import Hub, association_to


async def test_primary_contact_company_association_implies_the_unlabeled_one_both_ways(hub: Hub) -> None:
    company = await hub.create("companies", {"name": "Acme"})
    contact = await hub.create("contacts", {"email": "c@acme.co"}, associations=[association_to(company["id"], 1)])
    assert await hub.associations("contacts", contact["id"], "companies") == {company["id"]: {1, 279}}
    assert await hub.associations("companies", company["id"], "contacts") == {contact["id"]: {2, 280}}
    _, body = await hub.call("GET", f"/crm/v3/objects/contacts/{contact['id']}", params={"associations": "companies"})
    assert {r["type"] for r in body["associations"]["companies"]["results"]} == {
        "contact_to_company", "contact_to_company_unlabeled"}  # fmt: skip


async def test_invoice_type_ids_link_contacts_companies_line_items_and_payments(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "bill@x.co"})
    company = await hub.create("companies", {"name": "Billed"})
    line = await hub.create("line_items", {"name": "L", "price": "10", "quantity": "2"})
    payment = await hub.create("commerce_payments", {"hs_initial_amount": "5", "hs_initiated_date": "2026-01-05"})
    invoice = await hub.create(
        "invoices",
        {"hs_currency": "USD"},
        associations=[
            association_to(contact["id"], 177),
            association_to(company["id"], 179),
            association_to(line["id"], 409),
            association_to(payment["id"], 541),
        ],
    )
    assert await hub.associations("invoices", invoice["id"], "contacts") == {contact["id"]: {177}}
    assert await hub.associations("invoices", invoice["id"], "companies") == {company["id"]: {179}}
    assert await hub.associations("line_items", line["id"], "invoices") == {invoice["id"]: {410}}
    assert await hub.associations("commerce_payments", payment["id"], "invoices") == {invoice["id"]: {542}}


async def test_put_default_labelled_and_delete(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "d@x.co"})
    company = await hub.create("companies", {"name": "D"})
    path = f"/crm/v4/objects/contacts/{contact['id']}/associations"
    status, body = await hub.call("PUT", f"{path}/default/companies/{company['id']}")
    assert status == 200
    assert body["results"][0]["associationSpec"]["associationTypeId"] == 279
    status, body = await hub.call(
        "PUT",
        f"{path}/companies/{company['id']}",
        json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
    )
    assert status == 201
    assert body["labels"] == ["Primary"]
    assert body["fromObjectTypeId"] == "0-1"
    assert body["toObjectTypeId"] == "0-2"
    status, _ = await hub.call("DELETE", f"{path}/companies/{company['id']}")
    assert status == 204
    assert await hub.associations("contacts", contact["id"], "companies") == {}


async def test_wrong_type_id_is_400_and_missing_record_is_404(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "w@x.co"})
    company = await hub.create("companies", {"name": "W"})
    path = f"/crm/v4/objects/contacts/{contact['id']}/associations/companies"
    status, body = await hub.call(
        "PUT", f"{path}/{company['id']}", json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 177}]
    )
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    status, _ = await hub.call("PUT", f"{path}/987654", json=[{"associationCategory": "HUBSPOT_DEFINED",
                                                               "associationTypeId": 279}])  # fmt: skip
    assert status == 404


async def test_a_line_item_belongs_to_one_invoice(hub: Hub) -> None:
    line = await hub.create("line_items", {"name": "L", "price": "1"})
    await hub.create("invoices", {"hs_currency": "USD"}, associations=[association_to(line["id"], 409)])
    status, body = await hub.call("POST", "/crm/v3/objects/invoices", json={
        "properties": {"hs_currency": "USD"}, "associations": [association_to(line["id"], 409)]})  # fmt: skip
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")


async def test_batch_create_and_read_report_records_without_associations_as_errors(hub: Hub) -> None:
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    lonely = await hub.create("invoices", {"hs_currency": "USD"})
    line = await hub.create("line_items", {"name": "L", "price": "1"})
    status, body = await hub.call("POST", "/crm/v4/associations/invoices/line_items/batch/create", json={"inputs": [
        {"from": {"id": invoice["id"]}, "to": {"id": line["id"]},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 409}]}]})  # fmt: skip
    assert status == 201
    assert body["results"][0]["toObjectId"] == line["id"]
    status, body = await hub.call(
        "POST",
        "/crm/v4/associations/invoices/line_items/batch/read",
        json={"inputs": [{"id": invoice["id"]}, {"id": lonely["id"]}]},
    )
    assert status == 207
    assert body["results"][0]["from"] == {"id": invoice["id"]}
    assert body["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 409
    assert body["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"

"""Deals (`0-3`): required properties, the default pipeline, `deal.*` webhooks, and their associations with the
documented type ids (reference §4; the SDK's association types): contacts, companies (primary implies unlabeled),
line items, invoices and commerce payments."""

from __future__ import annotations

import orjson

from tests.sandbox.hubspot.conftest import HookedHub, Hub, association_to

DEAL = {"dealname": "Acme renewal", "dealstage": "closedwon", "amount": "1200"}


async def test_deal_needs_a_name_and_a_stage_and_lands_in_the_default_pipeline(hub: Hub) -> None:
    status, body = await hub.call("POST", "/crm/v3/objects/deals", json={"properties": {"dealname": "No stage"}})
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    status, body = await hub.call("POST", "/crm/v3/objects/0-3", json={"properties": {**DEAL, "dealstage": "won?"}})
    assert status == 400
    deal = await hub.create("deals", DEAL)
    status, read = await hub.call("GET", f"/crm/v3/objects/deals/{deal['id']}")
    assert status == 200
    assert read["properties"]["pipeline"] == "default"
    assert {"dealname", "amount", "closedate", "pipeline", "dealstage"} <= read["properties"].keys()


async def test_deal_associations_use_the_documented_type_ids_both_ways(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "deal@acme.co"})
    company = await hub.create("companies", {"name": "Acme"})
    line = await hub.create("line_items", {"name": "Seat", "price": "100", "quantity": "12"})
    deal = await hub.create(
        "deals",
        DEAL,
        associations=[
            association_to(contact["id"], 3),
            association_to(company["id"], 5),
            association_to(line["id"], 19),
        ],
    )
    payment = await hub.create("commerce_payments", {"hs_initial_amount": "5", "hs_initiated_date": "2026-01-05"},
                               associations=[association_to(deal["id"], 391)])  # fmt: skip
    invoice = await hub.create("invoices", {"hs_currency": "USD"}, associations=[association_to(deal["id"], 175)])
    assert await hub.associations("contacts", contact["id"], "deals") == {deal["id"]: {4}}
    assert await hub.associations("deals", deal["id"], "companies") == {company["id"]: {5, 341}}
    assert await hub.associations("companies", company["id"], "deals") == {deal["id"]: {6, 342}}
    assert await hub.associations("line_items", line["id"], "deals") == {deal["id"]: {20}}
    assert await hub.associations("deals", deal["id"], "commerce_payments") == {payment["id"]: {392}}
    assert await hub.associations("deals", deal["id"], "invoices") == {invoice["id"]: {176}}


async def test_a_company_stays_the_primary_company_of_several_deals(hub: Hub) -> None:
    company = await hub.create("companies", {"name": "Shared"})
    first = await hub.create("deals", DEAL, associations=[association_to(company["id"], 5)])
    second = await hub.create("deals", DEAL, associations=[association_to(company["id"], 5)])
    assert await hub.associations("companies", company["id"], "deals") == {
        first["id"]: {6, 342},
        second["id"]: {6, 342},
    }


async def test_a_line_item_belongs_to_one_deal_or_one_invoice(hub: Hub) -> None:
    line = await hub.create("line_items", {"name": "Seat", "price": "100", "quantity": "1"})
    deal = await hub.create("deals", DEAL, associations=[association_to(line["id"], 19)])
    status, body = await hub.call("POST", "/crm/v3/objects/invoices", json={
        "properties": {"hs_currency": "USD"}, "associations": [association_to(line["id"], 409)]})  # fmt: skip
    assert status == 400
    assert f"deal {deal['id']}" in body["message"]


async def test_deal_changes_arrive_as_deal_webhooks(hooked: HookedHub) -> None:
    deal = await hooked.hub.create("deals", DEAL)
    await hooked.hub.call("PATCH", f"/crm/v3/objects/deals/{deal['id']}", json={"properties": {"amount": "900"}})
    assert await hooked.hub.sandbox.webhooks.drain(10)
    events = [event for delivery in hooked.sink.deliveries for event in orjson.loads(delivery.body)]
    kinds = {(e["subscriptionType"], e.get("propertyName")) for e in events if e["objectId"] == int(deal["id"])}
    assert {("deal.creation", None), ("deal.propertyChange", "amount")} <= kinds
    assert all("objectTypeId" not in e for e in events)  # classic subscriptions, like contacts

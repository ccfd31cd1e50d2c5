"""HubSpot's own control routes (accounts, tokens, seed, user edits) and the shared ones as HubSpot serves them."""

from __future__ import annotations

import datetime as dt

from hsqbo_sandbox._clock import SEED_AGE_SECONDS
from hsqbo_sandbox.hubspot import HubSpotSandbox
from shared.asgi import serving
from tests.sandbox.hubspot.conftest import HookedHub, Hub


async def test_accounts_are_created_and_configured(hub: Hub) -> None:
    created = await hub.control("POST", "accounts", json={"portal_id": 9001, "burst_limit": 190})
    assert (created["portal_id"], created["burst_limit"], created["search_result_cap"]) == (9001, 190, 10_000)
    changed = await hub.control("PATCH", "accounts/9001", json={"search_result_cap": 50})
    assert changed["search_result_cap"] == 50
    listed = await hub.control("GET", "accounts")
    assert {a["portal_id"] for a in listed["accounts"]} == {hub.portal_id, 9001}
    for kind in ("private", "oauth"):
        token = await hub.control("POST", "tokens", json={"portal_id": 9001, "kind": kind})
        status, _ = await hub.call("GET", "/crm/v3/objects/contacts", token=token["access_token"])
        assert (status, token["portal_id"]) == (200, 9001)


async def test_seeded_records_predate_the_seeding_as_an_existing_accounts_do(hub: Hub) -> None:
    await hub.control("POST", "seed", json={"portal_id": hub.portal_id, "companies": 1, "lone_contacts": 0,
                                            "contacts_per_company": 1, "products": 0, "invoices": 0})  # fmt: skip
    _, contacts = await hub.call("GET", "/crm/v3/objects/contacts")
    [contact] = contacts["results"]
    updated = dt.datetime.fromisoformat(contact["updatedAt"]).timestamp()
    assert updated <= hub.sandbox.clock.now() - SEED_AGE_SECONDS
    created = hub.sandbox.user_edit(portal_id=hub.portal_id, object_type="contacts", action="create",
                                    properties={"email": "after@example.com"})  # fmt: skip
    assert dt.datetime.fromisoformat(created["updatedAt"]).timestamp() > hub.sandbox.clock.now() - 60


async def test_seed_creates_companies_sharing_names_with_their_contacts_and_products_with_and_without_skus(
    hub: Hub,
) -> None:
    counts = await hub.control(
        "POST",
        "seed",
        json={
            "portal_id": hub.portal_id,
            "companies": 2,
            "lone_contacts": 5,
            "contacts_per_company": 2,
            "products": 8,
            "invoices": 3,
        },
    )
    assert (counts["portal_id"], counts["contacts"]) == (hub.portal_id, 2 * 2 + 5)
    hub.sandbox.accounts.get(hub.portal_id).configure(search_per_second=100)
    _, companies = await hub.call("GET", "/crm/v3/objects/companies")
    name = companies["results"][0]["properties"]["name"]
    _, same = await hub.call(
        "POST",
        "/crm/v3/objects/contacts/search",
        json={"filterGroups": [{"filters": [{"propertyName": "company", "operator": "EQ", "value": name}]}]},
    )
    assert same["total"] == 2
    _, products = await hub.call("GET", "/crm/v3/objects/products", params={"properties": "hs_sku", "limit": "100"})
    skus = [p["properties"]["hs_sku"] for p in products["results"]]
    assert None in skus
    assert any(skus)
    _, invoices = await hub.call("GET", "/crm/v3/objects/invoices", params={"properties": "hs_invoice_status"})
    assert {i["properties"]["hs_invoice_status"] for i in invoices["results"]} == {"draft", "open", "paid"}


async def test_user_edits_restore_and_the_request_log(hub: Hub) -> None:
    await hub.control("DELETE", "requests")
    made = await hub.control(
        "POST",
        "user-edit",
        json={
            "portal_id": hub.portal_id,
            "object_type": "contacts",
            "action": "create",
            "properties": {"email": "ui@x.co"},
        },
    )
    await hub.control("POST", "user-edit", json={"portal_id": hub.portal_id, "object_type": "contacts",
                                                 "action": "delete", "id": made["id"]})  # fmt: skip
    assert (await hub.call("GET", f"/crm/v3/objects/contacts/{made['id']}"))[0] == 404
    await hub.control("POST", "user-edit", json={"portal_id": hub.portal_id, "object_type": "contacts",
                                                 "action": "restore", "id": made["id"]})  # fmt: skip
    status, body = await hub.call("GET", f"/crm/v3/objects/contacts/{made['id']}", params={
        "propertiesWithHistory": "email"})  # fmt: skip
    assert status == 200
    assert body["propertiesWithHistory"]["email"][0]["sourceType"] == "CRM_UI"
    log = await hub.control("GET", "requests", params={"method": "GET"})
    assert log["count"] == 2  # control calls are not logged


async def test_faults_throttle_the_api_but_not_the_control_surface(hub: Hub) -> None:
    now = (await hub.control("GET", "clock"))["now"]
    await hub.control("PUT", "faults", json={"throttle_until": now + 60})
    status, body = await hub.call("GET", "/crm/v3/objects/contacts")
    assert (status, body["policyName"]) == (429, "TEN_SECONDLY_ROLLING")
    await hub.control("POST", "clock/advance", json={"seconds": 61})
    assert (await hub.call("GET", "/crm/v3/objects/contacts"))[0] == 200


async def test_state_dumps_and_loads_into_a_new_sandbox(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "kept@x.co"})
    copy = HubSpotSandbox()
    copy.load(await hub.control("GET", "state"))
    async with serving(copy.app) as server:
        restored = Hub(copy, server.url, hub.portal_id, hub.token, hub.http)  # the private-app token survives too
        status, body = await restored.call("GET", "/crm/v3/objects/contacts/kept@x.co", params={"idProperty": "email"})
    assert (status, body["id"]) == (200, contact["id"])


async def test_imported_history_predates_now_and_sends_no_webhook(hooked: HookedHub) -> None:
    sandbox, portal_id = hooked.hub.sandbox, hooked.hub.portal_id
    ids = sandbox.import_history(portal_id, "contacts", [{"email": "old@example.com"}, {"email": "older@example.com"}])
    for contact_id, email in zip(ids, ("old@example.com", "older@example.com"), strict=True):
        _, contact = await hooked.hub.call("GET", f"/crm/v3/objects/contacts/{contact_id}?properties=email")
        assert contact["properties"]["email"] == email
        assert dt.datetime.fromisoformat(contact["updatedAt"]).timestamp() <= sandbox.clock.now() - SEED_AGE_SECONDS
    assert await sandbox.webhooks.drain(5)
    assert hooked.sink.deliveries == []

"""Webhook deliveries as HubSpot sends them (reference §1): signed v1 + v3 with the client secret, batches of at
most 100 events, one propertyChange per changed property, change sources, retries of non-2xx answers on the
(compressed) schedule, at most 10 deliveries in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox.hubspot import HubSpotSandbox
from shared.asgi import serving
from shared.signatures import verify_hubspot_v1, verify_hubspot_v3
from tests.sandbox.hubspot.conftest import APP_ID, CLIENT_SECRET, RETRY_SCALE, HookedHub


async def _events(hooked: HookedHub) -> list[dict[str, Any]]:
    assert await hooked.hub.sandbox.webhooks.drain(10)
    return [event for delivery in hooked.sink.deliveries for event in orjson.loads(delivery.body)]


async def test_deliveries_are_signed_v1_and_v3_with_the_client_secret(hooked: HookedHub) -> None:
    await hooked.hub.create("contacts", {"email": "sig@x.co"})
    await _events(hooked)
    delivery = hooked.sink.deliveries[0]
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    verify_hubspot_v3(CLIENT_SECRET, "POST", hooked.sink.url, delivery.body, headers["x-hubspot-request-timestamp"],
                      headers["x-hubspot-signature-v3"])  # fmt: skip
    verify_hubspot_v1(CLIENT_SECRET, delivery.body, headers["x-hubspot-signature"])
    assert headers["x-hubspot-signature-version"] == "v1"
    assert headers["content-type"].startswith("application/json")


async def test_a_creation_and_each_changed_property_are_separate_events(hooked: HookedHub) -> None:
    hub = hooked.hub
    contact = await hub.create("contacts", {"email": "e@x.co", "firstname": "E", "city": "Oslo"})
    await _events(hooked)
    hooked.sink.deliveries.clear()
    await hub.call("PATCH", f"/crm/v3/objects/contacts/{contact['id']}",
                   json={"properties": {"firstname": "F", "city": "Oslo", "lastname": "L"}})  # fmt: skip
    events = await _events(hooked)
    changes = {(e["propertyName"], e["propertyValue"]) for e in events}
    assert changes == {("firstname", "F"), ("lastname", "L")}  # the unchanged city sends nothing
    for event in events:
        assert event["subscriptionType"] == "contact.propertyChange"
        assert event["objectId"] == int(contact["id"])
        assert event["portalId"] == hub.portal_id
        assert event["appId"] == int(APP_ID)
        assert event["attemptNumber"] == 0
        assert isinstance(event["occurredAt"], int)
        assert {"eventId", "subscriptionId"} <= event.keys()


async def test_api_writes_are_integration_and_user_edits_are_crm_ui(hooked: HookedHub) -> None:
    hub = hooked.hub
    contact = await hub.create("contacts", {"email": "src@x.co"})
    await hub.control("POST", "user-edit", json={"portal_id": hub.portal_id, "object_type": "contacts",
                                                 "action": "update", "id": contact["id"], "user_id": 98,
                                                 "properties": {"firstname": "Ui"}})  # fmt: skip
    events = await _events(hooked)
    creation = next(e for e in events if e["subscriptionType"] == "contact.creation")
    assert (creation["changeSource"], creation["sourceId"], creation["changeFlag"]) == ("INTEGRATION", APP_ID,
                                                                                        "CREATED")  # fmt: skip
    edit = next(e for e in events if e.get("propertyName") == "firstname")
    assert (edit["changeSource"], edit["sourceId"]) == ("CRM_UI", "userId:98")


async def test_invoices_and_payments_use_generic_object_subscriptions(hooked: HookedHub) -> None:
    hub = hooked.hub
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    await hub.create("commerce_payments", {"hs_initial_amount": "1", "hs_initiated_date": "2026-01-01"},
                     associations=[{"to": {"id": invoice["id"]}, "types": [
                         {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 542}]}])  # fmt: skip
    await hub.create("products", {"name": "Thing"})
    events = await _events(hooked)
    kinds = {(e["subscriptionType"], e.get("objectTypeId")) for e in events}
    assert ("object.creation", "0-53") in kinds
    assert ("object.creation", "0-101") in kinds
    assert ("product.creation", None) in kinds
    links = [e for e in events if e["subscriptionType"] == "object.associationChange"]
    assert {(e["fromObjectTypeId"], e["toObjectTypeId"]) for e in links} == {("0-101", "0-53"), ("0-53", "0-101")}


async def test_merge_and_deletion_events(hooked: HookedHub) -> None:
    hub = hooked.hub
    keep = await hub.create("contacts", {"email": "keep@x.co"})
    lose = await hub.create("contacts", {"email": "lose@x.co"})
    await hub.call("POST", "/crm/v3/objects/contacts/merge",
                   json={"primaryObjectId": keep["id"], "objectIdToMerge": lose["id"]})  # fmt: skip
    await hub.call("DELETE", f"/crm/v3/objects/contacts/{keep['id']}")
    events = await _events(hooked)
    merge = next(e for e in events if e["subscriptionType"] == "contact.merge")
    assert merge["primaryObjectId"] == int(keep["id"])
    assert merge["mergedObjectIds"] == [int(lose["id"])]
    assert merge["newObjectId"] == int(keep["id"])
    assert any(e["subscriptionType"] == "contact.deletion" and e["objectId"] == int(keep["id"]) for e in events)


async def test_batches_hold_at_most_100_events(hooked: HookedHub) -> None:
    inputs = [{"properties": {"name": f"P{n}"}} for n in range(100)]
    status, _ = await hooked.hub.call("POST", "/crm/v3/objects/products/batch/create", json={"inputs": inputs})
    assert status == 201
    events = await _events(hooked)
    assert len(events) == 200  # a creation and a name change per product
    assert max(len(orjson.loads(d.body)) for d in hooked.sink.deliveries) <= 100


async def test_non_2xx_answers_are_retried_with_a_growing_attempt_number(hooked: HookedHub) -> None:
    hooked.sink.statuses = [500, 404]
    await hooked.hub.create("companies", {"name": "Retry"})
    await _events(hooked)
    bodies = [orjson.loads(d.body) for d in hooked.sink.deliveries]
    assert [d.status for d in hooked.sink.deliveries] == [500, 404, 200]
    assert [{e["attemptNumber"] for e in body} for body in bodies] == [{0}, {1}, {2}]
    assert len({tuple(e["eventId"] for e in body) for body in bodies}) == 1  # the same events each time


class HoldingSink:
    """Holds every delivery until released and records how many were open at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most_active = 0
        self.received = 0
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()
        self.app = Starlette(routes=[Route("/hook", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        await request.body()
        self.active += 1
        self.received += 1
        self.most_active = max(self.most_active, self.active)
        async with self.arrived:
            self.arrived.notify_all()
        await self.release.wait()
        self.active -= 1
        return Response(status_code=204)


@pytest.fixture
async def holding() -> AsyncIterator[tuple[HoldingSink, str]]:
    sink = HoldingSink()
    async with serving(sink.app) as server:
        try:
            yield sink, f"{server.url}/hook"
        finally:
            sink.release.set()


async def test_at_most_ten_deliveries_are_in_flight(holding: tuple[HoldingSink, str]) -> None:
    sink, url = holding
    sandbox = HubSpotSandbox(client_secret=CLIENT_SECRET, webhook_url=url, retry_scale=RETRY_SCALE)
    async with serving(sandbox.app):
        for _ in range(15):  # one batch per portal, so fifteen deliveries want to go at once
            portal = sandbox.accounts.create().portal
            sandbox.user_edit(portal_id=portal.portal_id, object_type="companies", action="create",
                              properties={"name": "Busy"})  # fmt: skip
        async with asyncio.timeout(5), sink.arrived:
            await sink.arrived.wait_for(lambda: sink.received >= 10)
        assert sandbox.webhooks.counters.attempts == 15  # all fifteen tried; five wait for a free slot
        assert sink.active == 10
        sink.release.set()
        assert await sandbox.webhooks.drain(5)
    assert sink.most_active == 10
    assert sink.received == 15

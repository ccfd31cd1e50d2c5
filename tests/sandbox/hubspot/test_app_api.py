"""The app's webhook subscriptions (webhooks API v3 with the developer API key, no scope)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hsqbo_sandbox import SandboxApps, SandboxOptions, start_sandbox
from hsqbo_sandbox._options import DEFAULT_DEVELOPER_API_KEY
from tests.sandbox.hubspot.conftest import APP_ID, Hub

SUBSCRIPTIONS = f"/webhooks/v3/{APP_ID}/subscriptions"
KEY = {"hapikey": DEFAULT_DEVELOPER_API_KEY}
APP_WEBHOOKS = Path(__file__).parents[3] / "deploy/hubspot-app/src/app/webhooks/webhooks-hsmeta.json"


async def _get(hub: Hub, path: str, **params: str) -> tuple[int, Any]:
    async with hub.http.get(hub.url + path, params=params) as response:
        return response.status, await response.json()


async def test_a_project_upload_declares_the_subscriptions_the_api_lists(hub: Hub) -> None:
    await hub.control("PUT", "app/webhooks", json=json.loads(APP_WEBHOOKS.read_text()))
    status, body = await _get(hub, SUBSCRIPTIONS, **KEY)
    assert status == 200
    results = body["results"]
    email = {"eventType": "object.propertyChange", "objectTypeId": "0-1", "propertyName": "email", "active": True}
    assert any(email.items() <= item.items() for item in results)
    assert {"id", "createdAt", "updatedAt"} <= results[0].keys()


async def test_a_subscription_is_created_paused_and_deleted_by_id(hub: Hub) -> None:
    async with hub.http.post(hub.url + SUBSCRIPTIONS, params=KEY, json={"eventType": "contact.creation"}) as answer:
        assert answer.status == 201
        created = await answer.json()
    assert created["active"] is False
    async with hub.http.delete(f"{hub.url}{SUBSCRIPTIONS}/{created['id']}", params=KEY) as answer:
        assert answer.status == 204
    assert (await _get(hub, SUBSCRIPTIONS, **KEY))[1] == {"results": []}
    async with hub.http.delete(f"{hub.url}{SUBSCRIPTIONS}/{created['id']}", params=KEY) as answer:
        assert answer.status == 404


async def test_the_webhooks_api_takes_the_developer_key_only(hub: Hub) -> None:
    assert (await _get(hub, SUBSCRIPTIONS))[0] == 401
    assert (await _get(hub, SUBSCRIPTIONS, hapikey="wrong"))[0] == 401
    status, _ = await hub.call("GET", SUBSCRIPTIONS)  # the portal's bearer token is not a developer key
    assert status == 401
    assert (await _get(hub, "/webhooks/v3/1/subscriptions", **KEY))[0] == 404


async def test_the_control_surface_deletes_a_subscription(hub: Hub) -> None:
    uploaded = await hub.control("PUT", "app/webhooks", json=json.loads(APP_WEBHOOKS.read_text()))
    first = uploaded["subscriptions"][0]
    assert await hub.control("DELETE", f"app/webhooks/{first['id']}") == {"deleted": int(first["id"])}
    _, body = await _get(hub, SUBSCRIPTIONS, **KEY)
    assert first["id"] not in {item["id"] for item in body["results"]}


async def test_a_seeded_sandbox_has_the_apps_subscriptions_as_uploaded() -> None:
    sandbox = await start_sandbox(SandboxOptions(hubspot_port=0, qbo_port=0, seed=True, apps=SandboxApps()))
    try:
        uploaded = [subscription.to_json() for subscription in sandbox.hubspot.subscriptions]
    finally:
        await sandbox.stop()
    declared = json.loads(APP_WEBHOOKS.read_text())["config"]["subscriptions"]["crmObjects"]
    assert len(uploaded) == len(declared)
    assert all(subscription["active"] for subscription in uploaded)

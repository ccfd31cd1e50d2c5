"""HubSpot emulator fixtures: a sandbox served on loopback with one portal, an authenticated aiohttp session
(private-app token) and helpers to call the API; webhook tests pass the shared `webhook_sink`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hsqbo_sandbox.hubspot import HubSpotSandbox
from hsqbo_sandbox.hubspot._scopes import EVERY_SCOPE
from shared.asgi import serving
from tests.sandbox.conftest import WebhookSink

CLIENT_SECRET = "test-client-secret"
APP_ID = "777001"
RETRY_SCALE = 0.0001  # the ~24 h retry schedule becomes ~9 s in all; the first retries come after milliseconds


def association_to(record_id: str, type_id: int) -> dict[str, Any]:
    """One `associations` entry of a create body: to `record_id`, with HubSpot-defined type `type_id`."""
    return {
        "to": {"id": record_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


@dataclasses.dataclass
class Hub:
    sandbox: HubSpotSandbox
    url: str
    portal_id: int
    token: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with self.http.request(method, self.url + path, headers=headers, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body

    async def create(self, object_type: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
        status, body = await self.call("POST", f"/crm/v3/objects/{object_type}", json={"properties": properties,
                                                                                       **extra})  # fmt: skip
        assert status == 201, body
        return dict(body)

    async def associations(self, from_type: str, from_id: str, to_type: str) -> dict[str, set[int]]:
        """A record's v4 associations to `to_type`: each associated id with its association type ids."""
        status, body = await self.call("GET", f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}")
        assert status == 200, body
        return {item["toObjectId"]: {t["typeId"] for t in item["associationTypes"]} for item in body["results"]}

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, f"{self.url}/_sandbox/{path}", **kwargs) as response:
            assert response.status < 300, await response.text()
            return await response.json() if response.content_type == "application/json" else None


@dataclasses.dataclass
class HookedHub:
    hub: Hub
    sink: WebhookSink


async def _hub(webhook_url: str | None = None, **portal: Any) -> AsyncIterator[Hub]:
    sandbox = HubSpotSandbox(client_secret=CLIENT_SECRET, app_id=APP_ID, webhook_url=webhook_url,
                             retry_scale=RETRY_SCALE)  # fmt: skip
    portal_id = sandbox.create_portal(**portal)
    token = sandbox.private_app_token(portal_id, scopes=EVERY_SCOPE)  # the emulator's own tests call anything
    async with serving(sandbox.app) as server, aiohttp.ClientSession() as http:
        yield Hub(sandbox, server.url, portal_id, token, http)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    async for served in _hub():
        yield served


@pytest.fixture
async def hooked(webhook_sink: WebhookSink) -> AsyncIterator[HookedHub]:
    async for served in _hub(webhook_sink.url):
        yield HookedHub(served, webhook_sink)

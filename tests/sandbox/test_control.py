"""The shared control routes: both emulators answer them on the same paths, with the same bodies and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hsqbo_sandbox.hubspot import HubSpotSandbox
from hsqbo_sandbox.qbo import QboSandbox
from shared.asgi import serving

Emulator = QboSandbox | HubSpotSandbox


class Control:
    def __init__(self, sandbox: Emulator, url: str, http: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.url = url
        self.http = http

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.url}/_sandbox/{path}", json=body) as response:
            return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        assert status < 300, answer
        return answer


@pytest.fixture(params=["qbo", "hubspot"])
async def control(request: pytest.FixtureRequest) -> AsyncIterator[Control]:
    sandbox: Emulator = QboSandbox() if request.param == "qbo" else HubSpotSandbox()
    async with serving(sandbox.app) as server, aiohttp.ClientSession() as http:
        yield Control(sandbox, server.url, http)


def _account(sandbox: Emulator) -> dict[str, Any]:
    """The body naming a new account of the emulator: its `realm_id` or `portal_id`."""
    if isinstance(sandbox, QboSandbox):
        return {"realm_id": sandbox.create_realm().realm_id}
    return {"portal_id": sandbox.create_portal()}


def _unknown_account(sandbox: Emulator) -> dict[str, Any]:
    return {"realm_id": "1"} if isinstance(sandbox, QboSandbox) else {"portal_id": 1}


async def test_the_clock_advances_by_seconds_and_never_back(control: Control) -> None:
    before = await control.ok("GET", "clock")
    after = await control.ok("POST", "clock/advance", {"seconds": 90})
    assert after["offset"] == before["offset"] + 90
    assert after["now"] >= before["now"] + 90
    status, answer = await control.call("POST", "clock/advance", {"seconds": -1})
    assert status == 400
    assert "forward" in answer["error"]


async def test_faults_change_by_field_and_unknown_fields_are_refused(control: Control) -> None:
    assert (await control.ok("PUT", "faults", {"latency_ms": [1, 2]}))["latency_ms"] == [1.0, 2.0]
    assert (await control.ok("GET", "faults"))["latency_ms"] == [1.0, 2.0]
    status, answer = await control.call("PUT", "faults", {"latencyMs": [1, 2]})
    assert (status, set(answer)) == (400, {"error"})


async def test_the_request_log_lists_and_clears(control: Control) -> None:
    assert await control.ok("GET", "requests") == {"count": 0, "requests": []}
    async with control.http.get(f"{control.url}/no/such/api") as response:
        await response.read()
    assert (await control.ok("GET", "requests?method=GET"))["count"] == 1
    assert await control.ok("DELETE", "requests") == {"cleared": 1}
    assert (await control.ok("GET", "requests"))["count"] == 0


async def test_webhook_url_and_drain(control: Control) -> None:
    stats = await control.ok("PUT", "webhooks", {"url": "http://127.0.0.1:9/hook"})
    assert stats["url"] == "http://127.0.0.1:9/hook"
    assert (await control.ok("GET", "webhooks"))["pending"] == 0
    drained = await control.ok("POST", "webhooks/drain", {"timeout": 1})
    assert drained["drained"] is True
    assert drained["stats"]["url"] == "http://127.0.0.1:9/hook"


async def test_state_put_replaces_everything_with_a_dump(control: Control) -> None:
    body = _account(control.sandbox)
    dumped = await control.ok("GET", "state")
    await control.ok("POST", "accounts")
    assert len((await control.ok("GET", "accounts"))["accounts"]) == 2
    await control.ok("PUT", "state", dumped)
    (account,) = (await control.ok("GET", "accounts"))["accounts"]
    assert account.items() >= body.items()


async def test_errors_share_one_shape(control: Control) -> None:
    unknown = _unknown_account(control.sandbox)
    status, answer = await control.call("POST", "tokens", {})
    assert (status, answer) == (400, {"error": f"{next(iter(unknown))} is required"})
    status, answer = await control.call("POST", "clock/advance", [1])
    assert (status, answer) == (400, {"error": "the body must be a JSON object"})
    status, answer = await control.call("POST", "tokens", unknown)
    assert status == 404
    assert "error" in answer


async def test_a_refusal_by_a_provider_rule_carries_the_providers_error_body(control: Control) -> None:
    sandbox = control.sandbox
    if isinstance(sandbox, QboSandbox):
        edit = {**_account(sandbox), "entity": "Customer", "action": "create", "data": {}}
        provider_key = "Fault"
    else:
        edit = {**_account(sandbox), "object_type": "contacts", "action": "create", "properties": {"email": "bad"}}
        provider_key = "category"
    status, answer = await control.call("POST", "user-edit", edit)
    assert status == 400
    assert provider_key in answer["provider_error"]
    assert answer["error"]

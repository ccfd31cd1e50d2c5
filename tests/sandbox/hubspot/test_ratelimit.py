"""The per-portal burst limit (USAGE): 429 TEN_SECONDLY_ROLLING with HubSpot's body and headers."""

from __future__ import annotations

from tests.sandbox.hubspot.conftest import Hub


async def test_burst_over_the_portal_limit_is_429_with_rate_limit_body_and_headers(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(burst_limit=3)
    remaining = []
    for _ in range(3):
        async with hub.http.get(f"{hub.url}/crm/v3/objects/contacts",
                                headers={"Authorization": f"Bearer {hub.token}"}) as response:  # fmt: skip
            assert response.status == 200
            remaining.append(response.headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    async with hub.http.get(f"{hub.url}/crm/v3/objects/contacts",
                            headers={"Authorization": f"Bearer {hub.token}"}) as response:  # fmt: skip
        assert response.status == 429
        assert response.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert response.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        body = await response.json()
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert {"message", "correlationId"} <= body.keys()
    hub.sandbox.clock.advance(10)  # the rolling window empties
    status, _ = await hub.call("GET", "/crm/v3/objects/contacts")
    assert status == 200


async def test_the_daily_limit_is_429_daily(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(daily_limit=2)
    statuses = [(await hub.call("GET", "/crm/v3/objects/contacts"))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    _, body = await hub.call("GET", "/crm/v3/objects/contacts")
    assert body["policyName"] == "DAILY"


async def test_limits_are_per_portal(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(burst_limit=1)
    other = hub.sandbox.create_portal()
    other_token = hub.sandbox.private_app_token(other)
    assert (await hub.call("GET", "/crm/v3/objects/contacts"))[0] == 200
    assert (await hub.call("GET", "/crm/v3/objects/contacts"))[0] == 429
    assert (await hub.call("GET", "/crm/v3/objects/contacts", token=other_token))[0] == 200

"""Bearer tokens, OAuth install and refresh on HubSpot's paths (reference §7): 30-minute access tokens, RFC 6749
error bodies, 401 categories."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.sandbox.hubspot.conftest import CLIENT_SECRET, Hub


async def _token(hub: Hub, path: str, **form: str) -> tuple[int, dict[str, object]]:
    fields = {"client_id": hub.sandbox.client_id, "client_secret": CLIENT_SECRET, **form}
    async with hub.http.post(f"{hub.url}{path}", data=fields) as response:
        return response.status, await response.json()


async def test_missing_and_unknown_tokens_are_401_invalid_authentication(hub: Hub) -> None:
    async with hub.http.get(f"{hub.url}/crm/v3/objects/contacts") as response:
        assert response.status == 401
        assert (await response.json())["category"] == "INVALID_AUTHENTICATION"
    status, body = await hub.call("GET", "/crm/v3/objects/contacts", token="pat-na1-unknown")
    assert (status, body["category"]) == (401, "INVALID_AUTHENTICATION")


async def test_install_flow_redirects_with_code_and_state_then_exchanges_it_once(hub: Hub) -> None:
    params = {"client_id": hub.sandbox.client_id, "redirect_uri": "http://127.0.0.1:9/callback", "state": "s-1",
              "scope": "crm.objects.contacts.read"}  # fmt: skip
    async with hub.http.get(f"{hub.url}/oauth/authorize", params=params, allow_redirects=False) as response:
        assert response.status == 302
        location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == "/callback"
    assert query["state"] == ["s-1"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": params["redirect_uri"]}
    status, body = await _token(hub, "/oauth/v1/token", **form)
    assert status == 200
    assert body["expires_in"] == 1800
    assert body["token_type"] == "bearer"
    assert body["hub_id"] == hub.portal_id
    status, error = await _token(hub, "/oauth/v1/token", **form)
    assert status == 400
    assert error["error"] == "invalid_grant"
    assert {"error_description", "status", "message"} <= error.keys()


async def test_access_tokens_expire_after_30_minutes_and_refresh_gives_a_new_one(hub: Hub) -> None:
    pair = hub.sandbox.issue_token(hub.portal_id)
    assert (await hub.call("GET", "/crm/v3/objects/contacts", token=pair.access_token))[0] == 200
    hub.sandbox.clock.advance(1801)
    status, body = await hub.call("GET", "/crm/v3/objects/contacts", token=pair.access_token)
    assert (status, body["category"]) == (401, "EXPIRED_AUTHENTICATION")
    assert "expired" in body["message"]
    assert pair.refresh_token is not None
    status, fresh = await _token(hub, "/oauth/v3/token", grant_type="refresh_token", refresh_token=pair.refresh_token)
    assert status == 200
    assert fresh["refresh_token"] == pair.refresh_token  # HubSpot does not rotate refresh tokens
    assert (await hub.call("GET", "/crm/v3/objects/contacts", token=str(fresh["access_token"])))[0] == 200


async def test_token_errors_follow_rfc_6749(hub: Hub) -> None:
    status, body = await _token(hub, "/oauth/v1/token", grant_type="refresh_token", refresh_token="nope")
    assert (status, body["error"], body["status"]) == (400, "invalid_grant", "BAD_REFRESH_TOKEN")
    status, body = await _token(hub, "/oauth/v3/token", grant_type="refresh_token", refresh_token="x",
                                client_secret="wrong")  # fmt: skip
    assert (status, body["error"]) == (400, "invalid_client")
    status, body = await _token(hub, "/oauth/v3/token", grant_type="password")
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_oauth_calls_carry_no_daily_limit_headers_but_private_app_calls_do(hub: Hub) -> None:
    pair = hub.sandbox.issue_token(hub.portal_id)
    for token, daily in ((pair.access_token, False), (hub.token, True)):
        async with hub.http.get(f"{hub.url}/crm/v3/objects/contacts",
                                headers={"Authorization": f"Bearer {token}"}) as response:  # fmt: skip
            assert response.status == 200
            assert response.headers["X-HubSpot-RateLimit-Max"] == "100"
            assert ("X-HubSpot-RateLimit-Daily" in response.headers) is daily


async def test_tokens_only_reach_their_own_portal(hub: Hub) -> None:
    other = hub.sandbox.create_portal()
    other_token = hub.sandbox.private_app_token(other)
    contact = await hub.create("contacts", {"email": "mine@x.co"})
    status, _ = await hub.call("GET", f"/crm/v3/objects/contacts/{contact['id']}", token=other_token)
    assert status == 404


async def test_the_request_log_names_portal_and_client(hub: Hub) -> None:
    await hub.call("GET", "/crm/v3/objects/contacts")
    async with aiohttp.ClientSession() as http, http.get(f"{hub.url}/_sandbox/requests") as response:
        entries = (await response.json())["requests"]
    assert entries[-1]["account"] == str(hub.portal_id)
    assert entries[-1]["client"].startswith("private-app:")
    assert entries[-1]["status"] == 200

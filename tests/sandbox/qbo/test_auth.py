"""OAuth 2.0 on Intuit's paths (qbo-api.md §7) and the API's 401/403 Fault bodies (§5)."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

import aiohttp

from tests.sandbox.qbo.conftest import CLIENT_ID, CLIENT_SECRET, REALM_ID, QboHttp

REDIRECT_URI = "https://app.example/callback"


def _basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def _authorize(qbo: QboHttp, **overrides: str) -> dict[str, str]:
    params = {"client_id": CLIENT_ID, "response_type": "code", "scope": "com.intuit.quickbooks.accounting",
              "redirect_uri": REDIRECT_URI, "state": "xyz", **overrides}  # fmt: skip
    async with qbo.http.get(f"{qbo.base_url}/connect/oauth2", params=params, allow_redirects=False) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


async def _token(qbo: QboHttp, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with qbo.http.post(f"{qbo.base_url}/oauth2/v1/tokens/bearer", data=form,
                             headers=headers or _basic()) as resp:  # fmt: skip
        return resp.status, await resp.json()


async def test_authorize_redirects_with_code_state_and_realm_id(qbo: QboHttp) -> None:
    answer = await _authorize(qbo)
    assert (answer["state"], answer["realmId"]) == ("xyz", REALM_ID)
    assert answer["code"]


async def test_code_exchange_gives_one_hour_access_and_rolling_refresh_token(qbo: QboHttp) -> None:
    code = (await _authorize(qbo))["code"]
    status, tokens = await _token(qbo, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI})
    assert status == 200
    assert (tokens["token_type"], tokens["expires_in"], tokens["x_refresh_token_expires_in"]) == (
        "bearer", 3600, 100 * 86400)  # fmt: skip
    status, _ = await qbo.request("GET", "query", token=tokens["access_token"], query="select * from Customer")
    assert status == 200


async def test_reused_code_is_invalid_grant(qbo: QboHttp) -> None:
    code = (await _authorize(qbo))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    assert (await _token(qbo, form))[0] == 200
    assert await _token(qbo, form) == (400, {"error": "invalid_grant"})


async def test_wrong_client_secret_is_invalid_client(qbo: QboHttp) -> None:
    code = (await _authorize(qbo))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    assert await _token(qbo, form, _basic(secret="wrong")) == (401, {"error": "invalid_client"})


async def test_refresh_rotates_and_the_old_refresh_token_dies_after_the_grace(qbo: QboHttp) -> None:
    first = qbo.sandbox.issue_token(REALM_ID, CLIENT_ID)
    status, second = await _token(qbo, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    qbo.sandbox.clock.advance(3600)
    status, answer = await _token(qbo, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert (status, answer) == (400, {"error": "invalid_grant"})
    status, third = await _token(qbo, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert (status, third["token_type"]) == (200, "bearer")


async def test_expired_access_token_gets_401_authentication_fault(qbo: QboHttp) -> None:
    qbo.sandbox.clock.advance(3600)
    status, answer = await qbo.get("query", query="select * from Customer")
    assert status == 401
    assert answer["Fault"]["type"] == "AUTHENTICATION"
    assert answer["Fault"]["Error"][0]["code"] == "3200"
    assert answer["Fault"]["Error"][0]["Message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"


async def test_token_for_another_realm_gets_403(qbo: QboHttp) -> None:
    qbo.sandbox.create_realm("999")
    other = qbo.sandbox.issue_token("999")["access_token"]
    status, answer = await qbo.request("GET", "query", token=other, query="select * from Customer")
    assert (status, answer["Fault"]["Error"][0]["code"]) == (403, "3100")


async def test_revoked_refresh_token_ends_its_access_tokens(qbo: QboHttp) -> None:
    tokens = qbo.sandbox.issue_token(REALM_ID, CLIENT_ID)
    async with qbo.http.post(f"{qbo.base_url}/v2/oauth2/tokens/revoke", json={"token": tokens["refresh_token"]},
                             headers=_basic()) as resp:  # fmt: skip
        assert resp.status == 200
    status, _ = await qbo.request("GET", "query", token=tokens["access_token"], query="select * from Customer")
    assert status == 401


async def test_missing_bearer_token_is_401(qbo: QboHttp) -> None:
    async with aiohttp.ClientSession() as http, http.get(qbo.api("customer/1")) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")

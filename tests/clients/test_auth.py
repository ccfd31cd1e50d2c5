"""OAuth token sources: request shapes of both token endpoints, refresh ahead of expiry, one refresh at a time,
rotated refresh tokens stored before use, revoked grants."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import parse_qsl

import pytest

from shared.clients import (
    HubSpotOAuth,
    MemoryTokenStore,
    MockTransport,
    QboOAuth,
    Request,
    Response,
    StaticToken,
    TokenSet,
)
from shared.config import Settings
from shared.errors import AuthRevoked, ConfigError, ServerError, TransportError
from tests.clients.answers import json_answer

NOW = 1_800_000_000.0
TOKEN_URL = "https://oauth.example/token"
KEY = "quickbooks:9130"


def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl(request.body.decode()))


def _grant(access: str, refresh: str | None = "r2", expires_in: int = 3600, **extra: object) -> Response:
    body: dict[str, object] = {"token_type": "bearer", "access_token": access, "expires_in": expires_in, **extra}
    if refresh is not None:
        body["refresh_token"] = refresh
    return json_answer(200, body)


def _qbo(store: MemoryTokenStore, transport: MockTransport, now: float = NOW) -> QboOAuth:
    return QboOAuth(
        KEY,
        store=store,
        transport=transport,
        token_url=TOKEN_URL,
        client_id="client-id",
        client_secret="client-secret",
        clock=lambda: now,
    )


def _stored(access: str = "a1", refresh: str = "r1", expires_at: float = NOW + 3600) -> MemoryTokenStore:
    return MemoryTokenStore({KEY: TokenSet(access, refresh, expires_at)})


async def test_static_token_never_changes() -> None:
    token = StaticToken("pat-na1-secret")
    await token.on_unauthorized("pat-na1-secret")
    assert await token.access_token() == "pat-na1-secret"
    assert "secret" not in repr(token)


async def test_token_set_repr_hides_the_tokens() -> None:
    assert "secret" not in repr(TokenSet("secret-a", "secret-r", NOW))


async def test_fresh_access_token_is_used_without_calling_the_token_endpoint() -> None:
    transport = MockTransport(lambda request: pytest.fail("no refresh expected"))
    assert await _qbo(_stored(), transport).access_token() == "a1"


async def test_qbo_refresh_uses_basic_auth_and_a_form_body() -> None:
    transport = MockTransport(lambda request: _grant("a2"))
    await _qbo(_stored(expires_at=NOW - 1), transport).access_token()
    (request,) = transport.requests
    assert (request.method, request.url) == ("POST", TOKEN_URL)
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"client-id:client-secret").decode()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert _form(request) == {"grant_type": "refresh_token", "refresh_token": "r1"}


async def test_hubspot_refresh_sends_client_credentials_in_the_form_body() -> None:
    store = MemoryTokenStore({"hubspot:62515": TokenSet("a1", "r1", NOW - 1)})
    transport = MockTransport(lambda request: _grant("a2"))
    oauth = HubSpotOAuth(
        "hubspot:62515",
        store=store,
        transport=transport,
        token_url=TOKEN_URL,
        client_id="hs-id",
        client_secret="hs-secret",
        clock=lambda: NOW,
    )
    assert await oauth.access_token() == "a2"
    (request,) = transport.requests
    assert "Authorization" not in request.headers
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": "r1",
        "client_id": "hs-id",
        "client_secret": "hs-secret",
    }


async def test_refresh_happens_ahead_of_expiry() -> None:
    transport = MockTransport(lambda request: _grant("a2"))
    oauth = _qbo(_stored(expires_at=NOW + 299), transport)  # inside the default 300 s margin
    assert await oauth.access_token() == "a2"


async def test_rotated_tokens_are_stored_with_their_expiry() -> None:
    store = _stored(expires_at=NOW - 1)
    transport = MockTransport(lambda request: _grant("a2", "r2", 3600, x_refresh_token_expires_in=8_640_000))
    await _qbo(store, transport).access_token()
    assert store.tokens[KEY] == TokenSet("a2", "r2", NOW + 3600, NOW + 8_640_000)


async def test_refresh_token_is_kept_when_the_provider_sends_none() -> None:
    store = _stored(expires_at=NOW - 1)
    await _qbo(store, MockTransport(lambda request: _grant("a2", refresh=None))).access_token()
    assert store.tokens[KEY].refresh_token == "r1"


async def test_new_tokens_are_stored_before_the_access_token_is_handed_out() -> None:
    events: list[str] = []

    class RecordingStore(MemoryTokenStore):
        async def save(self, key: str, tokens: TokenSet) -> None:
            events.append(f"save {tokens.refresh_token}")
            await super().save(key, tokens)

    store = RecordingStore({KEY: TokenSet("a1", "r1", NOW - 1)})
    token = await _qbo(store, MockTransport(lambda request: _grant("a2", "r2"))).access_token()
    events.append(f"use {token}")
    assert events == ["save r2", "use a2"]


async def test_a_failed_save_withholds_the_new_access_token() -> None:
    class BrokenStore(MemoryTokenStore):
        async def save(self, key: str, tokens: TokenSet) -> None:
            raise OSError("disk full")

    oauth = _qbo(BrokenStore({KEY: TokenSet("a1", "r1", NOW - 1)}), MockTransport(lambda request: _grant("a2")))
    with pytest.raises(OSError, match="disk full"):
        await oauth.access_token()


async def test_concurrent_callers_share_one_refresh() -> None:
    release = asyncio.Event()

    async def slow_grant(request: Request) -> Response:
        await release.wait()
        return _grant("a2")

    transport = MockTransport(slow_grant)
    oauth = _qbo(_stored(expires_at=NOW - 1), transport)
    callers = [asyncio.create_task(oauth.access_token()) for _ in range(10)]
    await asyncio.sleep(0)  # let every caller reach the lock
    release.set()
    assert await asyncio.gather(*callers) == ["a2"] * 10
    assert len(transport.requests) == 1


async def test_unauthorized_refreshes_once_even_when_reported_twice() -> None:
    transport = MockTransport(lambda request: _grant("a2"))
    oauth = _qbo(_stored(), transport)
    await oauth.on_unauthorized("a1")
    await oauth.on_unauthorized("a1")  # a second call that failed with the same, already replaced token
    assert len(transport.requests) == 1
    assert await oauth.access_token() == "a2"


async def test_token_refreshed_by_another_process_is_adopted_without_a_grant() -> None:
    store = _stored()
    oauth = _qbo(store, MockTransport(lambda request: pytest.fail("no refresh expected")))
    assert await oauth.access_token() == "a1"
    store.tokens[KEY] = TokenSet("a9", "r9", NOW + 3600)  # the other process rotated and saved
    await oauth.on_unauthorized("a1")
    assert await oauth.access_token() == "a9"


async def test_refresh_holds_the_store_lock_for_the_account() -> None:
    held: list[str] = []

    class LockingStore(MemoryTokenStore):
        def lock(self, key: str) -> AbstractAsyncContextManager[None]:
            @asynccontextmanager
            async def hold() -> AsyncIterator[None]:
                held.append(f"enter {key}")
                yield
                held.append(f"exit {key}")

            return hold()

        async def save(self, key: str, tokens: TokenSet) -> None:
            held.append("save")
            await super().save(key, tokens)

    store = LockingStore({KEY: TokenSet("a1", "r1", NOW - 1)})
    await _qbo(store, MockTransport(lambda request: _grant("a2"))).access_token()
    assert held == [f"enter {KEY}", "save", f"exit {KEY}"]


async def test_invalid_grant_raises_auth_revoked_and_keeps_the_stored_tokens() -> None:
    store = _stored(expires_at=NOW - 1)
    answer = json_answer(400, {"error": "invalid_grant", "error_description": "Incorrect or invalid refresh token"})
    with pytest.raises(AuthRevoked) as caught:
        await _qbo(store, MockTransport(lambda request: answer)).access_token()
    assert caught.value.provider == "quickbooks"
    assert store.tokens[KEY].refresh_token == "r1"


async def test_no_stored_tokens_means_not_connected() -> None:
    with pytest.raises(AuthRevoked, match="connect"):
        await _qbo(MemoryTokenStore(), MockTransport(lambda request: _grant("a2"))).access_token()


async def test_token_endpoint_outage_is_a_transient_error() -> None:
    oauth = _qbo(_stored(expires_at=NOW - 1), MockTransport(lambda request: Response(503, {}, b"")))
    with pytest.raises(ServerError):
        await oauth.access_token()


async def test_token_endpoint_unreachable_is_a_transport_error() -> None:
    def unreachable(request: Request) -> Response:
        raise ConnectionError("refused")

    with pytest.raises(TransportError):
        await _qbo(_stored(expires_at=NOW - 1), MockTransport(unreachable)).access_token()


async def test_exchange_code_trades_the_authorization_code_and_stores_the_tokens() -> None:
    store = MemoryTokenStore()
    transport = MockTransport(lambda request: _grant("a1", "r1"))
    tokens = await _qbo(store, transport).exchange_code("auth-code", "https://hsqbo.example/oauth/qbo")
    assert _form(transport.requests[0]) == {
        "grant_type": "authorization_code",
        "code": "auth-code",
        "redirect_uri": "https://hsqbo.example/oauth/qbo",
    }
    assert store.tokens[KEY] == tokens == TokenSet("a1", "r1", NOW + 3600)


def test_from_settings_needs_the_client_credentials() -> None:
    transport = MockTransport(lambda request: _grant("a2"))
    with pytest.raises(ConfigError, match="HSQBO_QBO_CLIENT_ID"):
        QboOAuth.from_settings(KEY, Settings(qbo_client_id=None), store=MemoryTokenStore(), transport=transport)


async def test_from_settings_refreshes_against_the_configured_token_url() -> None:
    settings = Settings(
        qbo_client_id="id",
        qbo_client_secret="secret",
        qbo_token_url="http://127.0.0.1:9/token",
    )
    transport = MockTransport(lambda request: _grant("a2"))
    store = MemoryTokenStore({KEY: TokenSet("a1", "r1", expires_at=0.0)})
    oauth = QboOAuth.from_settings(KEY, settings, store=store, transport=transport)
    assert await oauth.access_token() == "a2"
    assert transport.requests[0].url == "http://127.0.0.1:9/token"
    assert repr(oauth) == f"QboOAuth({KEY!r})"

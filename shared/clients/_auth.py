"""Where the clients get their bearer token, and how an OAuth token is refreshed.

A client asks its `TokenSource` for a token before each call. On a 401 it reports the token it used
(`on_unauthorized`) and asks again: if it gets a different token it retries the call once, otherwise the 401 stands.
`StaticToken` never changes (a HubSpot private-app token). `QboOAuth` and `HubSpotOAuth` refresh ahead of expiry and
on a 401, one refresh at a time per account, and persist the rotated refresh token through a `TokenStore` *before*
the new access token is used: a refresh token the store never saw may already have replaced the one it has.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol, Self
from urllib.parse import urlencode

from shared.clients._errors import oauth_error
from shared.clients._metrics import measured
from shared.clients._transport import Request, Response, Transport
from shared.config import Settings, secret
from shared.domain import Provider
from shared.errors import AuthRevoked, ConfigError, TransportError


class TokenSource(Protocol):
    async def access_token(self) -> str: ...

    async def on_unauthorized(self, token: str) -> None:
        """`token` was refused with a 401; refresh if it is still the current one."""
        ...


class StaticToken:
    """A token that never changes: a HubSpot private-app token, or a pre-issued access token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(***)"

    async def access_token(self) -> str:
        return self._token

    async def on_unauthorized(self, token: str) -> None:
        return None  # nothing to refresh: the 401 stands


@dataclasses.dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_at: float  # epoch seconds when the access token expires
    refresh_expires_at: float | None = None  # epoch seconds, when the provider says (QBO's rolling 100 days)
    account_id: str | None = None  # whose tokens, when the token answer says (HubSpot's hub_id on a code grant)


class TokenStore(Protocol):
    """Durable tokens per account key (e.g. "quickbooks:<realmId>", "hubspot:<portalId>").

    `lock(key)` serialises refreshes of one account across processes; the OAuth sources already serialise them
    within a process, so a single-process store may return a no-op context."""

    async def load(self, key: str) -> TokenSet | None: ...

    async def save(self, key: str, tokens: TokenSet) -> None: ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]: ...


class MemoryTokenStore:
    """Tokens in a dict: tests, the sandbox, single-process demos."""

    def __init__(self, tokens: Mapping[str, TokenSet] | None = None) -> None:
        self.tokens: dict[str, TokenSet] = dict(tokens or {})

    async def load(self, key: str) -> TokenSet | None:
        return self.tokens.get(key)

    async def save(self, key: str, tokens: TokenSet) -> None:
        self.tokens[key] = tokens

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


class _OAuthToken(abc.ABC):
    """Refresh-token grant against a provider's token endpoint; subclasses say how the client authenticates."""

    provider: Provider
    settings_prefix: str  # which HSQBO_<PREFIX>_CLIENT_ID, _CLIENT_SECRET and _TOKEN_URL are this provider's

    @classmethod
    def from_settings(cls, key: str, settings: Settings, *, store: TokenStore, transport: Transport) -> Self:
        prefix = cls.settings_prefix
        settings.require(f"{prefix}_client_id", f"{prefix}_client_secret")
        return cls(
            key,
            store=store,
            transport=transport,
            token_url=str(getattr(settings, f"{prefix}_token_url")),
            client_id=_required(getattr(settings, f"{prefix}_client_id")),
            client_secret=secret(getattr(settings, f"{prefix}_client_secret")),
            refresh_margin_seconds=settings.oauth_refresh_margin_seconds,
        )

    def __init__(
        self,
        key: str,
        *,
        store: TokenStore,
        transport: Transport,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_margin_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self._store = store
        self._transport = transport
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._tokens: TokenSet | None = None
        self._lock = asyncio.Lock()  # one refresh in flight per account in this process

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"

    async def access_token(self) -> str:
        tokens = self._tokens or await self._store.load(self.key)
        if tokens is None:
            raise AuthRevoked(f"no tokens stored for {self.key}: connect the account", provider=self.provider)
        if self._fresh(tokens):
            self._tokens = tokens
            return tokens.access_token
        return (await self._refresh(tokens.access_token)).access_token

    async def on_unauthorized(self, token: str) -> None:
        await self._refresh(token)

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Finish the OAuth connect flow: trade the authorization code for tokens and store them."""
        async with self._lock, self._store.lock(self.key):
            tokens = await self._grant(
                {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}, None
            )
            await self._store.save(self.key, tokens)
            self._tokens = tokens
            return tokens

    def _fresh(self, tokens: TokenSet) -> bool:
        return tokens.expires_at - self._margin > self._clock()

    async def _refresh(self, stale_access_token: str) -> TokenSet:
        """Replace `stale_access_token`, unless another coroutine or process already did."""
        async with self._lock, self._store.lock(self.key):
            current = await self._store.load(self.key)
            if current is None:
                raise AuthRevoked(f"no tokens stored for {self.key}: connect the account", provider=self.provider)
            if current.access_token != stale_access_token and self._fresh(current):
                self._tokens = current
                return current
            tokens = await self._grant({"grant_type": "refresh_token", "refresh_token": current.refresh_token}, current)
            await self._store.save(self.key, tokens)  # before any use: the old refresh token may be dead now
            self._tokens = tokens
            return tokens

    async def _grant(self, form: dict[str, str], current: TokenSet | None) -> TokenSet:
        request = self._token_request(form)
        with measured(self.provider, "oauth_token"):
            try:
                response = await self._transport.send(request)
            except OSError as exc:  # ConnectionError, TimeoutError
                raise TransportError(f"token endpoint: {type(exc).__name__}", provider=self.provider) from exc
            if response.status != 200:
                raise oauth_error(self.provider, response)
            return self._token_set(response, current)

    def _token_set(self, response: Response, current: TokenSet | None) -> TokenSet:
        body = response.json()
        now = self._clock()
        refresh_expires_in = body.get("x_refresh_token_expires_in")
        return TokenSet(
            access_token=str(body["access_token"]),
            # Keep the old refresh token only if the provider did not send one (no rotation on this grant).
            refresh_token=str(body.get("refresh_token") or (current.refresh_token if current else "")),
            expires_at=now + float(body["expires_in"]),
            refresh_expires_at=now + float(refresh_expires_in) if refresh_expires_in is not None else None,
            account_id=str(body["hub_id"]) if body.get("hub_id") is not None else None,
        )

    @abc.abstractmethod
    def _token_request(self, form: dict[str, str]) -> Request: ...


_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


class QboOAuth(_OAuthToken):
    """Intuit: client credentials in HTTP Basic auth, the grant in a form body. Refresh tokens rotate."""

    provider = Provider.QUICKBOOKS
    settings_prefix = "qbo"

    def _token_request(self, form: dict[str, str]) -> Request:
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode()
        return Request(
            "POST",
            self._token_url,
            {**_FORM_HEADERS, "Authorization": f"Basic {basic}"},
            urlencode(form).encode(),
        )


class HubSpotOAuth(_OAuthToken):
    """HubSpot: client id and secret in the form body with the grant (the v3 endpoints refuse them in the query)."""

    provider = Provider.HUBSPOT
    settings_prefix = "hubspot"

    def _token_request(self, form: dict[str, str]) -> Request:
        body = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        return Request("POST", self._token_url, _FORM_HEADERS, urlencode(body).encode())


def _required(value: str | None) -> str:
    if not value:
        raise ConfigError("a required setting is not set")
    return value

"""OAuth tokens live in the store, encrypted; the API clients read and rotate them through this adapter.

    source = token_source(settings, store, connection="acme", provider=Provider.QUICKBOOKS, transport=transport)
    qbo = QboClient(base_url, realm_id, source, transport)

A HubSpot connection without a refresh token uses its access token as a static (private-app) token. Refreshes of
one connection's provider are serialised across processes by a lease in the store; the OAuth source re-reads the
tokens inside it, so a process that waited adopts the tokens another one just got.

A refused refresh (`AuthRevoked`) pauses the connection: the worker marks the credentials revoked until `connect()`
stores new ones. So does a HubSpot call outside the token's scopes (`MissingScopes`): the credentials are marked
revoked with the scopes to grant in `extra["missing_scopes"]`, and `token_source` raises `MissingScopes` again
until the account is reconnected with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from shared.clients import HubSpotOAuth, QboOAuth, StaticToken, TokenSet, TokenSource, Transport
from shared.config import Settings
from shared.domain import Provider
from shared.errors import AuthRevoked, MissingScopes
from shared.store import Credentials, CredentialStatus, CredentialStore, Locks, PendingWork

MISSING_SCOPES = "missing_scopes"  # Credentials.extra of a connection paused for want of scopes: the scopes to grant
_LOCK_RETRY_FIRST_SECONDS = 0.02  # a refresh takes one token call: look again soon,
_LOCK_RETRY_MAX_SECONDS = 1.0  # then back off, never past this


class TokenRows(CredentialStore, Locks, Protocol):
    """What the OAuth adapter needs of the store: the credentials, and a lock to refresh them one at a time."""


class StoreTokenStore:
    """`shared.clients.TokenStore` over the store's credentials of one connection; keys are provider names.

    `lock_seconds` bounds how long a refresh may hold the cross-process lock: longer than a token call can take, so
    it only runs out when its holder died."""

    def __init__(
        self, store: TokenRows, connection: str, *, lock_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._connection = connection
        self._lock_seconds = lock_seconds
        self._clock = clock
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def __repr__(self) -> str:
        return f"StoreTokenStore({self._connection!r})"

    async def load(self, key: str) -> TokenSet | None:
        credentials = await self._store.get_credentials(self._connection, Provider(key))
        if credentials is None or credentials.status != CredentialStatus.ACTIVE:
            return None
        return TokenSet(
            access_token=credentials.access_token,
            refresh_token=credentials.refresh_token,
            expires_at=credentials.expires_at or 0.0,
            refresh_expires_at=credentials.refresh_expires_at,
        )

    async def save(self, key: str, tokens: TokenSet) -> None:
        current = await self._store.get_credentials(self._connection, Provider(key))
        await self._store.save_credentials(
            Credentials(
                connection=self._connection,
                provider=Provider(key),
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=tokens.expires_at,
                refresh_expires_at=tokens.refresh_expires_at,
                extra=current.extra if current else {},
            )
        )

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """One refresh of this connection's `key` tokens at a time across processes: wait (backing off) for the
        lease, hold it until the new tokens are saved."""
        name = f"oauth:{self._connection}:{key}"
        delay = _LOCK_RETRY_FIRST_SECONDS
        while not await self._store.acquire_lock(name, self._owner, self._clock(), self._lock_seconds):
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LOCK_RETRY_MAX_SECONDS)
        try:
            yield
        finally:
            await self._store.release_lock(name, self._owner)


class Reconnecting(CredentialStore, PendingWork, Protocol):
    """What storing new credentials needs: the credentials, and the work set aside while the connection was paused."""


async def connect(store: Reconnecting, credentials: Credentials) -> None:
    """Store newly authorized credentials (the OAuth connect flow, or a reconnect after a revocation) and make the
    work set aside while the connection was paused due at once."""
    await store.save_credentials(credentials)
    await store.release_deferred(credentials.connection)


def grant_hint(scopes: Sequence[str]) -> str:
    """What the operator must do about missing scopes."""
    return f"reconnect to grant {' '.join(scopes)}" if scopes else "reconnect to grant the scopes HubSpot asked for"


async def token_source(
    settings: Settings, store: TokenRows, *, connection: str, provider: Provider, transport: Transport
) -> TokenSource:
    credentials = await store.get_credentials(connection, provider)
    if credentials is not None and credentials.status == CredentialStatus.PAUSED:
        raise AuthRevoked(f"connection {connection!r} is paused: hsqbo connections resume {connection}",
                          provider=provider)  # fmt: skip
    if (
        credentials is not None
        and credentials.status == CredentialStatus.REVOKED
        and MISSING_SCOPES in credentials.extra
    ):
        scopes = tuple(credentials.extra[MISSING_SCOPES])
        raise MissingScopes(f"connection {connection!r} lacks {provider} scopes", scopes=scopes, provider=provider)
    if credentials is None or credentials.status != CredentialStatus.ACTIVE:
        raise AuthRevoked(f"connection {connection!r} has no {provider} credentials: connect it", provider=provider)
    # A token call gives up after api_timeout_seconds; twice that covers the reads and the save around it.
    tokens = StoreTokenStore(store, connection, lock_seconds=2 * settings.api_timeout_seconds)
    if provider == Provider.QUICKBOOKS:
        return QboOAuth.from_settings(str(provider), settings, store=tokens, transport=transport)
    if not credentials.refresh_token:
        return StaticToken(credentials.access_token)
    return HubSpotOAuth.from_settings(str(provider), settings, store=tokens, transport=transport)

"""OAuth tokens live in the store, encrypted; the API clients read and rotate them through this adapter.

    source = token_source(settings, store, connection="acme", provider=Provider.QUICKBOOKS, transport=transport)
    qbo = QboClient(base_url, realm_id, source, transport)

A HubSpot connection without a refresh token uses its access token as a static (private-app) token.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager

from shared.clients import HubSpotOAuth, QboOAuth, StaticToken, TokenSet, TokenSource, Transport
from shared.config import Settings
from shared.envelope import Provider
from shared.errors import AuthRevoked
from shared.store import Credentials, CredentialStatus, Store


class StoreTokenStore:
    """`shared.clients.TokenStore` over the store's credentials of one connection; keys are provider names."""

    def __init__(self, store: Store, connection: str) -> None:
        self._store = store
        self._connection = connection

    async def load(self, key: str) -> TokenSet | None:
        credentials = await self._store.get_credentials(self._connection, Provider(key))
        if credentials is None or credentials.status == CredentialStatus.REVOKED:
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

    def lock(self, key: str) -> AbstractAsyncContextManager[None]:
        # Within one process the OAuth source already serialises refreshes. Across processes two refreshes may race;
        # QBO keeps the previous refresh token valid for a grace period, so the loser's next read adopts the winner's.
        return contextlib.nullcontext()


async def token_source(
    settings: Settings, store: Store, *, connection: str, provider: Provider, transport: Transport
) -> TokenSource:
    credentials = await store.get_credentials(connection, provider)
    if credentials is None or credentials.status == CredentialStatus.REVOKED:
        raise AuthRevoked(f"connection {connection!r} has no {provider} credentials: connect it", provider=provider)
    tokens = StoreTokenStore(store, connection)
    if provider == Provider.QUICKBOOKS:
        return QboOAuth.from_settings(str(provider), settings, store=tokens, transport=transport)
    if not credentials.refresh_token:
        return StaticToken(credentials.access_token)
    return HubSpotOAuth.from_settings(str(provider), settings, store=tokens, transport=transport)

"""The OAuth "Connect" flow of the status page: connecting an account, or reconnecting a paused one.

    GET /connections/{name}/connect/{provider}  ──302──► the provider's consent screen (state: one use, 10 minutes)
    GET /oauth/callback/{provider}?code&state   ◄──302── the provider
        the code is traded for tokens, the account checked against the connection's own (QBO `realmId`, HubSpot's
        `hub_id`), then the tokens are stored encrypted and the work set aside while the connection was paused is
        due again (`shared.credentials.connect`)

Tokens of another account are refused and not stored: syncing a connection into the wrong company or portal would
be worse than not syncing. The state lives in this process's memory, so the callback must reach the process that
sent the operator away (one status process; a restart in between means clicking Connect again).
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Callable

from shared.clients import REQUESTED_SCOPES, AiohttpTransport, HubSpotOAuth, MemoryTokenStore, QboOAuth
from shared.config import Settings
from shared.credentials import connect
from shared.envelope import Provider
from shared.errors import ApiError, HsqboError
from shared.store import Credentials, Store
from shared.syncconfig import ConnectionSettings

STATE_SECONDS = 600.0
SCOPES = {
    Provider.QUICKBOOKS: "com.intuit.quickbooks.accounting",
    Provider.HUBSPOT: " ".join(REQUESTED_SCOPES),  # every HubSpot call's scopes (shared/clients/_scopes.py)
}


class ConnectError(HsqboError):
    """The connect flow could not finish; the message says why, for the operator."""


class ConnectFlow:
    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._states: dict[str, tuple[str, Provider, float]] = {}  # state -> connection, provider, expiry

    def authorize_url(self, connection: ConnectionSettings, provider: Provider, callback_url: str) -> str:
        prefix = "qbo" if provider == Provider.QUICKBOOKS else "hubspot"
        client_id = getattr(self.settings, f"{prefix}_client_id")
        if not client_id:
            raise ConnectError(f"HSQBO_{prefix.upper()}_CLIENT_ID is not set: no app to connect with")
        now = self.clock()
        self._states = {state: held for state, held in self._states.items() if held[2] > now}
        state = secrets.token_urlsafe(24)
        self._states[state] = (connection.name, provider, now + STATE_SECONDS)
        query = {"client_id": client_id, "redirect_uri": callback_url, "scope": SCOPES[provider], "state": state}
        if provider == Provider.QUICKBOOKS:
            query["response_type"] = "code"
        base = str(getattr(self.settings, f"{prefix}_authorize_url"))
        return f"{base}{'&' if '?' in base else '?'}{urllib.parse.urlencode(query)}"

    async def finish(
        self,
        provider: Provider,
        *,
        state: str,
        code: str,
        realm_id: str | None,
        callback_url: str,
        connections: dict[str, ConnectionSettings],
    ) -> ConnectionSettings:
        """Trade the code for tokens and store them for the connection the state names; returns that connection."""
        held = self._states.pop(state, None)
        if held is None or held[1] != provider or held[2] <= self.clock():
            raise ConnectError("this connect link expired or was already used: click Connect again")
        connection = connections.get(held[0])
        if connection is None:
            raise ConnectError(f"the connection {held[0]!r} is no longer configured")
        if provider == Provider.QUICKBOOKS and realm_id != connection.qbo_realm_id:
            raise ConnectError(
                f"that is QuickBooks company {realm_id}; {connection.name} syncs {connection.qbo_realm_id}"
            )
        oauth_class = QboOAuth if provider == Provider.QUICKBOOKS else HubSpotOAuth
        async with AiohttpTransport.from_settings(self.settings) as transport:
            oauth = oauth_class.from_settings(
                str(provider), self.settings, store=MemoryTokenStore(), transport=transport
            )
            try:
                tokens = await oauth.exchange_code(code, callback_url)
            except ApiError as exc:
                raise ConnectError(f"{provider} refused the authorization code: {exc}") from exc
        if provider == Provider.HUBSPOT and tokens.account_id != connection.hubspot_portal_id:
            raise ConnectError(
                f"that is HubSpot portal {tokens.account_id}; {connection.name} syncs {connection.hubspot_portal_id}"
            )
        await connect(self.store, Credentials(
            connection=connection.name, provider=provider, access_token=tokens.access_token,
            refresh_token=tokens.refresh_token, expires_at=tokens.expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
        ))  # fmt: skip
        return connection

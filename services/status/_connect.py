"""The OAuth "Connect" flow of the status page: connecting a new connection, an account, or reconnecting a paused one.

    GET /connections/{name}/connect/{provider}  ──302──► the provider's consent screen (state: signed, 10 minutes)
    GET /oauth/callback/{provider}?code&state   ◄──302── the provider
        the code is traded for tokens and the connection made from the answer (`services.connect._flow.record`:
        HubSpot's `hub_id`, QBO's `realmId`; a new name is added to the sync rules once both halves are connected),
        and the work set aside while the connection was paused is due again

A connection already in the sync rules refuses tokens of another account (not stored): syncing a connection into the
wrong company or portal would be worse than not syncing. The state is not kept anywhere: it carries the connection,
the provider, its expiry and the browser session that clicked Connect, signed with the page's key (`_guard.py`), so
the callback may reach any replica, or the process after a restart, and only the same browser can finish it. The
provider's code is single-use, so a state used twice trades nothing twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from itsdangerous import BadData, URLSafeSerializer

from services.connect._flow import (
    ConnectError,
    Recorded,
    authorize_code,
    check_name,
    consent_url,
    record,
    refuse_other_account,
)
from services.status._guard import signing_key
from shared.clients import REQUESTED_SCOPES
from shared.config import Settings
from shared.credentials import Reconnecting
from shared.domain import Provider
from shared.syncconfig import ConnectionSettings, SyncSettings

__all__ = ["SCOPES", "ConnectError", "ConnectFlow"]

STATE_SECONDS = 600.0
SCOPES = {
    Provider.QUICKBOOKS: "com.intuit.quickbooks.accounting",
    Provider.HUBSPOT: " ".join(REQUESTED_SCOPES),  # every HubSpot call's scopes (shared/clients/_scopes.py)
}


class ConnectFlow:
    def __init__(self, settings: Settings, store: Reconnecting, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._states = URLSafeSerializer(signing_key(settings), salt="hsqbo oauth state")

    def authorize_url(
        self, connection: ConnectionSettings | str, provider: Provider, callback_url: str, *, browser: str = ""
    ) -> str:
        """The consent screen for `connection` (configured, or the name of a new one), to be finished by `browser`
        (`_guard.browser_binding`)."""
        name = check_name(connection if isinstance(connection, str) else connection.name)
        state = self._states.dumps([name, str(provider), browser, self.clock() + STATE_SECONDS, secrets.token_hex(8)])
        return consent_url(self.settings, provider, scope=SCOPES[provider], redirect_uri=callback_url, state=state)

    async def finish(
        self,
        provider: Provider,
        *,
        state: str,
        code: str,
        realm_id: str | None,
        callback_url: str,
        connections: dict[str, ConnectionSettings],
        browser: str = "",
    ) -> Recorded:
        """Trade the code for tokens and record them for the connection the state names."""
        name = self._connection(state, provider, browser)
        existing = connections.get(name)
        if existing is not None and provider == Provider.QUICKBOOKS and realm_id:
            refuse_other_account(existing, provider, realm_id)  # before the code is traded: nothing to undo
        authorization = await authorize_code(
            self.settings, provider, code=code, redirect_uri=callback_url, realm_id=realm_id
        )
        sync = SyncSettings(connection=list(connections.values()))
        return await record(self.settings, self.store, sync, name, authorization)

    def _connection(self, state: str, provider: Provider, browser: str) -> str:
        """The connection `state` was made for, when it is ours, for `provider`, unexpired and from `browser`."""
        try:
            name, signed_provider, signed_browser, expires, _ = self._states.loads(state)
        except (BadData, ValueError, TypeError):  # not ours, altered, or not the shape we sign
            raise ConnectError("this connect link is not valid: click Connect again") from None
        if signed_provider != provider or not isinstance(expires, float | int) or expires <= self.clock():
            raise ConnectError("this connect link expired: click Connect again")
        if signed_browser != browser:
            raise ConnectError("this connect link was started in another browser: click Connect there, or again here")
        return str(name)

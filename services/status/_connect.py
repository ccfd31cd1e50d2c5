"""The OAuth "Connect" flow of the status page: connecting a new connection, an account, or reconnecting a paused one.

    GET /connections/{name}/connect/{provider}  ──302──► the provider's consent screen (state: one use, 10 minutes)
    GET /oauth/callback/{provider}?code&state   ◄──302── the provider
        the code is traded for tokens and the connection made from the answer (`services.connect._flow.record`:
        HubSpot's `hub_id`, QBO's `realmId`; a new name is added to the sync rules once both halves are connected),
        and the work set aside while the connection was paused is due again

A connection already in the sync rules refuses tokens of another account (not stored): syncing a connection into the
wrong company or portal would be worse than not syncing. The state lives in this process's memory, so the callback
must reach the process that sent the operator away (one status process; a restart in between means clicking Connect
again).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from services.connect._flow import (
    ConnectError,
    Recorded,
    authorize_code,
    check_name,
    consent_url,
    record,
    refuse_other_account,
)
from shared.clients import REQUESTED_SCOPES
from shared.config import Settings
from shared.domain import Provider
from shared.store import Store
from shared.syncconfig import ConnectionSettings, SyncSettings

__all__ = ["SCOPES", "ConnectError", "ConnectFlow"]

STATE_SECONDS = 600.0
SCOPES = {
    Provider.QUICKBOOKS: "com.intuit.quickbooks.accounting",
    Provider.HUBSPOT: " ".join(REQUESTED_SCOPES),  # every HubSpot call's scopes (shared/clients/_scopes.py)
}


class ConnectFlow:
    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._states: dict[str, tuple[str, Provider, float]] = {}  # state -> connection, provider, expiry

    def authorize_url(self, connection: ConnectionSettings | str, provider: Provider, callback_url: str) -> str:
        """The consent screen for `connection` (configured, or the name of a new one)."""
        name = check_name(connection if isinstance(connection, str) else connection.name)
        now = self.clock()
        self._states = {state: held for state, held in self._states.items() if held[2] > now}
        state = secrets.token_urlsafe(24)
        url = consent_url(self.settings, provider, scope=SCOPES[provider], redirect_uri=callback_url, state=state)
        self._states[state] = (name, provider, now + STATE_SECONDS)
        return url

    async def finish(
        self,
        provider: Provider,
        *,
        state: str,
        code: str,
        realm_id: str | None,
        callback_url: str,
        connections: dict[str, ConnectionSettings],
    ) -> Recorded:
        """Trade the code for tokens and record them for the connection the state names."""
        held = self._states.pop(state, None)
        if held is None or held[1] != provider or held[2] <= self.clock():
            raise ConnectError("this connect link expired or was already used: click Connect again")
        existing = connections.get(held[0])
        if existing is not None and provider == Provider.QUICKBOOKS and realm_id:
            refuse_other_account(existing, provider, realm_id)  # before the code is traded: nothing to undo
        authorization = await authorize_code(
            self.settings, provider, code=code, redirect_uri=callback_url, realm_id=realm_id
        )
        sync = SyncSettings(connection=list(connections.values()))
        return await record(self.settings, self.store, sync, held[0], authorization)

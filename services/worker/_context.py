"""What a sync rule works with: one connection's settings, its two API clients, the store and the clock."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from shared.clients import HubSpotClient, QboClient, Transport
from shared.config import Settings
from shared.credentials import token_source
from shared.envelope import Provider
from shared.store import Store
from shared.syncconfig import ConnectionSettings

_REQUEST_IDS = uuid.UUID("5d1c3c1e-8f6e-4a59-9f0a-2b7c8f3e9a11")


@dataclasses.dataclass(frozen=True, slots=True)
class SyncContext:
    connection: ConnectionSettings
    hubspot: HubSpotClient
    qbo: QboClient
    store: Store
    app_id: str | None  # our HubSpot app id: events with changeSource INTEGRATION and this sourceId are our echoes
    clock: Callable[[], float] = time.time

    @property
    def name(self) -> str:
        return self.connection.name

    def request_id(self, *parts: str) -> str:
        """A QBO `requestid` that is the same for every retry of the same logical write: a crash between the write
        and recording it replays the original answer instead of writing twice."""
        return str(uuid.uuid5(_REQUEST_IDS, "/".join((self.name, *parts))))


class ContextFactory:
    """Builds (and keeps) one SyncContext per connection; tokens come from the store."""

    def __init__(self, settings: Settings, store: Store, transport: Transport) -> None:
        self._settings = settings
        self._store = store
        self._transport = transport
        self._contexts: dict[str, SyncContext] = {}

    async def get(self, connection: ConnectionSettings) -> SyncContext:
        context = self._contexts.get(connection.name)
        if context is None or context.connection != connection:
            hubspot_auth = await token_source(
                self._settings, self._store, connection=connection.name, provider=Provider.HUBSPOT,
                transport=self._transport,
            )  # fmt: skip
            qbo_auth = await token_source(
                self._settings, self._store, connection=connection.name, provider=Provider.QUICKBOOKS,
                transport=self._transport,
            )  # fmt: skip
            context = SyncContext(
                connection=connection,
                hubspot=HubSpotClient(str(self._settings.hubspot_base_url), hubspot_auth, self._transport),
                qbo=QboClient(str(self._settings.qbo_base_url), connection.qbo_realm_id, qbo_auth, self._transport),
                store=self._store,
                app_id=self._settings.hubspot_app_id,
            )
            self._contexts[connection.name] = context
        return context

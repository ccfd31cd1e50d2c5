"""What a syncing process holds for its lifetime, opened in one place: the store, the API transport, the connections'
contexts on them and the process's one broker connection (`hsqbo worker`, `hsqbo poller`, `hsqbo run` and the
end-to-end tests all open it here)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from shared.broker import Broker
from shared.clients import AiohttpTransport
from shared.config import Settings
from shared.connections import ContextFactory
from shared.store import Store, open_store
from shared.syncconfig import SyncSettings


@dataclasses.dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    contexts: ContextFactory
    broker: Broker | None  # None when the process publishes nothing (a dry run)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, sync: SyncSettings | None = None, *, publishing: bool = True, broker: Broker | None = None
) -> AsyncIterator[Runtime]:
    """Open the store and the transport, and start the broker connection in the background (it declares the bulk
    lanes of `sync`'s connections); all closed on exit. `broker`: the process's, already started (and closed by
    its owner), instead of a new one."""
    async with (
        open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
        AiohttpTransport.from_settings(settings) as transport,
    ):
        contexts = ContextFactory(settings, store, transport)
        try:
            if not publishing:
                yield Runtime(settings, store, contexts, None)
                return
            names = [connection.name for connection in sync.connection] if sync is not None else []
            if broker is not None:
                await broker.add_connections(names)
                yield Runtime(settings, store, contexts, broker)
                return
            process_broker = Broker.from_settings(settings, names)
            await process_broker.start()
            try:
                yield Runtime(settings, store, contexts, process_broker)
            finally:
                await process_broker.close()
        finally:
            await contexts.usage.flush()  # the last calls' counts (a backfill's reads) reach the store too

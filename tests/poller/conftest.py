"""A connection's context on scripted API answers (MockTransport) and a real store in a temporary file, and a poll that
keeps what it would have queued."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from services.poller._source import Poll
from shared.clients import HubSpotClient, MockTransport, QboClient, Request, Response, StaticToken
from shared.connections import SyncContext
from shared.envelope import ChangeEnvelope
from shared.store import Store, open_store
from shared.syncconfig import ConnectionSettings

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
OVERLAP_SECONDS = 120.0
RECONCILE_SECONDS = 86400.0
CONNECTION = ConnectionSettings(
    name="acme",
    hubspot_portal_id="62515",
    qbo_realm_id="9130",
    setup_date=dt.date(2026, 11, 1),
    contacts={"hubspot_to_qbo": {}},
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


class Queued(list[ChangeEnvelope]):
    async def publish(self, envelopes: Sequence[ChangeEnvelope]) -> None:
        self.extend(envelopes)


def poll_on(
    store: Store, handler: Callable[[Request], Response], connection: ConnectionSettings = CONNECTION
) -> tuple[Poll, Queued, MockTransport]:
    """A poll at NOW of `connection` whose API calls `handler` answers; what it queues lands in the returned list."""
    transport = MockTransport(handler)
    ctx = SyncContext(
        connection=connection,
        hubspot=HubSpotClient("https://api.hubapi.com", StaticToken("pat"), transport),
        qbo=QboClient("https://quickbooks.api.intuit.com", CONNECTION.qbo_realm_id, StaticToken("jwt"), transport),
        store=store,
        app_id=None,
    )
    queued = Queued()
    return Poll(ctx, queued.publish, NOW.timestamp(), OVERLAP_SECONDS, RECONCILE_SECONDS), queued, transport

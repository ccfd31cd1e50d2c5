"""The poll loop: one poller at a time per connection (a store lock), a failing source does not stop the others."""

from __future__ import annotations

import dataclasses

from prometheus_client import REGISTRY

from services.poller import Poller
from services.poller._qbo import QboChanges
from services.poller._source import Poll
from shared.budget import CallKind, UsageKey, month_of
from shared.clients import MockTransport, UsageRecorder
from shared.config import Settings
from shared.connections import ContextFactory, SyncContext
from shared.domain import Provider
from shared.errors import ServerError
from shared.store import Store
from shared.syncconfig import ConnectionSettings, SyncSettings
from tests.clients.answers import json_answer
from tests.poller.conftest import CONNECTION, NOW, Queued, poll_on


class Contexts(ContextFactory):
    """The connection's context on a transport nobody should call (the sources here are fakes)."""

    def __init__(self, store: Store) -> None:
        super().__init__(Settings(), store, MockTransport(lambda request: json_answer(500, {})))
        self.ctx = poll_on(store, lambda request: json_answer(500, {}))[0].ctx

    async def get(self, connection: ConnectionSettings) -> SyncContext:
        return self.ctx


class CountingSource:
    def __init__(self, provider: Provider, *, fails: bool = False) -> None:
        self.provider = provider
        self.fails = fails
        self.polls = 0

    async def poll(self, poll: Poll) -> float:
        self.polls += 1
        if self.fails:
            raise ServerError("unavailable", provider=self.provider, status=503)
        return poll.now


def poller(store: Store, *sources: CountingSource) -> Poller:
    return Poller(Settings(), SyncSettings(connection=[CONNECTION]), store, Contexts(store), Queued().publish,
                  sources=sources)  # fmt: skip


async def test_only_one_poller_polls_a_connection_at_a_time(store: Store) -> None:
    source = CountingSource(Provider.QUICKBOOKS)
    first, second = poller(store, source), poller(store, source)
    await first.poll_once()
    await second.poll_once()
    assert source.polls == 1
    await first.poll_once()  # the holder keeps its lease from poll to poll
    assert source.polls == 2


async def test_a_failing_source_does_not_stop_the_other(store: Store) -> None:
    failing, working = CountingSource(Provider.QUICKBOOKS, fails=True), CountingSource(Provider.HUBSPOT)
    await poller(store, failing, working).poll_once()
    assert (failing.polls, working.polls) == (1, 1)


class CountingCdc(QboChanges):
    """QBO's source, polls counted instead of made."""

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, poll: Poll) -> float:
        self.polls += 1
        return poll.now


async def test_qbo_is_polled_as_often_as_its_read_budget_allows_hubspot_every_poll_seconds(store: Store) -> None:
    now = [NOW.timestamp()]
    contexts = Contexts(store)
    reads = UsageKey(Provider.QUICKBOOKS, CONNECTION.qbo_realm_id, CallKind.READ, month_of(now[0]))
    meter = UsageRecorder(store, clock=lambda: now[0]).meter("acme", Provider.QUICKBOOKS, CONNECTION.qbo_realm_id)
    contexts.ctx = dataclasses.replace(contexts.ctx, qbo_usage=meter)
    qbo, hubspot = CountingCdc(), CountingSource(Provider.HUBSPOT)
    settings = Settings(poll_seconds=60.0, qbo_cdc_min_seconds=5.0, qbo_cdc_max_seconds=900.0)
    loop = Poller(settings, SyncSettings(connection=[CONNECTION]), store, contexts, Queued().publish,
                  sources=(qbo, hubspot), clock=lambda: now[0])  # fmt: skip

    await loop.poll_once(only_due=True)
    spare = REGISTRY.get_sample_value("hsqbo_poller_qbo_interval_seconds", {"connection": "acme"})
    assert spare is not None
    assert 5.0 <= spare < 60.0  # reads to spare: seconds apart, more often than HubSpot
    now[0] += spare
    await loop.poll_once(only_due=True)
    assert (qbo.polls, hubspot.polls) == (2, 1)

    await store.add_api_calls({reads: 460_000})  # other processes' reads: past 90 % of the 500,000 budget
    restarted = UsageRecorder(store, clock=lambda: now[0])  # reads the store's total, as a poller starting now would
    contexts.ctx = dataclasses.replace(
        contexts.ctx, qbo_usage=restarted.meter("acme", Provider.QUICKBOOKS, CONNECTION.qbo_realm_id)
    )
    now[0] += 60.0
    await loop.poll_once(only_due=True)
    assert REGISTRY.get_sample_value("hsqbo_poller_qbo_interval_seconds", {"connection": "acme"}) == 900.0
    now[0] += 600.0
    await loop.poll_once(only_due=True)
    assert qbo.polls == 3  # not again before 900 s


async def test_each_round_of_polls_beats_with_the_connections_it_polled(store: Store) -> None:
    first, second = poller(store, CountingSource(Provider.QUICKBOOKS)), poller(store, CountingSource(Provider.HUBSPOT))
    await first.poll_once()
    await second.poll_once()  # alive, though another poller holds the connection
    beats = {beat.process: beat for beat in await store.heartbeats()}
    assert beats[first.owner].role == beats[second.owner].role == "poller"
    assert set(beats[first.owner].detail["polls"]) == {CONNECTION.name}
    assert "polls" not in beats[second.owner].detail

"""The poll loop: one poller at a time per connection (a store lock), a failing source does not stop the others."""

from __future__ import annotations

from services.poller import Poller
from services.poller._source import Poll
from shared.clients import MockTransport
from shared.config import Settings
from shared.connections import ContextFactory, SyncContext
from shared.domain import Provider
from shared.errors import ServerError
from shared.store import Store
from shared.syncconfig import ConnectionSettings, SyncSettings
from tests.clients.answers import json_answer
from tests.poller.conftest import CONNECTION, Queued, poll_on


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


async def test_each_round_of_polls_beats_with_the_connections_it_polled(store: Store) -> None:
    first, second = poller(store, CountingSource(Provider.QUICKBOOKS)), poller(store, CountingSource(Provider.HUBSPOT))
    await first.poll_once()
    await second.poll_once()  # alive, though another poller holds the connection
    beats = {beat.process: beat for beat in await store.heartbeats()}
    assert beats[first.owner].role == beats[second.owner].role == "poller"
    assert set(beats[first.owner].detail["polls"]) == {CONNECTION.name}
    assert "polls" not in beats[second.owner].detail

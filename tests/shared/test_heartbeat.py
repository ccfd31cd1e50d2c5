"""A process's heartbeat: what it noted since the last beat (webhooks, polls, records synced with their lag) is
written in one go with its sign of life; a failed write keeps the records for the next beat; a process silent for
three beats is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.domain import Kind
from shared.heartbeat import Pulse, alive
from shared.store import Heartbeat, Store, SyncedRecord, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def test_a_beat_writes_what_the_process_noted(store: Store) -> None:
    clock = Clock()
    pulse = Pulse(store, "worker", "host:1", every=5.0, clock=clock)
    pulse.saw_webhook("acme", Kind.CONTACT)
    pulse.synced("acme", Kind.CONTACT, 1.25)
    clock.now = 1002.0
    pulse.synced("acme", Kind.INVOICE, None)
    await pulse.beat()

    [beat] = await store.heartbeats()
    assert (beat.process, beat.role, beat.started_at, beat.beat_at) == ("host:1", "worker", 1000.0, 1002.0)
    assert beat.detail == {"every": 5.0, "webhooks": {"acme/contact": 1000.0}}
    assert await store.synced("acme", since=0.0) == [
        SyncedRecord("acme", Kind.CONTACT, 1000.0, 1.25), SyncedRecord("acme", Kind.INVOICE, 1002.0, None)
    ]  # fmt: skip
    await pulse.beat()
    assert len(await store.synced("acme", since=0.0)) == 2  # written once


async def test_records_a_failed_beat_could_not_write_wait_for_the_next(store: Store, tmp_path: Path) -> None:
    pulse = Pulse(store, "worker", "host:1", clock=Clock())
    pulse.synced("acme", Kind.CONTACT, 1.0)
    await store.close()
    with pytest.raises(Exception):  # noqa: B017, PT011  # whatever a closed store raises
        await pulse.beat()
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as reopened:
        pulse.store = reopened
        await pulse.beat()
        assert len(await reopened.synced("acme", since=0.0)) == 1


def test_a_process_is_down_after_three_missed_beats() -> None:
    beat = Heartbeat(process="p", role="poller", started_at=0.0, beat_at=100.0, detail={"every": 60.0})
    assert alive(beat, 280.0)
    assert not alive(beat, 281.0)

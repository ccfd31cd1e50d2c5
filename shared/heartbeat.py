"""What a worker or poller tells the status page about itself, through the store: a heartbeat every few seconds (the
process is alive), what it saw last (a worker: the last webhook per connection and object; a poller: the last poll
per connection), and the records a worker synced with their end-to-end lag (the page's charts). Kept in memory
between beats and written in one go, so a busy worker adds one store write per beat, not one per record.

A process that stops beating for `STALE_AFTER` of its beat intervals shows as down on the page."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from shared.domain import Kind
from shared.logging import get_logger
from shared.store import Heartbeat, Heartbeats, SyncedRecord

log = get_logger("hsqbo.heartbeat")

BEAT_SECONDS = 5.0
STALE_AFTER = 3  # beats missed before the page says the process is down
KEEP_SYNCED_SECONDS = 2 * 86400.0  # the charts show the last day
KEEP_HEARTBEATS_SECONDS = 86400.0  # a process gone for a day is forgotten
PRUNE_SECONDS = 3600.0


class Pulse:
    """One process's heartbeat. `saw_webhook`, `polled` and `synced` note; `beat` writes."""

    def __init__(
        self, store: Heartbeats, role: str, process: str, *, every: float = BEAT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.store = store
        self.role = role
        self.process = process
        self.every = every
        self.clock = clock
        self.started_at = clock()
        self.webhooks: dict[str, float] = {}  # "<connection>/<kind>" -> when its last webhook's change came
        self.polls: dict[str, float] = {}  # connection -> when its last poll ended
        self._synced: list[SyncedRecord] = []
        self._pruned_at = 0.0

    def saw_webhook(self, connection: str, kind: Kind) -> None:
        self.webhooks[f"{connection}/{kind}"] = self.clock()

    def polled(self, connection: str) -> None:
        self.polls[connection] = self.clock()

    def synced(self, connection: str, kind: Kind, lag_seconds: float | None) -> None:
        self._synced.append(SyncedRecord(connection, kind, self.clock(), lag_seconds))

    async def beat(self) -> None:
        synced, self._synced = self._synced, []
        try:
            await self.store.add_synced(synced)
        except Exception:
            self._synced = synced + self._synced  # written with the next beat
            raise
        detail: dict[str, Any] = {"every": self.every}
        if self.webhooks:
            detail["webhooks"] = dict(self.webhooks)
        if self.polls:
            detail["polls"] = dict(self.polls)
        now = self.clock()
        await self.store.beat(Heartbeat(process=self.process, role=self.role, started_at=self.started_at, beat_at=now,
                                        detail=detail))  # fmt: skip
        if now - self._pruned_at >= PRUNE_SECONDS:
            self._pruned_at = now
            await self.store.prune_synced(now - KEEP_SYNCED_SECONDS)
            await self.store.prune_heartbeats(now - KEEP_HEARTBEATS_SECONDS)

    async def forever(self) -> None:
        """Beat every `every` seconds until cancelled; a failed beat is logged and tried again at the next."""
        while True:
            try:
                await self.beat()
            except Exception as exc:
                log.warning("heartbeat_failed", role=self.role, error=str(exc)[:200])
            await asyncio.sleep(self.every)

    async def last_beat(self) -> None:
        """A final beat when the process stops (what it synced since the last one)."""
        with contextlib.suppress(Exception):
            await self.beat()


def alive(heartbeat: Heartbeat, now: float) -> bool:
    """Whether the process beat recently enough (see STALE_AFTER)."""
    every = float(heartbeat.detail.get("every", BEAT_SECONDS))
    return now - heartbeat.beat_at <= STALE_AFTER * every

"""The poller: the fallback that finds changes whose webhook never came, and queues them the way the receiver does.

    per connection (one poller process at a time per connection: a store lock):
        QBO      one CDC call for every synced entity since its cursor  (_qbo.py)
                 as often as the company's monthly read budget allows: seconds apart while reads are to spare,
                 up to HSQBO_QBO_CDC_MAX_SECONDS near the budget (shared/budget.py)
        HubSpot  search per synced object type, modified since cursor   (_hubspot.py)
                 every poll_seconds
                 once a day, linked pairs read back and compared        (_reconcile.py)
            └─► skip records whose link already shows that version ─► exchange hsqbo.changes ─► worker

From there a polled change is a webhook event like any other: the worker debounces it per record, re-reads the
record and syncs it, so a change found twice, or found and also delivered by its webhook, is synced once. A cursor
moves only after everything before it is confirmed queued: a failed poll (API or broker down) starts again from
the same place. Each poll looks `poll_overlap_seconds` behind the last one (HubSpot's search index lags its writes).

A connection's first poll starts watching from then (less the overlap): records that existed before are the initial
sync's business (`--backfill`, `_backfill.py`), not a fallback's, so starting a poller never floods the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from services.poller._hubspot import HubSpotChanges
from services.poller._qbo import QboChanges
from services.poller._reconcile import Reconciler
from services.poller._source import Poll, Publish, Source
from shared.budget import CallKind, cdc_interval
from shared.config import Settings
from shared.connections import ConnectionPaused, ContextFactory, SyncContext
from shared.errors import ApiError, AuthRevoked, BusError, MissingScopes
from shared.heartbeat import Pulse
from shared.logging import get_logger
from shared.metrics import POLL_QBO_INTERVAL, POLL_WATERMARK, POLLS
from shared.store import Heartbeats, Locks
from shared.syncconfig import ConnectionSettings, SyncSettings

log = get_logger("hsqbo.poller")


class PollerStore(Locks, Heartbeats, Protocol):
    """What the poller needs of the store itself (its passes use their context's): the per-connection lock, and its
    heartbeat."""


SOURCES: tuple[Source, ...] = (QboChanges(), HubSpotChanges(), Reconciler())


class Poller:
    def __init__(
        self,
        settings: Settings,
        sync: SyncSettings,
        store: PollerStore,
        contexts: ContextFactory,
        publish: Publish,
        *,
        sources: Sequence[Source] = SOURCES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sync = sync
        self.store = store
        self.contexts = contexts
        self.publish = publish
        self.sources = sources
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:poller:{id(self):x}"
        self._due: dict[tuple[str, int], float] = {}  # (connection, source index) -> when it polls next
        # For the status page (shared/heartbeat.py): one beat per round of polls.
        self.pulse = Pulse(store, "poller", self.owner, every=settings.poll_seconds, clock=clock)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every connection's sources as they fall due, until `stop` is set."""
        log.info("poller_started", owner=self.owner, every_seconds=self.settings.poll_seconds)
        try:
            while not stop.is_set():
                await self.poll_once(only_due=True)
                wait = min([self.settings.poll_seconds, *(due - self.clock() for due in self._due.values())])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(wait, 0.0))
        finally:
            for connection in self.sync.connection:
                await self.store.release_lock(_lock(connection), self.owner)
            log.info("poller_stopped", owner=self.owner)

    async def poll_once(self, *, only_due: bool = False) -> None:
        """One poll of every connection this process holds the lock of (`only_due`: of the sources due by now:
        HubSpot's every `poll_seconds`, QBO's CDC as its read budget allows)."""
        for connection in self.sync.connection:
            # The lease outlives the pause between polls, so the holder keeps it; others take over once it stops.
            lease = 3 * self.settings.poll_seconds
            held = await self.store.acquire_lock(_lock(connection), self.owner, self.clock(), lease)
            if held and await self._poll(connection, only_due=only_due):
                self.pulse.polled(connection.name)
        try:
            await self.pulse.beat()
        except Exception as exc:  # the page shows the poller down; polling goes on
            log.warning("heartbeat_failed", error=str(exc)[:200])

    async def _poll(self, connection: ConnectionSettings, *, only_due: bool) -> bool:
        """Poll the connection's sources (those due, with `only_due`); whether any was due."""
        due = [
            (index, source) for index, source in enumerate(self.sources)
            if not only_due or self.clock() >= self._due.get((connection.name, index), float("-inf"))
        ]  # fmt: skip
        for index, source in due:
            try:
                ctx = await self.contexts.get(connection)
            except ConnectionPaused as paused:
                POLLS.labels(source.provider, "paused").inc()
                log.info("poll_skipped", connection=connection.name, reason=str(paused))
                continue
            self._due[(connection.name, index)] = self.clock() + await self._interval(ctx, source)
            poll = Poll(
                ctx,
                self.publish,
                self.clock(),
                self.settings.poll_overlap_seconds,
                self.settings.reconcile_seconds,
                missed_webhook_grace_seconds=self._grace,
            )
            try:
                watermark = await source.poll(poll)
            except (
                AuthRevoked,
                MissingScopes,
            ) as exc:  # paused for every process until reconnected, as the worker does
                await self.contexts.pause(connection.name, exc)
                POLLS.labels(source.provider, "paused").inc()
                continue
            except (ApiError, BusError) as exc:  # the cursors stayed: the next poll starts from the same place
                POLLS.labels(source.provider, "failed").inc()
                log.warning("poll_failed", connection=connection.name, provider=source.provider, error=str(exc)[:300])
                continue
            POLLS.labels(source.provider, "ok").inc()
            if watermark is not None:  # changes younger than the grace wait for their webhook: not queued yet
                POLL_WATERMARK.labels(connection.name, source.provider).set(watermark - self._grace)
        return bool(due)

    async def _interval(self, ctx: SyncContext, source: Source) -> float:
        """Seconds until `source` polls this connection again: QBO's CDC as often as the company's monthly read
        budget allows (shared/budget.py), the others every poll_seconds."""
        if not isinstance(source, QboChanges) or ctx.qbo_usage is None:
            return self.settings.poll_seconds
        seconds = cdc_interval(
            used=await ctx.qbo_usage.month_calls(CallKind.READ),
            budget=ctx.connection.qbo_monthly_read_budget,
            now=self.clock(),
            reads_per_poll=max(QboChanges.reads_per_poll(ctx.connection), 1),
            min_seconds=self.settings.qbo_cdc_min_seconds,
            max_seconds=self.settings.qbo_cdc_max_seconds,
        )
        POLL_QBO_INTERVAL.labels(ctx.name).set(seconds)
        return seconds

    @property
    def _grace(self) -> float:
        # Under the overlap, so a change left to the next poll is inside that poll's window.
        return min(self.settings.missed_webhook_grace_seconds, self.settings.poll_overlap_seconds / 2)


def _lock(connection: ConnectionSettings) -> str:
    return f"poller:{connection.name}"

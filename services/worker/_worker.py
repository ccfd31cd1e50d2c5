"""The worker: the broker adapter, the scheduler and the applier, put together (see the package docstring for the
way an event travels through them).

Nothing here relies on this process's memory: every delivery is acknowledged only after its outcome is in the store
(or its retry or dead letter is confirmed by the broker), so a crash anywhere re-delivers it; the store's lease and
generation make a redelivery harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from services.worker._applier import Applier
from services.worker._consumer import Consumer
from services.worker._engine import Engine
from services.worker._guard import DeadLetterGuard
from services.worker._retention import Retention
from services.worker._scheduler import Scheduler, SchedulerStore, Sleep
from shared.broker import Broker
from shared.config import Settings
from shared.domain import Kind
from shared.heartbeat import Pulse
from shared.logging import get_logger
from shared.metrics import LINKS, WORKER_HALTED
from shared.store import ActivityLog, Heartbeats, LinkStatus
from shared.syncconfig import SyncSettings

log = get_logger("hsqbo.worker")

LINK_COUNT_SECONDS = 60.0  # between two counts of the links by status (a scan of the links: not every sweep)


class WorkerStore(SchedulerStore, ActivityLog, Heartbeats, Protocol):
    """What the worker's parts need of the store besides the engine's: the scheduler's and the applier's pending
    work, the links it counts, the activity it prunes and its heartbeat."""


def worker_broker(settings: Settings, sync: SyncSettings) -> Broker:
    """A broker connection with the worker's queues declared: a delay queue per retry delay, a bulk lane per
    connection."""
    return Broker.from_settings(settings, [connection.name for connection in sync.connection])


class Worker:
    """`broker` is the process's Broker (started by whoever made it); without one the worker makes its own."""

    def __init__(
        self,
        settings: Settings,
        sync: SyncSettings,
        store: WorkerStore,
        engine: Engine,
        *,
        broker: Broker | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.sync = sync
        self.store = store
        self.engine = engine
        self.clock = clock
        self._owns_broker = broker is None
        self.broker = broker or worker_broker(settings, sync)
        self.applier = Applier(store, engine, lease_seconds=settings.lease_seconds, clock=clock)
        self.pulse = Pulse(store, "worker", self.applier.process, clock=clock)  # the status page's: shared/heartbeat.py
        self.applier.pulse = self.pulse
        self.scheduler = Scheduler(settings, sync, store, self.applier, self.broker, clock=clock, sleep=sleep,
                                   pulse=self.pulse)  # fmt: skip
        self._retention = Retention(store, settings, clock)
        self.consumer = Consumer(self.broker, self.scheduler, prefetch=settings.worker_prefetch,
                                 bulk_prefetch=settings.worker_bulk_prefetch,
                                 connections=[connection.name for connection in sync.connection])  # fmt: skip
        self.halted = asyncio.Event()  # set once the guard has stopped consumption
        self._tasks: list[asyncio.Task[None]] = []
        self._beating: asyncio.Task[None] | None = None
        self._links_counted_at = 0.0

    @property
    def guard(self) -> DeadLetterGuard:
        return self.scheduler.guard

    @property
    def owner(self) -> str:
        return self.applier.process

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up (read by /readyz, from the metrics server's thread)."""
        return self.broker.ready

    async def start(self, *, broker_wait: float | None = None) -> None:
        """Connect (waiting for the broker, retrying with backoff, `broker_wait` seconds at most) and consume."""
        if self._owns_broker:
            await self.broker.start()
        if not await self.broker.wait_ready(self.settings.shutdown_seconds if broker_wait is None else broker_wait):
            self._tasks.append(asyncio.create_task(self._start_when_connected()))
            return
        await self._consume()

    async def _start_when_connected(self) -> None:
        while not await self.broker.wait_ready(3600.0):
            pass
        await self._consume()

    async def _consume(self) -> None:
        await self.consumer.start()
        self._tasks += [asyncio.create_task(self._sweep_forever()), asyncio.create_task(self._halt_when_tripped())]
        self._beating = asyncio.create_task(self.pulse.forever())
        WORKER_HALTED.set(0)
        log.info("worker_started", owner=self.owner)

    async def stop(self) -> None:
        """Stop consuming, give in-flight deliveries `shutdown_seconds` to finish, cancel the rest (unacknowledged:
        the broker redelivers them, and their record's lease expires), then close. Within `shutdown_seconds` (and a
        few seconds for the broker's goodbye) even when the broker is down."""
        await self._stop_consuming()
        await self.consumer.drain(self.settings.shutdown_seconds)
        if self._owns_broker:
            await self.broker.close()
        beating, self._beating = self._beating, None
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(Exception):  # the store down: the status page sees the heartbeat age
                await self.pulse.last_beat()
        log.info("worker_stopped", owner=self.owner)

    async def _stop_consuming(self) -> None:
        """Cancel the consumers and the sweep; queued messages stay where they are."""
        tasks, self._tasks = self._tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.consumer.stop_consuming()

    async def _halt_when_tripped(self) -> None:
        await self.scheduler.tripped.wait()
        WORKER_HALTED.set(1)
        log.error(
            "worker_halted", reason="dead-letter rate over the limit", dead_lettered=self.guard.dead_lettered,
            sample=self.guard.sample, max_ratio=self.settings.dlq_max_ratio,
        )  # fmt: skip
        await self._stop_consuming()
        self.halted.set()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_seconds)
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("sweep_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def sweep(self) -> int:
        """Schedule pending work that should have run by now (see Scheduler.sweep); count the links now and then;
        prune old activity (`_retention.py`)."""
        swept = await self.scheduler.sweep()
        if self.clock() - self._links_counted_at >= LINK_COUNT_SECONDS:
            self._links_counted_at = self.clock()
            await self.count_links()
        await self._retention.prune_if_due()
        return swept

    async def count_links(self) -> None:
        """The links-by-status gauge (failing, needs review...) of every connection, from the store."""
        for connection in self.sync.connection:
            counts = await self.store.count_links_by_status(connection.name)
            for (kind, status), count in counts.items():
                LINKS.labels(connection.name, kind, status).set(count)
            for kind in Kind:  # a status no record has any more reads 0, not its last count
                for status in LinkStatus:
                    if (kind, status) not in counts:
                        LINKS.labels(connection.name, kind, status).set(0)

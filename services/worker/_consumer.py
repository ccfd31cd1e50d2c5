"""The broker adapter: the worker's queues, consumed; each delivery decoded and handed to the scheduler.

    hsqbo.changes                  (live lane)  ──► Scheduler.changed
    hsqbo.changes.bulk             (bulk lane)  ──► Scheduler.changed
    hsqbo.apply                    (live lane)  ──► Scheduler.apply
    hsqbo.apply.bulk.<connection>  (bulk lane, one consumer per connection: fair between backfills) ──► Scheduler.apply

Each queue has its own channel and prefetch (`HSQBO_WORKER_PREFETCH`, the bulk lane's `HSQBO_WORKER_BULK_PREFETCH`),
so a backlog in one lane never takes another lane's turns. A delivery is acknowledged once the scheduler has carried
it through (its outcome in the store, or its retry or dead letter confirmed by the broker). What cannot be read, or
was redelivered nearly to the queue's delivery limit (a worker crashing on it each time), is dead-lettered by us with
its history, never by the broker without it.
`stop()` cancels the consumers, gives in-flight deliveries `shutdown_seconds` to finish and cancels the rest
unacknowledged (the broker redelivers them); it never waits on a broker that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from services.worker._scheduler import Scheduler, key_of
from shared import tracing
from shared.broker import (
    APPLY_QUEUE,
    BULK_CHANGES_QUEUE,
    CHANGES_QUEUE,
    DELIVERY_LIMIT,
    ApplyCommand,
    Broker,
    Delivery,
    Lane,
    bulk_apply_queue,
)
from shared.envelope import decode_changes
from shared.logging import get_logger
from shared.metrics import CHANGES_CONSUMED, SHUTDOWN_REQUEUED

log = get_logger("hsqbo.worker")

UNREADABLE = (ValueError, TypeError, KeyError)


class Consumer:
    def __init__(
        self, broker: Broker, scheduler: Scheduler, *, prefetch: int, bulk_prefetch: int, connections: list[str]
    ) -> None:
        self.broker = broker
        self.scheduler = scheduler
        self.prefetch = prefetch
        self.bulk_prefetch = bulk_prefetch
        self.connections = connections
        self._in_flight: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        await self.broker.consume(CHANGES_QUEUE, self._tracked(self._change(Lane.LIVE, CHANGES_QUEUE)),
                                  prefetch=self.prefetch)  # fmt: skip
        await self.broker.consume(APPLY_QUEUE, self._tracked(self._apply(APPLY_QUEUE)), prefetch=self.prefetch)
        await self.broker.consume(BULK_CHANGES_QUEUE, self._tracked(self._change(Lane.BULK, BULK_CHANGES_QUEUE)),
                                  prefetch=self.bulk_prefetch)  # fmt: skip
        for connection in self.connections:
            queue = bulk_apply_queue(connection)
            await self.broker.consume(queue, self._tracked(self._apply(queue)), prefetch=self.bulk_prefetch)

    async def stop_consuming(self) -> None:
        await self.broker.cancel_consumers()

    async def drain(self, seconds: float) -> int:
        """Let in-flight deliveries finish for `seconds`, cancel the rest; how many were cancelled."""
        if not self._in_flight:
            return 0
        _, unfinished = await asyncio.wait(set(self._in_flight), timeout=seconds)
        for task in unfinished:
            task.cancel()
        if unfinished:
            SHUTDOWN_REQUEUED.inc(len(unfinished))
            log.warning("shutdown_deadline_passed", requeued=len(unfinished))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.wait(unfinished)
        return len(unfinished)

    def _tracked(self, handler: Callable[[Delivery], Awaitable[None]]) -> Callable[[Delivery], Awaitable[None]]:
        """The handler, its task remembered while it runs, so `drain()` can wait for it."""

        async def run(delivery: Delivery) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                await handler(delivery)
            finally:
                if task is not None:
                    self._in_flight.discard(task)

        return run

    async def _dead_letter(self, delivery: Delivery, queue: str, *, category: str, message: str) -> None:
        """Give up on the delivery as it came (its body, its deliveries as attempts), with why."""
        await self.scheduler.dead_letter_delivery(
            delivery.body, category=category, message=message, attempts=delivery.deliveries, first_failed_at=None,
            source_queue=queue, message_id=delivery.message_id,
        )  # fmt: skip

    async def _give_up(self, delivery: Delivery, queue: str) -> bool:
        """Dead-letter a delivery redelivered nearly to the queue's limit (True then), before the broker would."""
        if delivery.deliveries < DELIVERY_LIMIT:
            return False
        await self._dead_letter(delivery, queue, category="redelivered", message=f"delivered {delivery.deliveries} "
                                "times: the worker stopped or crashed while handling it each time")  # fmt: skip
        return True

    def _change(self, lane: Lane, queue: str) -> Callable[[Delivery], Awaitable[None]]:
        async def on_change(delivery: Delivery) -> None:
            try:
                envelopes = decode_changes(delivery.body)  # a delivery's events, split per record by the scheduler
            except UNREADABLE as exc:
                CHANGES_CONSUMED.labels("unparseable").inc()
                await self._dead_letter(delivery, queue, category="unparseable",
                                        message=f"not a change: {type(exc).__name__}")  # fmt: skip
                return
            if not await self._give_up(delivery, queue):
                with tracing.span("change", parent=tracing.carrier_from(delivery.headers), events=len(envelopes)):
                    await self.scheduler.changed(envelopes, lane, source_queue=queue)

        return on_change

    def _apply(self, queue: str) -> Callable[[Delivery], Awaitable[None]]:
        async def on_apply(delivery: Delivery) -> None:
            try:
                command = ApplyCommand.from_json(delivery.body)
                key_of(command)
            except UNREADABLE as exc:
                await self._dead_letter(delivery, queue, category="unparseable",
                                        message=f"not an apply command: {type(exc).__name__}")  # fmt: skip
                return
            if not await self._give_up(delivery, queue):
                await self.scheduler.apply(command)

        return on_apply

"""The worker: two consumers and a sweep, readable in one sitting.

    hsqbo.changes ──on_change──► store.touch_pending(key)  ──first touch──► hsqbo.debounce.<ms> (delay)
    hsqbo.apply   ──on_apply───► quiet long enough? claim the record's lease, run the rule, finish or reschedule
    sweep         ──every N s──► pending work nobody scheduled (a lost message, a crashed worker) → hsqbo.apply;
                                 the backlog gauge; old activity pruned (`_retention.py`)

An apply may wake other records (a line item's invoice, records failing for want of the one just synced): they
become pending and scheduled like a change to them.

Every message is acknowledged only after its outcome is in the store, so a crash anywhere re-delivers it; the
store's lease and generation make a redelivery harmless. Nothing here relies on this process's memory.

Each change leaves its source time and the webhook's request id in the record's pending hints (`changes`): the apply
binds the request ids to its log lines (the `applied` line, the API clients' lines), and a write observes
hsqbo_sync_lag_seconds from the oldest source time it synced.

An apply that exhausts its attempts is dead-lettered with its history (`shared.deadletters`); when too many are,
the guard halts consumption instead. `stop()` is graceful: consumers are cancelled, in-flight messages get
`shutdown_seconds` to finish, the rest are cancelled unacknowledged, so the broker redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from services.worker._engine import Engine
from services.worker._guard import DeadLetterGuard
from services.worker._ingest import route
from services.worker._retention import Retention
from shared import tracing
from shared.bus import (
    APPLY_EXCHANGE,
    APPLY_QUEUE,
    CHANGES_QUEUE,
    DEAD_EXCHANGE,
    ApplyCommand,
    debounce_queue,
    declare_worker_topology,
    retry_queue,
)
from shared.config import Settings
from shared.deadletters import dead_letter_message, error_category
from shared.domain import Kind, PendingKey
from shared.envelope import ChangeEnvelope, decode_changes
from shared.errors import RateLimited
from shared.heartbeat import Pulse
from shared.logging import bound, get_logger
from shared.metrics import (
    APPLIES,
    APPLY_LATENCY,
    BACKLOG,
    CHANGES_CONSUMED,
    DEAD_LETTERED,
    LINKS,
    RETRIES,
    SHUTDOWN_REQUEUED,
    SYNC_LAG,
    WORKER_HALTED,
)
from shared.store import LinkStatus, Store
from shared.syncconfig import SyncSettings

log = get_logger("hsqbo.worker")

RETRY_JITTER = 0.2  # a retry waits between 80 % and 100 % of its tier's delay

# The pending hint each change adds: {"request:<id>" or "event:<id>": source time in ms}. One key per webhook request
# (or polled event), so a burst of changes debounced together keeps one entry per request that brought them.
CHANGES_HINT = "changes"
REQUEST_PREFIX = "request:"
TRACES_HINT = "traces"  # {the change's key: its trace context}, only when tracing is on (shared/tracing.py)
# Outcomes that wrote the record on the other side: the end of its end-to-end lag.
SYNCING_ACTIONS = frozenset({"created", "updated", "linked", "deleted", "voided", "merged"})
LINK_COUNT_SECONDS = 60.0  # between two counts of the links by status (a scan of the links: not every sweep)


def change_key(envelope: ChangeEnvelope) -> str:
    return REQUEST_PREFIX + envelope.request_id if envelope.request_id else f"event:{envelope.event_id}"


def change_hint(envelope: ChangeEnvelope, trace: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The hint one change leaves on its record's pending work (merged into the others'): its source time, and the
    trace it belongs to when tracing is on."""
    hint: dict[str, Any] = {CHANGES_HINT: {change_key(envelope): envelope.occurred_at_ms}}
    if trace:
        hint[TRACES_HINT] = {change_key(envelope): dict(trace)}
    return hint


def traces(hints: dict[str, Any]) -> list[dict[str, str]]:
    """The trace contexts of a record's pending changes, oldest change first."""
    changes = hints.get(CHANGES_HINT) or {}
    contexts = hints.get(TRACES_HINT) or {}
    ordered = sorted(contexts, key=lambda key: (int(changes.get(key) or 0), key))
    return [dict(contexts[key]) for key in ordered]


def request_ids(hints: dict[str, Any]) -> list[str]:
    """The webhook request ids that brought a record's pending changes, oldest change first."""
    changes = hints.get(CHANGES_HINT) or {}
    ordered = sorted(changes.items(), key=lambda item: (int(item[1] or 0), item[0]))
    return [key.removeprefix(REQUEST_PREFIX) for key, _ in ordered if key.startswith(REQUEST_PREFIX)]


def oldest_change_at(hints: dict[str, Any]) -> float | None:
    """The source time (epoch seconds) of the oldest change a record's pending work holds; None when none says."""
    times = [int(at) for at in (hints.get(CHANGES_HINT) or {}).values() if at]
    return min(times) / 1000 if times else None


class Worker:
    def __init__(
        self,
        settings: Settings,
        sync: SyncSettings,
        store: Store,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sync = sync
        self.store = store
        self.engine = engine
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[object]] = set()
        self.guard = DeadLetterGuard(max_ratio=settings.dlq_max_ratio, sample=settings.dlq_min_sample)
        self._halting = False
        self.halted = asyncio.Event()  # set once the guard has stopped consumption
        self._links_counted_at = 0.0
        self._retention = Retention(store, settings, clock)
        self.pulse = Pulse(store, "worker", self.owner, clock=clock)  # for the status page: see shared/heartbeat.py
        self._beating: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.settings.rabbitmq_url, reconnect_interval=1)
        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self.settings.worker_prefetch)
        await declare_worker_topology(
            channel, quiet_seconds=self.settings.debounce_quiet_seconds, retry_delays=self.settings.retry_delays
        )
        self._channel = channel
        for name, handler in ((CHANGES_QUEUE, self.on_change), (APPLY_QUEUE, self.on_apply)):
            queue = await channel.get_queue(name)
            self._consumers.append((queue, await queue.consume(self._tracked(handler))))
        self._sweeper = asyncio.create_task(self._sweep_forever())
        self._beating = asyncio.create_task(self.pulse.forever())
        WORKER_HALTED.set(0)
        log.info("worker_started", owner=self.owner)

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up (read by /readyz, from the metrics server's thread)."""
        connection = self._connection
        return connection is not None and connection.connected.is_set() and not connection.is_closed

    async def stop(self) -> None:
        """Stop consuming, give in-flight messages `shutdown_seconds` to finish, cancel the rest (unacknowledged:
        the broker redelivers them when the connection closes, and their record's lease expires), then close."""
        await self._stop_consuming()
        if self._in_flight:
            _, unfinished = await asyncio.wait(set(self._in_flight), timeout=self.settings.shutdown_seconds)
            for task in unfinished:
                task.cancel()
            if unfinished:
                SHUTDOWN_REQUEUED.inc(len(unfinished))
                log.warning("shutdown_deadline_passed", requeued=len(unfinished))
                await asyncio.wait(unfinished)
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
        beating, self._beating = self._beating, None
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await self.pulse.last_beat()
        log.info("worker_stopped", owner=self.owner)

    async def _stop_consuming(self) -> None:
        """Cancel the consumers and the sweep; queued messages stay where they are."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        consumers, self._consumers = self._consumers, []
        for queue, tag in consumers:
            await queue.cancel(tag)

    def _tracked(
        self, handler: Callable[[AbstractIncomingMessage], Awaitable[None]]
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        """The handler, its task remembered while it runs, so `stop()` can wait for it."""

        async def run(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                await handler(message)
            finally:
                if task is not None:
                    self._in_flight.discard(task)

        return run

    async def _halt(self) -> None:
        if self._halting:
            return
        self._halting = True
        WORKER_HALTED.set(1)
        log.error(
            "worker_halted", reason="dead-letter rate over the limit", dead_lettered=self.guard.dead_lettered,
            sample=self.guard.sample, max_ratio=self.settings.dlq_max_ratio,
        )  # fmt: skip
        await self._stop_consuming()
        self.halted.set()

    # --- changes -----------------------------------------------------------------------------------------------------

    async def on_change(self, message: AbstractIncomingMessage) -> None:
        try:
            envelopes = decode_changes(message.body)  # a delivery's events, split per record here
        except (ValueError, TypeError, KeyError):
            CHANGES_CONSUMED.labels("unparseable").inc()
            log.error("change_unparseable", message_id=message.message_id)
            await message.reject(requeue=False)  # dead-lettered with the broker's x-death history
            return
        try:
            with tracing.span("change", parent=tracing.carrier_from(message.headers), events=len(envelopes)):
                for envelope in envelopes:  # a redelivery touches those already routed again: touch coalesces
                    await self._route(envelope)
        except Exception:
            log.exception("change_failed", message_id=message.message_id)
            await message.nack(requeue=True)  # the queue's delivery limit dead-letters a change that always fails
            return
        await message.ack()

    async def _route(self, envelope: ChangeEnvelope) -> None:
        """Make the change's records pending (scheduling those that were not)."""
        with bound(request_id=envelope.request_id):
            work, dropped = route(envelope, self.sync, self.settings.hubspot_app_id)
            for item in work:
                scheduled = await self._touch(item.key, {**item.hints, **change_hint(envelope, tracing.carrier())})
                if envelope.request_id is not None:  # a webhook's (the poller's changes carry none)
                    self.pulse.saw_webhook(item.key.connection, item.key.kind)
                CHANGES_CONSUMED.labels("scheduled" if scheduled else "coalesced").inc()
                log.debug(
                    "change_pending", event_id=envelope.event_id, kind=item.key.kind, side=item.key.side,
                    object_id=item.key.object_id, scheduled=scheduled,
                )  # fmt: skip
            if dropped:
                CHANGES_CONSUMED.labels("dropped").inc()
                log.debug("change_dropped", reason=dropped, event_id=envelope.event_id)

    # --- apply -------------------------------------------------------------------------------------------------------

    async def on_apply(self, message: AbstractIncomingMessage) -> None:
        try:
            command = ApplyCommand.from_json(message.body)
            key = command.key
        except (ValueError, TypeError, KeyError):
            log.error("apply_unparseable", message_id=message.message_id)
            await message.reject(requeue=False)
            return
        try:
            await self._apply(command, key)
        except Exception:
            log.exception("apply_crashed", kind=key.kind, object_id=key.object_id)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _apply(self, command: ApplyCommand, key: PendingKey) -> None:
        now = self.clock()
        pending = await self.store.get_pending(key)
        if pending is None:
            return  # already applied by an earlier message
        quiet = now - pending.last_seen >= self._quiet
        waited_enough = now - pending.first_seen >= self.settings.debounce_max_wait_seconds
        if command.attempt == 0 and not (quiet or waited_enough):
            await self._schedule(command, debounce_queue(self._quiet))  # still changing: wait for quiet
            return
        # One lease holder per apply, not per process: two apply messages for one record (a sweep and a debounce
        # that crossed) exclude each other even inside one worker.
        owner = f"{self.owner}:{uuid.uuid4().hex[:12]}"
        claimed = await self.store.claim_pending(key, owner, now, self.settings.lease_seconds)
        if claimed is None:
            return  # another worker holds the record; it reschedules if more changes arrive
        started = time.perf_counter()
        renewing = asyncio.create_task(self._keep_lease(key, owner))
        brought_by = request_ids(claimed.hints)
        traced = traces(claimed.hints)
        # Every line logged while applying (ours, the API clients') names the webhook requests that brought it; the
        # apply's span continues the oldest change's trace and links the others.
        with (
            bound(
                request_id=brought_by[0] if brought_by else None,
                request_ids=brought_by if len(brought_by) > 1 else None,
            ),
            tracing.span(
                f"apply {key.kind}", parent=traced[0] if traced else None, links=traced[1:], side=str(key.side),
                object_id=key.object_id,
            ),
        ):  # fmt: skip
            try:
                applied = await self.engine.apply(key, claimed.hints)
            except Exception as exc:  # transient API errors and anything unexpected: retry with backoff
                await self.store.release_pending(key, owner)
                await self._retry(command, key, exc)
                return
            finally:
                renewing.cancel()
        APPLIES.labels(key.kind, applied.outcome.action).inc()
        APPLY_LATENCY.labels(key.kind).observe(time.perf_counter() - started)
        changed_at = oldest_change_at(claimed.hints)
        if changed_at is not None and applied.outcome.action in SYNCING_ACTIONS:
            SYNC_LAG.labels(key.kind, key.side).observe(max(self.clock() - changed_at, 0.0))
        if applied.outcome.action in SYNCING_ACTIONS:  # the status page's charts
            self.pulse.synced(key.connection, key.kind, None if changed_at is None else self.clock() - changed_at)
        self.guard.record(dead_lettered=False)
        for woken in applied.wake:
            await self._touch(woken)
        finished = await self.store.finish_pending(key, owner, claimed.generation)
        log.debug(
            "apply_done", kind=key.kind, side=key.side, object_id=key.object_id, generation=claimed.generation,
            action=applied.outcome.action, finished=finished,
        )  # fmt: skip
        if not finished:
            await self._schedule(ApplyCommand.for_key(key), debounce_queue(self._quiet))  # changed meanwhile

    async def _keep_lease(self, key: PendingKey, owner: str) -> None:
        """Renew the record's lease while its apply runs (throttled or slow APIs can outlast one lease), so no other
        worker takes the record meanwhile. Only a process that stops renewing (a crash) loses it."""
        lease = self.settings.lease_seconds
        renewing = asyncio.current_task()
        # Ends on cancellation even when a store call swallowed the CancelledError: a renewal outliving its apply
        # holds the record for ever (the chaos soak saw one left `cancelling` for minutes after a broker restart).
        while renewing is None or not renewing.cancelling():
            await asyncio.sleep(lease / 3)
            if await self.store.claim_pending(key, owner, self.clock(), lease) is None:
                log.error("lease_lost", kind=key.kind, object_id=key.object_id)
                return

    async def _retry(self, command: ApplyCommand, key: PendingKey, error: Exception) -> None:
        # Throttling is the account's state, not the record's fault: it waits as long as the provider asks and
        # does not use up the record's attempts.
        throttled = error if isinstance(error, RateLimited) else None
        attempt = command.attempt + (0 if throttled else 1)
        failed = dataclasses.replace(
            command,
            attempt=attempt,
            last_error=f"{error_category(error)}: {error}"[:300],
            first_failed_at=command.first_failed_at or self.clock(),
        )
        if attempt >= self.settings.max_attempts:
            await self._dead_letter(failed, key, error)
            return
        delays = self.settings.retry_delays
        delay = delays[max(min(attempt, len(delays)) - 1, 0)]
        if throttled:
            wait = throttled.retry_after or delays[-1]
            delay = next((tier for tier in delays if tier >= wait), delays[-1])
        RETRIES.labels(str(delay)).inc()
        log.warning("apply_retry", kind=key.kind, object_id=key.object_id, attempt=attempt, error=failed.last_error)
        # Jitter, so records that failed together do not retry together. A delay queue expires only at its head, so
        # a jittered message waits at most the jitter behind its predecessors: the jitter only ever shortens.
        jittered = delay * random.uniform(1 - RETRY_JITTER, 1.0)
        await self._send(failed.message(expires_in=jittered), "", retry_queue(delay))

    async def _dead_letter(self, failed: ApplyCommand, key: PendingKey, error: Exception) -> None:
        pending = await self.store.get_pending(key)
        hints = pending.hints if pending is not None else {}
        letter = dead_letter_message(failed, error, hints=hints, source_queue=APPLY_QUEUE, now=self.clock())
        await self._send(letter, DEAD_EXCHANGE, "")
        if pending is not None:  # replaying the dead letter re-creates it, hints included
            await self.store.claim_pending(key, self.owner, self.clock(), self.settings.lease_seconds)
            await self.store.finish_pending(key, self.owner, pending.generation)
        DEAD_LETTERED.inc()
        log.error(
            "apply_dead_lettered", connection=key.connection, kind=key.kind, side=key.side, object_id=key.object_id,
            attempts=failed.attempt, error=failed.last_error, letter_id=letter.message_id,
        )  # fmt: skip
        if self.guard.record(dead_lettered=True):
            await self._halt()

    # --- scheduling --------------------------------------------------------------------------------------------------

    @property
    def _quiet(self) -> float:
        return self.settings.debounce_quiet_seconds

    async def _touch(self, key: PendingKey, hints: dict[str, Any] | None = None) -> bool:
        """Record a change to `key`; a record not pending yet is scheduled (after the quiet time). True then."""
        if not await self.store.touch_pending(key, self.clock(), hints):
            return False
        await self._schedule(ApplyCommand.for_key(key), debounce_queue(self._quiet))
        return True

    async def _schedule(self, command: ApplyCommand, delay_queue: str) -> None:
        await self._publish(command, "", delay_queue)

    async def _publish(self, command: ApplyCommand, exchange_name: str, routing_key: str) -> None:
        await self._send(command.message(), exchange_name, routing_key)

    async def _send(self, message: aio_pika.Message, exchange_name: str, routing_key: str) -> None:
        if self._channel is None:
            raise RuntimeError("worker not started")
        exchange = (
            self._channel.default_exchange
            if exchange_name == ""
            else await self._channel.get_exchange(exchange_name, ensure=False)
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_seconds)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep_failed")

    async def sweep(self) -> int:
        """Schedule pending work that should have run by now: its message was lost or its worker died."""
        grace = self._quiet + self.settings.sweep_seconds
        due = await self.store.due_pending(self.clock(), grace, self.settings.debounce_max_wait_seconds + grace)
        for key in due:
            await self._publish(ApplyCommand.for_key(key), APPLY_EXCHANGE, "")
        BACKLOG.set(await self.store.count_pending())
        if self.clock() - self._links_counted_at >= LINK_COUNT_SECONDS:
            self._links_counted_at = self.clock()
            await self.count_links()
        await self._retention.prune_if_due()
        return len(due)

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

"""The scheduler: when each record is applied, and what a failure leads to.

    a change ──► its records' pending work (`Store.touch_pending`) ──► an apply command into the change's lane, at
                 once when the record had nothing pending; a change to a record already pending coalesces into it
                 (a live one still sends a live command, so it never waits behind the record's bulk command)
    an apply ──► the applier (lease, engine) ──► wake the records it names ──► finish; a change that arrived while
                 it ran leaves the record pending: one follow-up apply, at once
    a failure ──► the RetryPolicy (services/worker/_retry.py): the record is set aside until its retry
                 (`Store.defer_pending`) and the command goes through the delay queue; or it is dead-lettered with
                 its history, and the guard (services/worker/_guard.py) halts the worker when too many are
    the sweep ──► pending work nobody has scheduled (a lost message, a crashed worker, a retry's time come)

There is no fixed wait for a linked record: a change is applied at once, and a burst of changes to one record that
arrives while it is applied is one follow-up apply, not one per change. A record with no link yet (new, or the echo
of one hsqbo is creating from the other side) waits `HSQBO_UNLINKED_SETTLE_SECONDS` first, so the apply creating its
counterpart has recorded the link by then, and a creation's many property events are one apply. The wait stays
because such an echo cannot be told by another process without it: the created record's id is known only from the
create's answer (a QBO webhook names no requestid), so nothing can be stored before the write answers that names
it, and a rule finding no link would act on it (a second HubSpot payment, say).

Every failure, the store's and the broker's included, goes through the one policy: nothing is requeued in a loop,
and nothing is dead-lettered without its history. A failure to carry a decision out (the broker or the store down) is
retried here after the policy's wait, holding the message, until it succeeds or the worker stops (the broker then
redelivers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import aio_pika

from services.worker._applier import Applier, ApplyFailed
from services.worker._guard import DeadLetterGuard
from services.worker._hints import change_hint
from services.worker._ingest import route
from services.worker._retry import Decision, RetryPolicy
from shared import tracing
from shared.broker import APPLY_QUEUE, DEAD_EXCHANGE, ApplyCommand, Lane, bulk_apply_queue
from shared.clients import bulk_calls
from shared.config import Settings
from shared.deadletters import dead_letter_message, delivery_letter_message, error_category
from shared.domain import PendingKey, Provider
from shared.envelope import ChangeEnvelope
from shared.heartbeat import Pulse
from shared.logging import bound, get_logger
from shared.metrics import BACKLOG, CHANGES_CONSUMED, DEAD_LETTERED, RETRIES
from shared.store import LinkStore, PendingWork
from shared.syncconfig import SyncSettings

log = get_logger("hsqbo.worker")

Sleep = Callable[[float], Awaitable[None]]


class Outbox(Protocol):
    """What the scheduler needs from the broker (shared.broker.Broker; an in-memory one in tests)."""

    async def publish_apply(
        self, command: ApplyCommand, *, delay: float = 0.0, expires_in: float | None = None
    ) -> None: ...
    async def publish_message(self, message: aio_pika.Message, *, exchange: str = "", routing_key: str) -> None: ...
    async def message_count(self, queue_name: str) -> int: ...


class SchedulerStore(PendingWork, LinkStore, Protocol):
    """What the scheduler needs of the store: the pending work it records, sweeps and defers, and whether a record
    has a link yet (one without settles before its first apply)."""


def key_of(command: ApplyCommand) -> PendingKey:
    return command.key


def command_for(key: PendingKey, lane: Lane) -> ApplyCommand:
    return ApplyCommand.for_key(key, lane)


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        sync: SyncSettings,
        store: SchedulerStore,
        applier: Applier,
        outbox: Outbox,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        pulse: Pulse | None = None,
    ) -> None:
        self.settings = settings
        self.pulse = pulse  # notes the webhooks seen, for the status page (shared/heartbeat.py)
        self.sync = sync
        self.store = store
        self.applier = applier
        self.outbox = outbox
        self.clock = clock
        self.sleep = sleep
        self.policy = RetryPolicy(settings.retry_delays, settings.max_attempts)
        self.guard = DeadLetterGuard(max_ratio=settings.dlq_max_ratio, sample=settings.dlq_min_sample)
        self.tripped = asyncio.Event()  # set when the guard says stop consuming

    # --- changes -----------------------------------------------------------------------------------------------------

    async def changed(self, envelopes: Sequence[ChangeEnvelope], lane: Lane, *, source_queue: str) -> None:
        """Make the changes' records pending and schedule them; a failure waits the policy's time and tries again,
        until the changes are routed or dead-lettered (with their history). The changes of one delivery (a burst)
        are all recorded before any of their records is scheduled: one apply for them all."""
        attempt = waits = 0
        first_failed_at: float | None = None
        while True:
            try:
                await self._route(envelopes, lane)
                return
            except Exception as exc:
                decision = self.policy.decide(exc, attempt=attempt, waits=waits)
                attempt, waits = decision.attempt, decision.waits
                first_failed_at = first_failed_at or self.clock()
                log.warning("change_retry", event_ids=[e.event_id for e in envelopes][:10], attempt=attempt,
                            waits=waits, error=_summary(exc), failure=decision.failure)  # fmt: skip
                if decision.dead_letter:
                    for envelope in envelopes:
                        await self.dead_letter_delivery(
                            envelope.to_json(), category=error_category(exc), message=str(exc), attempts=attempt,
                            first_failed_at=first_failed_at, source_queue=source_queue, message_id=envelope.event_id,
                        )  # fmt: skip
                    return
                await self.sleep(decision.expires_in or decision.delay)

    async def _route(self, envelopes: Sequence[ChangeEnvelope], lane: Lane) -> None:
        to_schedule: dict[PendingKey, None] = {}
        for envelope in envelopes:
            with bound(request_id=envelope.request_id):
                work, dropped = route(envelope, self.sync, self.settings.hubspot_app_id)
                for item in work:
                    hints = {**item.hints, **change_hint(envelope, tracing.carrier())}
                    first = await self.store.touch_pending(item.key, self.clock(), hints)
                    if envelope.request_id is not None and self.pulse is not None:  # a webhook's (not the poller's)
                        self.pulse.saw_webhook(item.key.connection, item.key.kind)
                    if first or lane is Lane.LIVE:
                        to_schedule[item.key] = None
                    CHANGES_CONSUMED.labels("scheduled" if first else "coalesced").inc()
                    log.debug(
                        "change_pending", event_id=envelope.event_id, kind=item.key.kind, side=item.key.side,
                        object_id=item.key.object_id, scheduled=first,
                    )  # fmt: skip
                if dropped:
                    CHANGES_CONSUMED.labels("dropped").inc()
                    log.debug("change_dropped", reason=dropped, event_id=envelope.event_id)
        settles = [0.0 if await self._linked(key) else self.settings.unlinked_settle_seconds for key in to_schedule]
        # The delivery's records are handed on together, so their applies run together and their API calls meet in
        # batch calls (shared/clients/_batching.py).
        await asyncio.gather(*(
            self.outbox.publish_apply(command_for(key, lane), delay=settle)
            for key, settle in zip(to_schedule, settles, strict=True)
        ))  # fmt: skip

    async def _linked(self, key: PendingKey) -> bool:
        """Whether the record has a link (a part's key: its parent is looked up when it is applied)."""
        if key.part is not None:
            return True
        ids = {"hubspot_id" if key.side == Provider.HUBSPOT else "qbo_id": key.object_id}
        return await self.store.get_link(key.connection, key.kind, **ids) is not None

    async def touch(self, key: PendingKey, lane: Lane, hints: dict[str, Any] | None = None) -> bool:
        """Record a change to `key`; a record not pending yet is scheduled at once (True then). A live change to a
        record already pending is scheduled in the live lane too: a record already applying, or already queued live,
        takes it as a no-op (the lease; nothing pending any more)."""
        first = await self.store.touch_pending(key, self.clock(), hints)
        if first or lane is Lane.LIVE:
            await self.outbox.publish_apply(command_for(key, lane))
        return first

    # --- applies -----------------------------------------------------------------------------------------------------

    async def apply(self, command: ApplyCommand) -> None:
        """Apply the command's record, then carry out what follows (wakes, a follow-up, or the failure's decision)."""
        key = key_of(command)
        try:
            # Catch-up work leaves part of each API limit to live changes (shared/clients/_limits.py).
            with bulk_calls() if command.lane == Lane.BULK else contextlib.nullcontext():
                result = await self.applier.apply(key)
            if result is None:
                return  # nothing pending (already applied), or another apply holds it and will see our changes
            for woken in result.applied.wake:
                await self.touch(woken, Lane.LIVE)
            finished = await self.applier.finish(key, result)
        except ApplyFailed as failure:
            error, owner = failure.error, failure.owner
            await self._until_done(lambda: self.failed(command, key, error, owner))
            return
        self.guard.record(dead_lettered=False)
        if not finished:  # changed while it ran: one follow-up apply for them all
            await self._until_done(lambda: self.outbox.publish_apply(dataclasses.replace(command, attempt=0, waits=0,
                                                                                         last_error=None)))  # fmt: skip

    async def failed(self, command: ApplyCommand, key: PendingKey, error: Exception, owner: str) -> Decision:
        """Carry out the policy's decision on a failed apply (its lease still held by `owner`)."""
        decision = self.policy.decide(error, attempt=command.attempt, waits=command.waits)
        now = self.clock()
        retried = dataclasses.replace(
            command, attempt=decision.attempt, waits=decision.waits, last_error=_summary(error),
            first_failed_at=command.first_failed_at or now,
        )  # fmt: skip
        if decision.dead_letter:
            await self._dead_letter(retried, key, error, owner)
            return decision
        wait = decision.expires_in or decision.delay
        with contextlib.suppress(Exception):  # the store down: its lease expires, and the retry claims it then
            await self.store.defer_pending(key, now + wait)
        RETRIES.labels(str(decision.delay)).inc()
        log.warning("apply_retry", kind=key.kind, object_id=key.object_id, attempt=decision.attempt,
                    waits=decision.waits, failure=decision.failure, retry_in=round(wait, 3),
                    error=retried.last_error)  # fmt: skip
        await self.outbox.publish_apply(retried, delay=decision.delay, expires_in=decision.expires_in)
        return decision

    async def _dead_letter(self, failed: ApplyCommand, key: PendingKey, error: Exception, owner: str) -> None:
        pending = await self.store.get_pending(key)
        hints = pending.hints if pending is not None else {}
        letter = dead_letter_message(failed, error, hints=hints, source_queue=APPLY_QUEUE, now=self.clock())
        await self.outbox.publish_message(letter, exchange=DEAD_EXCHANGE, routing_key="")
        if pending is not None:  # under the failed apply's lease; replaying the letter re-creates it, hints included
            await self.store.finish_pending(key, owner, pending.generation)
        DEAD_LETTERED.inc()
        log.error(
            "apply_dead_lettered", connection=key.connection, kind=key.kind, side=key.side, object_id=key.object_id,
            attempts=failed.attempt, error=failed.last_error, letter_id=letter.message_id,
        )  # fmt: skip
        self._count_dead_letter()

    async def dead_letter_delivery(
        self, body: bytes, *, category: str, message: str, attempts: int, first_failed_at: float | None,
        source_queue: str, message_id: str | None = None,
    ) -> None:  # fmt: skip
        """Give up on a delivery that is no apply (a change that cannot be routed, an unparseable message, one
        redelivered too often): to the dead letters, with its history."""
        letter = delivery_letter_message(
            body, category=category, message=message, attempts=attempts, first_failed_at=first_failed_at,
            source_queue=source_queue, now=self.clock(), message_id=message_id,
        )  # fmt: skip
        await self._until_done(lambda: self.outbox.publish_message(letter, exchange=DEAD_EXCHANGE, routing_key=""))
        DEAD_LETTERED.inc()
        log.error("delivery_dead_lettered", category=category, error=message[:300], source_queue=source_queue,
                  letter_id=letter.message_id)  # fmt: skip
        self._count_dead_letter()

    def _count_dead_letter(self) -> None:
        if self.guard.record(dead_lettered=True):
            self.tripped.set()

    async def _until_done(self, action: Callable[[], Awaitable[object]]) -> None:
        """Run `action` until it succeeds, waiting the policy's time for an unavailable store or broker between
        tries (cancelled with the worker: the broker then redelivers the message in hand)."""
        waits = 0
        while True:
            try:
                await action()
                return
            except Exception as exc:
                decision = self.policy.decide(exc, attempt=0, waits=waits)
                waits += 1
                wait = decision.expires_in or decision.delay or self.policy.delays[0]
                log.warning("worker_backing_off", error=_summary(exc), retry_in=round(wait, 3))
                await self.sleep(wait)

    # --- sweep -------------------------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Schedule pending work that should have run by now: its message was lost, its worker died, or its retry's
        time has come. In its connection's bulk lane: it is catch-up work. Work whose command may still wait in a
        queue (`still_queued`: a long backfill's) is left there, not published again; a lost one is found once its
        queues are drained."""
        grace = self.settings.sweep_seconds
        queued = await self._still_queued()
        due = await self.store.due_pending(self.clock(), grace, 2 * grace, still_queued=queued)
        for key in due:  # a connection no longer configured has no bulk lane here
            await self.outbox.publish_apply(
                command_for(key, Lane.BULK if self.sync.named(key.connection) else Lane.LIVE)
            )
        BACKLOG.set(await self.store.count_pending())
        return len(due)

    async def _still_queued(self) -> frozenset[str]:
        """The connections whose apply queues hold commands now (none known when the broker cannot say: every due
        record is published again, as a lost message's would be)."""
        names = [connection.name for connection in self.sync.connection]
        try:
            live = await self.outbox.message_count(APPLY_QUEUE)
            bulk = {name: await self.outbox.message_count(bulk_apply_queue(name)) for name in names}
        except Exception as exc:
            log.warning("sweep_queues_unknown", error=_summary(exc))
            return frozenset()
        return still_queued(live, bulk)


def still_queued(live_ready: int, bulk_ready: Mapping[str, int]) -> frozenset[str]:
    """The connections whose unclaimed pending work may still have its apply command in a queue, given the commands
    the live apply queue (shared by every connection) and each connection's bulk apply queue hold: a connection's
    own bulk queue holding some, or the live queue holding any. A record whose command was lost waits until they
    are drained, then the sweep publishes it again."""
    if live_ready:
        return frozenset(bulk_ready)
    return frozenset(name for name, ready in bulk_ready.items() if ready)


def _summary(error: BaseException) -> str:
    return f"{error_category(error)}: {error}"[:300]

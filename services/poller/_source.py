"""What the poller's passes share: where found changes are published (in chunks, counted per object type), a poll's
cursors, and what every source is."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal, Protocol

from shared.connections import SyncContext
from shared.domain import PendingKey, Provider
from shared.envelope import ChangeEnvelope
from shared.logging import get_logger
from shared.metrics import POLLED_CHANGES, WEBHOOKS_MISSED
from shared.store import Link

log = get_logger("hsqbo.poller")

Publish = Callable[[Sequence[ChangeEnvelope]], Awaitable[None]]  # returns once the broker confirmed every envelope

PUBLISH_CHUNK = 100  # envelopes per confirmed publish

# What the poll does with a change it found not synced (see `judge`).
Verdict = Literal["queue", "wait", "missed"]
QUEUE: Final = "queue"
WAIT: Final = "wait"
MISSED: Final = "missed"


def judge(changed_at: float, now: float, link: Link | None, pending: bool, grace: float) -> Verdict:
    """A change the poll found not synced: `queue` it when something else brought it (pending work for its record: a
    webhook queues that at once; its link written since the change: the webhook came and the sync failed or excluded
    it) or its time is unknown (0); `wait` for its webhook while younger than the grace (the next poll finds it
    again); else it is one no webhook brought: `missed`, queued and counted."""
    if pending or changed_at <= 0 or (link is not None and link.updated_at >= changed_at):
        return QUEUE
    return WAIT if changed_at > now - grace else MISSED


@dataclasses.dataclass(slots=True)
class Tally:
    """What one pass (a poll, a backfill, a reconciliation) found of one object type on one side."""

    provider: Provider
    object_type: str
    found: int = 0
    in_sync: int = 0  # the link already shows this version: nothing to do
    queued: int = 0  # queued (or, in a dry run, would be)
    missed: int = 0  # of those, changes no webhook brought (see `judge`; a poll's only)
    deferred: int = 0  # changes left to the next poll: their webhook may still come (a poll's only)


Progress = Callable[[Tally], None]  # called after each chunk, for a progress line
Judge = Callable[[ChangeEnvelope, Sequence[PendingKey], Link | None], Awaitable[Verdict]]


class TallyQueue:
    """Envelopes of one object type, published in chunks as they come (not in a dry run: `publish` None), counted in
    `tally`. `flush()` publishes the rest: call it before moving a cursor past them."""

    def __init__(
        self,
        publish: Publish | None,
        tally: Tally,
        progress: Progress = lambda tally: None,
        *,
        judge: Judge | None = None,
        defer: bool = True,
    ) -> None:
        self.publish = publish
        self.tally = tally
        self.progress = progress
        self.judge = judge  # a poll's: tells missed webhooks (None: a backfill's or a reconciliation's queue)
        self.defer = defer  # False when the cursor moves past what it finds (a full QBO CDC answer): nothing waits
        self.waiting: list[ChangeEnvelope] = []

    async def add(
        self, envelope: ChangeEnvelope | None, keys: Sequence[PendingKey] = (), link: Link | None = None
    ) -> None:
        """One record found: `envelope` to queue, or None when it is in sync. `keys` (the pending work a webhook of
        this change leaves: the record's, or its part's) and `link` let a poll tell a missed webhook."""
        self.tally.found += 1
        if envelope is None:
            self.tally.in_sync += 1
        else:
            verdict = await self.judge(envelope, keys, link) if self.judge is not None and keys else QUEUE
            if verdict == WAIT and self.defer:
                self.tally.deferred += 1
                return
            self.tally.missed += verdict == MISSED
            self.waiting.append(envelope)
        if len(self.waiting) >= PUBLISH_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.waiting and self.publish is not None:
            await self.publish(self.waiting)
        self.tally.queued += len(self.waiting)
        self.waiting = []
        self.progress(self.tally)


@dataclasses.dataclass(frozen=True, slots=True)
class Poll:
    """One poll of one connection: found changes go to `publish`, cursors to the store."""

    ctx: SyncContext
    publish: Publish
    now: float  # when the poll started (epoch seconds)
    overlap_seconds: float
    reconcile_seconds: float
    # How long a change found without a trace of its webhook waits for it (left to the next poll); under the overlap,
    # so the next poll finds it again. 0: every such change is queued, and counted missed, at once.
    missed_webhook_grace_seconds: float = 0.0

    def queue(self, provider: Provider, object_type: str, *, defer: bool = True) -> TallyQueue:
        return TallyQueue(self.publish, Tally(provider, object_type), judge=self.judge, defer=defer)

    async def judge(self, envelope: ChangeEnvelope, keys: Sequence[PendingKey], link: Link | None) -> Verdict:
        """What to do with a change found not synced (see `judge`); reads the pending work of `keys` only when the
        link does not settle it."""
        changed_at = envelope.occurred_at_ms / 1000
        verdict = judge(changed_at, self.now, link, False, self.missed_webhook_grace_seconds)
        for key in keys if verdict != QUEUE else ():
            if await self.ctx.store.get_pending(key) is not None:
                return QUEUE
        return verdict

    async def done(self, queue: TallyQueue) -> None:
        """Publish what is left of `queue`; count what it found."""
        await queue.flush()
        tally = queue.tally
        POLLED_CHANGES.labels(tally.provider, "queued").inc(tally.queued)
        POLLED_CHANGES.labels(tally.provider, "in_sync").inc(tally.in_sync)
        WEBHOOKS_MISSED.labels(self.ctx.name, tally.provider).inc(tally.missed)
        if tally.queued:  # worth a line: a webhook was missed, or its change is not synced yet
            log.info("poll_queued", connection=self.ctx.name, provider=tally.provider, object_type=tally.object_type,
                     queued=tally.queued, in_sync=tally.in_sync, webhooks_missed=tally.missed,
                     waiting_for_webhook=tally.deferred)  # fmt: skip

    async def cursor(self, name: str) -> str | None:
        return await self.ctx.store.get_cursor(self.ctx.name, name)

    async def advance(self, name: str, value: str) -> None:
        """Save a cursor, once everything before it is queued."""
        await self.ctx.store.set_cursor(self.ctx.name, name, value)


class Source(Protocol):
    provider: Provider

    async def poll(self, poll: Poll) -> float | None:
        """Queue the connection's changes since the cursors; returns the time up to which all are queued (None: this
        source keeps no such watermark)."""
        ...

"""What the poller's passes share: where found changes are published (in chunks, counted per object type), a poll's
cursors, and what every source is."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from shared.connections import SyncContext
from shared.envelope import ChangeEnvelope, Provider
from shared.logging import get_logger
from shared.metrics import POLLED_CHANGES, WEBHOOKS_MISSED
from shared.store import Link, PendingKey

log = get_logger("hsqbo.poller")

Publish = Callable[[Sequence[ChangeEnvelope]], Awaitable[None]]  # returns once the broker confirmed every envelope

PUBLISH_CHUNK = 100  # envelopes per confirmed publish

# How long a change's webhook may take before a change the poller finds without any trace of it counts as missed.
MISSED_WEBHOOK_GRACE_SECONDS = 30.0


def webhook_missed(changed_at: float, now: float, link: Link | None, pending: bool, grace: float) -> bool:
    """Whether a change the poller found not synced is one no webhook brought: older than the grace (a younger one's
    webhook may still be on its way), no pending work for its record (a webhook queues it at once), and its link not
    written since the change (a webhook whose sync then failed, or was excluded, left its mark there). A change of
    unknown time (0) is never counted."""
    if changed_at <= 0 or changed_at > now - grace or pending:
        return False
    return link is None or link.updated_at < changed_at


@dataclasses.dataclass(slots=True)
class Tally:
    """What one pass (a poll, a backfill, a reconciliation) found of one object type on one side."""

    provider: Provider
    object_type: str
    found: int = 0
    in_sync: int = 0  # the link already shows this version: nothing to do
    queued: int = 0  # queued (or, in a dry run, would be)
    missed: int = 0  # of those, changes no webhook brought (see `webhook_missed`; counted by the poll only)


Progress = Callable[[Tally], None]  # called after each chunk, for a progress line
MissedCheck = Callable[[ChangeEnvelope, PendingKey, Link | None], Awaitable[bool]]


class TallyQueue:
    """Envelopes of one object type, published in chunks as they come (not in a dry run: `publish` None), counted in
    `tally`. `flush()` publishes the rest: call it before moving a cursor past them."""

    def __init__(
        self,
        publish: Publish | None,
        tally: Tally,
        progress: Progress = lambda tally: None,
        *,
        missed: MissedCheck | None = None,
    ) -> None:
        self.publish = publish
        self.tally = tally
        self.progress = progress
        self.missed = missed
        self.waiting: list[ChangeEnvelope] = []

    async def add(
        self, envelope: ChangeEnvelope | None, key: PendingKey | None = None, link: Link | None = None
    ) -> None:
        """One record found: `envelope` to queue, or None when it is in sync. `key` (the record's pending work) and
        `link` tell a poll whether its webhook was missed."""
        self.tally.found += 1
        if envelope is None:
            self.tally.in_sync += 1
        else:
            self.waiting.append(envelope)
            if self.missed is not None and key is not None and await self.missed(envelope, key, link):
                self.tally.missed += 1
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

    def queue(self, provider: Provider, object_type: str) -> TallyQueue:
        return TallyQueue(self.publish, Tally(provider, object_type), missed=self.missed)

    async def missed(self, envelope: ChangeEnvelope, key: PendingKey, link: Link | None) -> bool:
        changed_at = envelope.occurred_at_ms / 1000
        if not webhook_missed(changed_at, self.now, link, False, MISSED_WEBHOOK_GRACE_SECONDS):
            return False
        return await self.ctx.store.get_pending(key) is None

    async def done(self, queue: TallyQueue) -> None:
        """Publish what is left of `queue`; count what it found."""
        await queue.flush()
        tally = queue.tally
        POLLED_CHANGES.labels(tally.provider, "queued").inc(tally.queued)
        POLLED_CHANGES.labels(tally.provider, "in_sync").inc(tally.in_sync)
        WEBHOOKS_MISSED.labels(self.ctx.name, tally.provider).inc(tally.missed)
        if tally.queued:  # worth a line: a webhook was missed, or its change is not synced yet
            log.info("poll_queued", connection=self.ctx.name, provider=tally.provider, object_type=tally.object_type,
                     queued=tally.queued, in_sync=tally.in_sync, webhooks_missed=tally.missed)  # fmt: skip

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

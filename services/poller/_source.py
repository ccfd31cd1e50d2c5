"""What both change sources share: where a poll publishes, its cursors, and the link check that keeps records the
worker has already synced out of the queue."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from shared.connections import SyncContext
from shared.envelope import ChangeEnvelope, Provider
from shared.logging import get_logger
from shared.metrics import POLLED_CHANGES

log = get_logger("hsqbo.poller")

Publish = Callable[[Sequence[ChangeEnvelope]], Awaitable[None]]  # returns once the broker confirmed every envelope

PUBLISH_CHUNK = 100  # envelopes per confirmed publish


@dataclasses.dataclass(frozen=True, slots=True)
class Poll:
    """One poll of one connection: found changes go to `publish`, cursors to the store."""

    ctx: SyncContext
    publish: Publish
    now: float  # when the poll started (epoch seconds)
    overlap_seconds: float
    reconcile_seconds: float

    async def queue(self, provider: Provider, found: Sequence[ChangeEnvelope], in_sync: int) -> None:
        """Publish what the links do not show synced, in chunks; count both."""
        for start in range(0, len(found), PUBLISH_CHUNK):
            await self.publish(found[start : start + PUBLISH_CHUNK])
        POLLED_CHANGES.labels(provider, "queued").inc(len(found))
        POLLED_CHANGES.labels(provider, "in_sync").inc(in_sync)
        if found:  # worth a line: a webhook was missed, or its change is not synced yet
            log.info("poll_queued", connection=self.ctx.name, provider=provider, queued=len(found), in_sync=in_sync)

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

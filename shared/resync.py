"""Bring one record up to date now, whatever the webhooks said: its pending work is (re)created and an apply command
goes straight to the live lane, so a worker re-reads both sides and syncs it (a record already in sync ends as
"unchanged"), never behind a backfill. Replaying a dead letter, the status page's "Sync now" and `hsqbo review
resolve` all do this, through the process's one Broker."""

from __future__ import annotations

from typing import Any

from shared.broker import ApplyCommand, Broker, Lane
from shared.domain import PendingKey
from shared.store import PendingWork


async def resync(
    store: PendingWork, broker: Broker, key: PendingKey, *, now: float, hints: dict[str, Any] | None = None
) -> None:
    """Returns once the broker has confirmed the command."""
    await store.touch_pending(key, now, hints)
    await broker.publish_apply(ApplyCommand.for_key(key, Lane.LIVE))

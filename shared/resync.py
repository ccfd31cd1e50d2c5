"""Bring one record up to date now, whatever the webhooks said: its pending work is (re)created and an apply command
goes straight to the apply exchange, so a worker re-reads both sides and syncs it (a record already in sync ends as
"unchanged"). Replaying a dead letter and the status page's "Sync now" both do this."""

from __future__ import annotations

from typing import Any

from aio_pika.abc import AbstractChannel

from shared.bus import APPLY_EXCHANGE, ApplyCommand
from shared.domain import PendingKey
from shared.store import PendingWork


async def resync(
    store: PendingWork, channel: AbstractChannel, key: PendingKey, *, now: float, hints: dict[str, Any] | None = None
) -> None:
    """`channel` must have publisher confirms on: this returns once the broker has the command."""
    await store.touch_pending(key, now, hints)
    command = ApplyCommand.for_key(key)
    exchange = await channel.get_exchange(APPLY_EXCHANGE, ensure=False)
    await exchange.publish(command.message(), routing_key="", mandatory=True)

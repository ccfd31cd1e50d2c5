"""Keeps the store bounded: the activity history loses its lines older than `HSQBO_ACTIVITY_RETENTION_DAYS`, and
beyond the newest `HSQBO_ACTIVITY_MAX_LINES` the oldest. The other tables stay bounded by what they hold: links one per
synced pair, pending work deleted once applied, the last few reconciliation reports, one row per credential, cursor,
lock and rate-limit key (uses expire with their window).

Every worker runs it from its sweep, at most once per `HSQBO_ACTIVITY_PRUNE_SECONDS` (the first sweep prunes): pruning
twice is harmless, so several workers need no lock."""

from __future__ import annotations

from collections.abc import Callable

from shared.config import Settings
from shared.logging import get_logger
from shared.store import ActivityLog

log = get_logger("hsqbo.worker")

DAY_SECONDS = 86_400.0


class Retention:
    def __init__(self, activity: ActivityLog, settings: Settings, clock: Callable[[], float]) -> None:
        self._activity = activity
        self._settings = settings
        self._clock = clock
        self._due_at = 0.0

    async def prune_if_due(self) -> int | None:
        """Prune if the last prune is `activity_prune_seconds` old; how many lines went (None: not due)."""
        now = self._clock()
        if now < self._due_at:
            return None
        self._due_at = now + self._settings.activity_prune_seconds
        older_than = now - self._settings.activity_retention_days * DAY_SECONDS
        pruned = await self._activity.prune_activity(older_than, self._settings.activity_max_lines)
        if pruned:
            log.info("activity_pruned", lines=pruned)
        return pruned

"""Pruning the activity history: by age and count, at most once per prune interval."""

from __future__ import annotations

from services.worker._retention import DAY_SECONDS, Retention
from shared.config import Settings
from shared.domain import Kind
from shared.store import open_store


async def test_a_due_prune_drops_lines_past_the_retention_and_beyond_the_count() -> None:
    now = [100 * DAY_SECONDS]
    settings = Settings(activity_retention_days=30, activity_max_lines=2, activity_prune_seconds=600)
    async with open_store("sqlite://:memory:") as store:
        retention = Retention(store, settings, lambda: now[0])
        for days_ago in (40, 3, 2, 1):
            await store.log_activity(
                "acme", Kind.CONTACT, "updated", hubspot_id="1", at=now[0] - days_ago * DAY_SECONDS
            )

        assert await retention.prune_if_due() == 2  # 40 days old, then the oldest beyond two
        await store.log_activity("acme", Kind.CONTACT, "updated", hubspot_id="1", at=now[0])
        now[0] += 599
        assert await retention.prune_if_due() is None  # not due yet
        now[0] += 1
        assert await retention.prune_if_due() == 1
        lines = await store.activity("acme", Kind.CONTACT)

    assert [round((now[0] - 600 - line.at) / DAY_SECONDS) for line in lines] == [0, 1]

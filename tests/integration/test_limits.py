"""Client-side rate limits against the sandboxes' real throttles (QBO: 500/min, 10 in flight, 40 batch/min per
realm; HubSpot: 100 per 10 s, 5 searches/s per portal): a burst of changes sees no 429 at all."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

BURST = 40  # contacts created at once: the worker applies up to its prefetch (32) concurrently


async def test_burst_of_changes_sees_no_429_from_either_api(stack: Stack) -> None:
    emails = [f"burst-{n}@example.com" for n in range(BURST)]
    for email in emails:
        stack.hubspot_edit("contacts", "create", properties={"email": email, "firstname": "Burst"})
    await stack.settle(within=90)

    synced = {(c.get("PrimaryEmailAddr") or {}).get("Address") for c in stack.qbo_entities("Customer")}
    assert set(emails) <= synced
    assert stack.sandbox.qbo.requests.count(status=429) == 0
    assert stack.sandbox.hubspot.requests.count(status=429) == 0

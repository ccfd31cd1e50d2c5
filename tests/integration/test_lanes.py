"""Lanes on the real broker (issue 13 item 4): a backfill's records travel in the connection's bulk lane, a live edit
in the live lane, each consumed on its own channel with its own prefetch, so the edit never waits behind the
backfill's queue.

The worker here takes `PREFETCH` deliveries of a queue at a time, far fewer than the backfill's records, and the APIs
answer in `LATENCY_MS`, so the backfill applies for a few seconds: in one queue the edit would wait for nearly all of
it. The store's activity, stamped as each apply ends, shows the order.
"""

from __future__ import annotations

import pytest

from services.poller import backfill, bulk_publisher
from shared.broker import connected_broker
from shared.clients import AiohttpTransport
from shared.connections import ContextFactory
from shared.domain import Kind
from tests.integration.conftest import CONNECTION, Stack, eventually
from tests.integration.test_deadletters import running_worker

pytestmark = pytest.mark.integration

BACKFILL = 16
PREFETCH = 2
LATENCY_MS = 100.0


@pytest.fixture
def in_process_worker() -> bool:
    return False  # the test's own, with a small prefetch


async def test_a_live_edit_during_a_backfill_is_applied_before_the_backfills_remaining_records(stack: Stack) -> None:
    async with (
        running_worker(stack, worker_prefetch=PREFETCH, worker_bulk_prefetch=PREFETCH),
        connected_broker(stack.settings) as broker,
    ):
        live = stack.hubspot_edit("contacts", "create", properties={"email": "live@lanes.test", "firstname": "Before"})
        await stack.settle()
        for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):  # customers made before the connection: no webhook
            sandbox.faults.update(webhook_drop_rate=1.0)
        backfilled = set()
        for n in range(BACKFILL):
            body = {"DisplayName": f"Old {n}", "PrimaryEmailAddr": {"Address": f"old{n}@lanes.test"}}
            backfilled.add(stack.qbo_edit("Customer", "create", body)["Id"])
        assert await stack.sandbox.qbo.webhooks.drain(10.0)  # their webhooks lost before any is let through
        for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):
            sandbox.faults.update(webhook_drop_rate=0.0, latency_ms=(LATENCY_MS, LATENCY_MS))

        async with AiohttpTransport.from_settings(stack.settings) as transport:
            ctx = await ContextFactory(stack.settings, stack.store, transport).get(stack.sync.connection[0])
            await backfill(ctx, bulk_publisher(broker), since=None)

        async def backfill_started() -> bool:
            lines = await stack.store.activity(CONNECTION, Kind.CONTACT, limit=BACKFILL + 10)
            return any(line.qbo_id in backfilled for line in lines)

        await eventually(backfill_started)
        stack.hubspot_edit("contacts", "update", id=live["id"], properties={"firstname": "After"})
        await stack.settle()

    lines = await stack.store.activity(CONNECTION, Kind.CONTACT, limit=2 * BACKFILL + 10)
    [edited] = [line for line in lines if line.hubspot_id == live["id"] and line.action == "updated"]
    applied = [line for line in lines if line.qbo_id in backfilled]
    assert len({line.qbo_id for line in applied}) == BACKFILL
    after = [line for line in applied if line.at > edited.at]
    assert len(after) >= BACKFILL // 2, f"{len(after)} of {BACKFILL} backfilled records applied after the live edit"

"""The console's tables (both backends): object switches, the backlog per object, heartbeats, records synced for the
charts, the first sync's plan, and the rate-limit budget in use."""

from __future__ import annotations

from shared.domain import Kind, PendingKey, Provider
from shared.quotas import Quota, Window
from shared.store import FirstSync, Heartbeat, Store, SyncedRecord


async def test_an_object_is_on_until_switched_off_and_its_switch_is_kept(store: Store) -> None:
    assert await store.object_switches("acme") == {}
    await store.set_object_switch("acme", Kind.CONTACT, False)
    await store.set_object_switch("other", Kind.CONTACT, True)
    assert await store.object_switches("acme") == {Kind.CONTACT: False}
    await store.set_object_switch("acme", Kind.CONTACT, True)
    assert await store.object_switches("acme") == {Kind.CONTACT: True}


async def test_the_backlog_is_counted_per_object(store: Store) -> None:
    for object_id in ("1", "2"):
        await store.touch_pending(PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, object_id), 1.0)
    await store.touch_pending(PendingKey("acme", Kind.INVOICE, Provider.QUICKBOOKS, "9"), 1.0)
    await store.touch_pending(PendingKey("other", Kind.INVOICE, Provider.QUICKBOOKS, "9"), 1.0)
    assert await store.count_pending_by_kind("acme") == {Kind.CONTACT: 2, Kind.INVOICE: 1}


async def test_a_heartbeat_replaces_the_processes_last_and_keeps_when_it_started(store: Store) -> None:
    await store.beat(Heartbeat(process="h:1", role="worker", started_at=10.0, beat_at=10.0))
    await store.beat(Heartbeat(process="h:1", role="worker", started_at=99.0, beat_at=15.0,
                               detail={"webhooks": {"acme/contact": 14.0}}))  # fmt: skip
    await store.beat(Heartbeat(process="h:2", role="poller", started_at=1.0, beat_at=2.0))
    [worker, poller] = await store.heartbeats()
    assert (worker.process, worker.started_at, worker.beat_at, worker.detail) == (
        "h:1", 10.0, 15.0, {"webhooks": {"acme/contact": 14.0}}
    )  # fmt: skip
    assert poller.role == "poller"
    assert [b.process for b in await store.heartbeats(since=5.0)] == ["h:1"]
    assert await store.prune_heartbeats(older_than=5.0) == 1
    assert [b.process for b in await store.heartbeats()] == ["h:1"]


async def test_records_synced_are_kept_with_their_lag_and_pruned(store: Store) -> None:
    await store.add_synced([SyncedRecord("acme", Kind.CONTACT, 100.0, 1.5), SyncedRecord("acme", Kind.INVOICE, 200.0),
                            SyncedRecord("other", Kind.CONTACT, 150.0, 0.5)])  # fmt: skip
    await store.add_synced([])
    assert await store.synced("acme", since=0.0) == [
        SyncedRecord("acme", Kind.CONTACT, 100.0, 1.5), SyncedRecord("acme", Kind.INVOICE, 200.0, None)
    ]  # fmt: skip
    assert await store.synced("acme", since=150.0) == [SyncedRecord("acme", Kind.INVOICE, 200.0, None)]
    assert await store.prune_synced(older_than=160.0) == 2
    assert await store.synced("other", since=0.0) == []


async def test_the_first_sync_plan_is_kept_per_connection_and_replaced(store: Store) -> None:
    assert await store.first_sync("acme") is None
    plan = {"format": 1, "connection": "acme", "entries": [{"id": "1"}]}
    saved = await store.save_first_sync(FirstSync(connection="acme", plan=plan, planned_at=5.0))
    assert (saved.plan, saved.applied_at) == (plan, None)
    await store.save_first_sync(FirstSync(connection="acme", plan=plan, planned_at=5.0, applied_at=7.0))
    kept = await store.first_sync("acme")
    assert kept is not None
    assert (kept.planned_at, kept.applied_at) == (5.0, 7.0)


async def test_activity_since_a_time_is_counted(store: Store) -> None:
    await store.log_activity("acme", Kind.CONTACT, "created", hubspot_id="1", at=10.0)
    await store.log_activity("acme", Kind.CONTACT, "excluded", hubspot_id="2", at=20.0)
    await store.log_activity("other", Kind.CONTACT, "created", hubspot_id="1", at=20.0)
    assert await store.count_activity_since("acme", 15.0) == 1
    assert await store.count_activity_since("acme", 0.0) == 2


async def test_the_budget_in_use_counts_the_calls_live_in_each_window(store: Store) -> None:
    window = Window("hubspot:1:burst", 100, 10.0)
    for ticket in (1, 2):
        await store.take_quota(Quota((window,)), ticket, now=100.0, hold_seconds=1.0)
    await store.finish_quota(1, now=100.5)
    assert await store.count_rate_uses(["hubspot:1:burst", "quickbooks:2:minute"], now=105.0) == {"hubspot:1:burst": 2}
    assert await store.count_rate_uses(["hubspot:1:burst"], now=200.0) == {}

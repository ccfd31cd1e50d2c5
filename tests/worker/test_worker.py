"""The worker's apply step on an in-memory store and an in-memory broker: leases and generations."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import pytest
import structlog

from services.worker import Worker
from services.worker._engine import Applied
from services.worker._hints import change_hint, lone_change_at_ms, oldest_change_at, request_ids
from services.worker.rules import Hints, Outcome
from shared.broker import APPLY_QUEUE, CHANGES_QUEUE, ApplyCommand, Delivery, changes_message
from shared.config import Settings
from shared.domain import Action, Direction, Kind, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.metrics import BACKLOG, SYNC_LAG
from shared.store import Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings
from tests.memory_broker import MemoryBroker

KEY = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "7")
COMMAND = ApplyCommand("acme", "contact", "hubspot", "7", attempt=1)  # a retry: no debounce check


class SlowEngine:
    """Counts applies; each takes a while, so two can overlap."""

    def __init__(self) -> None:
        self.applies = 0

    async def apply(self, key: PendingKey, hints: Hints) -> Applied:
        self.applies += 1
        await asyncio.sleep(0.05)
        return Applied(Outcome(Action.UPDATED))


class QuietWorker(Worker):
    """A worker on an in-memory broker: `scheduled` is what it queued in the live apply lane."""

    def __init__(
        self,
        settings: Settings,
        sync: SyncSettings,
        store: Store,
        engine: object,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.memory = MemoryBroker(clock=clock)
        super().__init__(settings, sync, store, engine, broker=self.memory.as_broker(), clock=clock)  # type: ignore[arg-type]

    @property
    def scheduled(self) -> list[ApplyCommand]:
        return self.memory.commands(APPLY_QUEUE)

    async def _apply(self, command: ApplyCommand, key: PendingKey) -> None:
        await self.scheduler.apply(command)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with open_store("sqlite://:memory:") as opened:
        yield opened


def worker(store: Store, engine: SlowEngine) -> QuietWorker:
    return QuietWorker(Settings(), SyncSettings(), store, engine)


async def test_two_applies_of_one_record_in_one_worker_run_the_rule_once(store: Store) -> None:
    engine = SlowEngine()
    await store.touch_pending(KEY, 0.0)
    one = worker(store, engine)
    await asyncio.gather(one._apply(COMMAND, KEY), one._apply(COMMAND, KEY))
    assert engine.applies == 1
    assert await store.count_pending() == 0


async def test_a_change_arriving_during_an_apply_reschedules_the_record(store: Store) -> None:
    engine = SlowEngine()
    await store.touch_pending(KEY, 0.0)
    one = worker(store, engine)
    running = asyncio.create_task(one._apply(COMMAND, KEY))
    await asyncio.sleep(0.01)
    assert not await store.touch_pending(KEY, 1.0)  # already pending: the change rides on the running apply
    await running
    assert await store.count_pending() == 1
    assert [command.object_id for command in one.scheduled] == ["7"]  # one follow-up, at once


async def test_a_long_apply_keeps_its_lease_so_no_other_worker_takes_the_record(store: Store) -> None:
    class VerySlowEngine(SlowEngine):
        async def apply(self, key: PendingKey, hints: Hints) -> Applied:
            self.applies += 1
            await asyncio.sleep(1.0)  # several leases long
            return Applied(Outcome(Action.UPDATED))

    engine = VerySlowEngine()
    await store.touch_pending(KEY, 0.0)
    first = QuietWorker(Settings(lease_seconds=0.3), SyncSettings(), store, engine)
    second = QuietWorker(Settings(lease_seconds=0.3), SyncSettings(), store, engine)
    running = asyncio.create_task(first._apply(COMMAND, KEY))
    await asyncio.sleep(0.6)  # past the first lease: without renewal the record would be free
    await second._apply(COMMAND, KEY)
    await running
    assert engine.applies == 1


async def test_the_lease_renewal_ends_with_its_apply_even_if_a_store_call_swallowed_the_cancellation(
    store: Store,
) -> None:
    class SwallowingStore:
        """Renews like the store, but a cancellation arriving mid-renewal is lost, as a library may lose it."""

        renewals = 0
        renewing = asyncio.Event()

        async def claim_pending(self, *args: object) -> object:
            self.renewals += 1
            self.renewing.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.05)
            return object()

    swallowing = SwallowingStore()
    one = QuietWorker(Settings(lease_seconds=0.03), SyncSettings(), swallowing, SlowEngine())  # type: ignore[arg-type]
    renewing = asyncio.create_task(one.applier._keep_lease(KEY, "me"))
    await swallowing.renewing.wait()
    renewing.cancel()  # lands in the renewal, which swallows it
    done, _ = await asyncio.wait({renewing}, timeout=1.0)
    assert renewing in done, "the lease is still being renewed after its apply ended"
    assert swallowing.renewals == 1


async def test_the_sweep_reports_the_backlog(store: Store) -> None:
    for object_id in ("7", "8"):
        await store.touch_pending(PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, object_id), 0.0)
    sweeper = QuietWorker(Settings(), SyncSettings(), store, SlowEngine(), clock=lambda: 100.0)
    assert await sweeper.sweep() == 2
    assert BACKLOG._value.get() == 2
    assert len(sweeper.scheduled) == 2  # "acme" is not configured here: no bulk lane, so the live one


# --- following one change: its request id and its end-to-end lag -------------------------------------------------


class RecordingEngine:
    """Remembers what the log context held while it applied; answers `outcome`."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.context: dict[str, object] = {}

    async def apply(self, key: PendingKey, hints: Hints) -> Applied:
        self.context = structlog.contextvars.get_contextvars()
        return Applied(self.outcome)


def change(request_id: str | None, occurred_at_ms: int, event_id: str = "e1") -> ChangeEnvelope:
    return ChangeEnvelope(
        provider=Provider.HUBSPOT, account_id="1", object_type="contact", object_id="7",
        operation=Operation.UPDATED, occurred_at_ms=occurred_at_ms, event_id=event_id, request_id=request_id,
    )  # fmt: skip


def lag() -> tuple[float, float]:
    # One label set: earlier tests in the same process may have observed contacts synced from QBO too.
    samples = {
        s.name: s.value
        for m in SYNC_LAG.collect()
        for s in m.samples
        if s.labels.get("kind") == "contact" and s.labels.get("source") == "hubspot"
    }
    return samples.get("hsqbo_sync_lag_seconds_count", 0.0), samples.get("hsqbo_sync_lag_seconds_sum", 0.0)


def test_request_ids_come_oldest_change_first_and_polled_changes_have_none() -> None:
    changes: dict[str, object] = {}
    for envelope in (change("late", 3_000), change(None, 1_000, "poll:1"), change("early", 2_000)):
        changes |= change_hint(envelope)["changes"]  # the store merges them so (a JSON merge patch)
    assert request_ids({"changes": changes}) == ["early", "late"]
    assert oldest_change_at({"changes": changes}) == 1.0
    assert oldest_change_at({}) is None


def test_only_a_lone_change_gives_its_time_to_tell_our_echo_several_coalesced_are_read() -> None:
    assert lone_change_at_ms(change_hint(change("ours", 2_000))) == 2_000
    both = {"changes": change_hint(change("ours", 2_000))["changes"] | change_hint(change("edit", 2_400))["changes"]}
    assert lone_change_at_ms(both) is None
    assert lone_change_at_ms({"changes": {"request:x": None}}) is None
    assert lone_change_at_ms({}) is None


def test_two_qbo_changes_of_one_webhook_request_are_several_so_read_and_a_resent_one_stays_lone() -> None:
    def qbo_change(event_id: str) -> ChangeEnvelope:
        return dataclasses.replace(change("one-request", 2_000, event_id), provider=Provider.QUICKBOOKS,
                                   object_type="customer")  # fmt: skip

    merged: dict[str, dict[str, object]] = {}
    for envelope in (qbo_change("ours"), qbo_change("ours")):  # a resend: one change
        for name, entries in change_hint(envelope).items():
            merged[name] = merged.get(name, {}) | entries  # the store merges them so (a JSON merge patch)
    assert lone_change_at_ms(merged) == 2_000
    for name, entries in change_hint(qbo_change("edit-in-the-same-second")).items():
        merged[name] = merged[name] | entries
    assert merged["changes"] == {"request:one-request": 2_000}  # one entry a request, as for HubSpot bursts
    assert lone_change_at_ms(merged) is None
    assert "events" not in change_hint(change("hubspot", 2_000))  # HubSpot echoes are dropped by their source


async def test_an_apply_logs_with_the_request_id_of_the_webhook_that_brought_its_change(store: Store) -> None:
    await store.touch_pending(KEY, 0.0, change_hint(change("req-1", 1_000)))
    engine = RecordingEngine(Outcome(Action.UPDATED, Direction.HUBSPOT_TO_QBO))
    made = QuietWorker(Settings(), SyncSettings(), store, engine)
    await made._apply(COMMAND, KEY)
    assert engine.context["request_id"] == "req-1"
    assert "request_id" not in structlog.contextvars.get_contextvars()  # unbound after the apply


async def test_a_write_observes_the_lag_from_the_oldest_change_it_synced(store: Store) -> None:
    await store.touch_pending(KEY, 0.0, change_hint(change("a", 95_000)))
    await store.touch_pending(KEY, 0.0, change_hint(change("b", 98_000, "e2")))
    engine = RecordingEngine(Outcome(Action.UPDATED, Direction.HUBSPOT_TO_QBO))
    made = QuietWorker(Settings(), SyncSettings(), store, engine, clock=lambda: 100.0)
    count, total = lag()
    await made._apply(COMMAND, KEY)
    assert lag() == (count + 1, total + 5.0)
    assert engine.context["request_ids"] == ["a", "b"]


async def test_an_apply_that_wrote_nothing_observes_no_lag(store: Store) -> None:
    await store.touch_pending(KEY, 0.0, change_hint(change("a", 95_000)))
    engine = RecordingEngine(Outcome(Action.UNCHANGED))
    made = QuietWorker(Settings(), SyncSettings(), store, engine, clock=lambda: 100.0)
    before = lag()
    await made._apply(COMMAND, KEY)
    assert lag() == before


async def test_a_delivery_of_20_events_in_one_message_reaches_each_of_its_records(store: Store) -> None:
    connection = ConnectionSettings(name="acme", hubspot_portal_id="101", qbo_realm_id="9", setup_date="2026-01-01")
    made = QuietWorker(Settings(), SyncSettings(connection=[connection]), store, SlowEngine())
    delivery = [
        ChangeEnvelope(Provider.HUBSPOT, "101", "contact", str(700 + n), Operation.UPDATED, 1_000 + n, f"e{n}")
        for n in range(20)
    ]
    await made.start()
    made.memory.queues[CHANGES_QUEUE] = [Delivery(changes_message(delivery).body, {}, "m1")]
    handler = made.memory.handlers[CHANGES_QUEUE]
    await handler(made.memory.queues[CHANGES_QUEUE].pop(0))
    delayed = [ApplyCommand.from_json(delivery.body) for _, _, delivery in made.memory.delayed]  # none linked yet
    assert sorted(command.object_id for command in delayed) == sorted(str(700 + n) for n in range(20))

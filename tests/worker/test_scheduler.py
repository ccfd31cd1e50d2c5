"""The scheduler on an in-memory store and broker with a mocked clock: no fixed wait, coalescing, lanes, the retry
policy carried out, and the dead-letter guard seeing every failure (the store's and the broker's included)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import orjson
import psycopg
import pytest

from services.worker import Worker
from services.worker._engine import Applied
from services.worker._scheduler import still_queued
from services.worker.rules import Hints, Outcome
from shared.broker import APPLY_QUEUE, BULK_CHANGES_QUEUE, CHANGES_QUEUE, DEAD_QUEUE, Lane, bulk_apply_queue
from shared.clients import _limits
from shared.config import Settings
from shared.domain import Action, Kind, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.errors import ServerError
from shared.store import Link, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings
from tests.memory_broker import MemoryBroker


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:  # the scheduler's backoff: time passes, nobody waits
        self.slept.append(seconds)
        self.now += seconds


class Engine:
    """Records each apply; fails `failures` times with `error` first; runs `during` inside the first apply."""

    def __init__(self, error: Exception | None = None, failures: int = 0) -> None:
        self.applied: list[str] = []
        self.bulk: list[bool] = []  # whether each apply's API calls were catch-up work (`bulk_calls`)
        self.error, self.failures = error, failures
        self.during: list[ChangeEnvelope] = []
        self.worker: Worker | None = None

    async def apply(self, key: PendingKey, hints: Hints) -> Applied:
        if self.failures:
            self.failures -= 1
            assert self.error is not None
            raise self.error
        self.applied.append(f"{key.connection}:{key.object_id}")
        self.bulk.append(_limits._BULK.get())
        while self.during and self.worker is not None:  # changes arriving while it runs
            await self.worker.scheduler.changed([self.during.pop(0)], Lane.LIVE, source_queue=CHANGES_QUEUE)
        return Applied(Outcome(Action.UPDATED))


PORTALS = {"acme": "101", "zeta": "202"}


def connection(name: str) -> ConnectionSettings:
    return ConnectionSettings(name=name, hubspot_portal_id=PORTALS[name], qbo_realm_id=f"9{PORTALS[name]}",
                              setup_date=dt.date(2026, 1, 1))  # fmt: skip


def change(object_id: str, name: str = "acme", event: str = "") -> ChangeEnvelope:
    return ChangeEnvelope(
        provider=Provider.HUBSPOT, account_id=PORTALS[name], object_type="contact", object_id=object_id,
        operation=Operation.UPDATED, occurred_at_ms=1, event_id=f"e-{object_id}-{event}",
    )  # fmt: skip


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with open_store("sqlite://:memory:") as opened:
        yield opened


async def linked(store: Store, *object_ids: str, name: str = "acme") -> None:
    """Links for these HubSpot contacts: records already synced once, whose changes are applied at once."""
    for object_id in object_ids:
        await store.save_link(Link(connection=name, kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id=object_id,
                                   qbo_id=f"q{object_id}"))  # fmt: skip


async def started(store: Store, engine: Engine, **settings: object) -> tuple[Worker, MemoryBroker, Clock]:
    clock = Clock()
    memory = MemoryBroker(clock=clock)
    tuned = Settings(retry_delays=(1.0, 5.0), max_attempts=3, **settings)  # type: ignore[arg-type]
    sync = SyncSettings(connection=[connection("acme"), connection("zeta")])
    worker = Worker(tuned, sync, store, engine, broker=memory.as_broker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    engine.worker = worker
    await worker.start()
    return worker, memory, clock


async def test_a_change_to_a_record_with_nothing_in_flight_is_applied_at_once(store: Store) -> None:
    engine = Engine()
    await linked(store, "7")
    _, memory, clock = await started(store, engine)
    await memory.publish([change("7")])
    await memory.run_until_idle()
    assert engine.applied == ["acme:7"]
    assert clock.slept == []  # no wait, no timer
    assert memory.delayed == []
    assert await store.count_pending() == 0


async def test_a_burst_is_one_apply_and_changes_during_an_apply_are_one_follow_up(store: Store) -> None:
    engine = Engine()
    await linked(store, "7")
    worker, memory, _ = await started(store, engine)
    burst = [change("7", event=str(n)) for n in range(20)]  # one creation's many property events, one delivery
    await worker.scheduler.changed(burst, Lane.LIVE, source_queue=CHANGES_QUEUE)
    engine.during = [change("7", event=f"late{n}") for n in range(5)]  # arrive while the first apply runs
    await memory.run_until_idle()
    assert engine.applied == ["acme:7", "acme:7"]  # the burst, then one follow-up for the five late ones
    assert await store.count_pending() == 0


async def test_live_changes_never_wait_behind_a_backfill(store: Store) -> None:
    engine = Engine()
    await linked(store, "7", *(str(n) for n in range(100, 150)))
    worker, memory, _ = await started(store, engine)
    backfill = [change(str(n)) for n in range(100, 150)]
    await worker.scheduler.changed(backfill, Lane.BULK, source_queue=BULK_CHANGES_QUEUE)
    await memory.publish([change("7")])  # then a user's edit
    await memory.run_until_idle()
    assert engine.applied.index("acme:7") <= 2  # not after the 50 backfill records
    assert set(memory.log) == {CHANGES_QUEUE, APPLY_QUEUE, bulk_apply_queue("acme")}


async def test_a_backfills_api_calls_are_catch_up_work_a_live_changes_are_not(store: Store) -> None:
    engine = Engine()
    await linked(store, "7", "100")
    worker, memory, _ = await started(store, engine)
    await worker.scheduler.changed([change("100")], Lane.BULK, source_queue=BULK_CHANGES_QUEUE)
    await memory.run_until_idle()
    await memory.publish([change("7")])
    await memory.run_until_idle()
    assert list(zip(engine.applied, engine.bulk, strict=True)) == [("acme:100", True), ("acme:7", False)]


async def test_one_connections_backfill_does_not_starve_anothers(store: Store) -> None:
    engine = Engine()
    await linked(store, *(str(n) for n in range(100, 160)))
    await linked(store, "1", "2", "3", name="zeta")
    worker, memory, _ = await started(store, engine)
    acme = [change(str(n)) for n in range(100, 160)]  # acme's backfill queued first
    await worker.scheduler.changed(acme, Lane.BULK, source_queue=BULK_CHANGES_QUEUE)
    zeta = [change(str(n), "zeta") for n in range(1, 4)]
    await worker.scheduler.changed(zeta, Lane.BULK, source_queue=BULK_CHANGES_QUEUE)
    await memory.run_until_idle()
    turns = [n for n, applied in enumerate(engine.applied) if applied.startswith("zeta:")]
    assert turns
    assert max(turns) < 10  # served in turn with acme's 60, not after them


async def test_a_live_change_to_a_record_queued_in_the_bulk_lane_is_applied_in_the_live_lane(store: Store) -> None:
    engine = Engine()
    await linked(store, *(str(n) for n in range(100, 130)))
    worker, memory, _ = await started(store, engine)
    backfill = [change(str(n)) for n in range(100, 130)]
    await worker.scheduler.changed(backfill, Lane.BULK, source_queue=BULK_CHANGES_QUEUE)
    await memory.publish([change("129")])  # the backfill's last record, edited now
    await memory.run_until_idle()
    assert engine.applied.index("acme:129") <= 2
    assert engine.applied.count("acme:129") == 1  # its bulk command then finds nothing pending


async def test_a_transient_failure_is_retried_after_the_policys_delay_then_applied(store: Store) -> None:
    engine = Engine(ServerError("503", provider="hubspot", status=503), failures=1)
    await linked(store, "7")
    _, memory, clock = await started(store, engine)
    await memory.publish([change("7")])
    await memory.run_until_idle()
    assert engine.applied == []
    assert len(memory.delayed) == 1
    clock.now += 1.0
    await memory.run_until_idle()
    assert engine.applied == ["acme:7"]
    assert await store.count_pending() == 0


async def test_exhausted_attempts_dead_letter_with_history_and_the_guard_halts(store: Store) -> None:
    engine = Engine(ServerError("503 always", provider="hubspot", status=503), failures=10_000)
    await linked(store, "7", "8")
    worker, memory, clock = await started(store, engine, dlq_min_sample=2, dlq_max_ratio=0.5)
    await memory.publish([change("7"), change("8")])
    for _ in range(5):
        await memory.run_until_idle()
        clock.now += 10.0
    letters = memory.queues[DEAD_QUEUE]
    assert len(letters) == 2
    assert letters[0].headers["x-hsqbo-attempts"] == 3
    assert letters[0].headers["x-hsqbo-error-category"] == "server_error"
    assert orjson.loads(letters[0].headers["x-hsqbo-hints"])["changes"]  # the record's pending hints kept
    await asyncio.wait_for(worker.halted.wait(), 1.0)
    assert memory.handlers == {}  # consumption stopped, messages left where they are


async def test_the_store_down_backs_off_and_never_dead_letters(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine()
    await linked(store, "7")
    _, memory, clock = await started(store, engine)
    outage = {"left": 6}
    touch = store.touch_pending

    async def failing_touch(*args: object, **kwargs: object) -> bool:
        if outage["left"]:
            outage["left"] -= 1
            raise psycopg.OperationalError("connection refused")
        return await touch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "touch_pending", failing_touch)
    await memory.publish([change("7")])
    await memory.run_until_idle()
    assert engine.applied == ["acme:7"]
    assert DEAD_QUEUE not in memory.queues
    assert clock.slept[:3] == pytest.approx([1.0, 5.0, 5.0], rel=0.2)
    assert len(clock.slept) == 6


async def test_an_unreadable_delivery_is_dead_lettered_by_the_worker_with_its_history(store: Store) -> None:
    from shared.broker import Delivery

    _, memory, _ = await started(store, Engine())
    memory.queues[CHANGES_QUEUE] = [Delivery(b"not json", {}, "m1")]
    await memory.run_until_idle()
    (letter,) = memory.queues[DEAD_QUEUE]
    assert letter.headers["x-hsqbo-error-category"] == "unparseable"
    assert letter.headers["x-hsqbo-source-queue"] == CHANGES_QUEUE


async def test_a_record_with_no_link_yet_settles_first_then_its_burst_is_one_apply(store: Store) -> None:
    engine = Engine()
    worker, memory, clock = await started(store, engine, unlinked_settle_seconds=0.5)
    await worker.scheduler.changed([change("9", event="created")], Lane.LIVE, source_queue=CHANGES_QUEUE)
    await memory.publish([change("9", event=f"property{n}") for n in range(5)])  # the creation's property events
    await memory.run_until_idle()
    assert engine.applied == []  # an echo's counterpart may be linking it right now
    clock.now += 0.5
    await memory.run_until_idle()
    assert engine.applied == ["acme:9"]


def test_a_connections_unclaimed_work_is_still_queued_while_its_bulk_queue_or_the_live_queue_holds_commands() -> None:
    assert still_queued(0, {"acme": 3, "zeta": 0}) == {"acme"}
    assert still_queued(1, {"acme": 0, "zeta": 0}) == {"acme", "zeta"}
    assert still_queued(0, {"acme": 0, "zeta": 0}) == frozenset()


async def test_the_sweep_leaves_a_backfills_queued_work_in_its_queue_and_publishes_a_lost_command_once_drained(
    store: Store,
) -> None:
    engine = Engine()
    await linked(store, *(str(n) for n in range(100, 110)))
    worker, memory, clock = await started(store, engine)
    backfill = [change(str(n)) for n in range(100, 110)]
    await worker.scheduler.changed(backfill, Lane.BULK, source_queue=BULK_CHANGES_QUEUE)
    memory.queues[bulk_apply_queue("acme")].pop()  # one command lost
    clock.now += 10 * worker.settings.sweep_seconds  # queued long past the sweep's grace

    assert await worker.scheduler.sweep() == 0  # nothing published again: the commands still wait in the queue
    assert len(memory.commands(bulk_apply_queue("acme"))) == 9
    await memory.run_until_idle()
    assert await worker.scheduler.sweep() == 1  # drained: the record whose command was lost is published again
    await memory.run_until_idle()
    assert sorted(engine.applied) == sorted(f"acme:{n}" for n in range(100, 110))

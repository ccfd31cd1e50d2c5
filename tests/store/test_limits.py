"""The store as the rate limiter's backend and as the home of cross-process leases: windows, in-flight slots with
leases, pauses, named locks, deferred pending work, and two OS processes sharing one limit."""

from __future__ import annotations

import asyncio
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from shared.clients import RateLimiter
from shared.domain import Kind, PendingKey, Provider
from shared.quotas import Quota, Window
from shared.store import Store, open_store
from tests.store.conftest import race_processes

HOLD = 40.0
NOW = 1_000.0


async def test_window_refuses_past_its_limit_until_the_oldest_use_stops_counting(store: Store) -> None:
    quota = Quota((Window("realm:minute", 2, 60.0),))
    for ticket in (1, 2):
        assert (await store.take_quota(quota, ticket, NOW + ticket, HOLD)).granted
        await store.finish_quota(ticket, NOW + ticket)
    refused = await store.take_quota(quota, 3, NOW + 10, HOLD)
    assert not refused.granted
    assert refused.exact
    assert refused.wait == 51.0  # ticket 1 ended at NOW + 1: it counts until NOW + 61
    assert (await store.take_quota(quota, 3, NOW + 61, HOLD)).granted


async def test_use_in_flight_counts_until_its_lease_then_until_a_window_after_it_ends(store: Store) -> None:
    quota = Quota((Window("k", 1, 10.0),))
    assert (await store.take_quota(quota, 1, NOW, HOLD)).granted
    in_flight = await store.take_quota(quota, 2, NOW + 20, HOLD)
    assert not in_flight.granted
    assert not in_flight.exact  # it may end any moment
    assert in_flight.wait == HOLD + 10 - 20
    await store.finish_quota(1, NOW + 25)
    assert not (await store.take_quota(quota, 2, NOW + 34, HOLD)).granted
    assert (await store.take_quota(quota, 2, NOW + 35, HOLD)).granted


async def test_refused_call_takes_nothing_from_any_window(store: Store) -> None:
    realm = Window("realm", 10, 60.0)
    batch = Window("batch", 1, 60.0)
    assert (await store.take_quota(Quota((realm, batch)), 1, NOW, HOLD)).granted
    assert not (await store.take_quota(Quota((realm, batch)), 2, NOW, HOLD)).granted
    admitted = await store.take_quota(Quota((realm,)), 3, NOW, HOLD)
    assert admitted.granted
    assert admitted.room == 8  # tickets 1 and 3 only


async def test_in_flight_slots_free_on_finish_or_when_the_lease_runs_out(store: Store) -> None:
    quota = Quota((Window("minute", 100, 60.0),), "realm", 2)
    assert (await store.take_quota(quota, 1, NOW, HOLD)).granted
    assert (await store.take_quota(quota, 2, NOW, HOLD)).granted
    full = await store.take_quota(quota, 3, NOW, HOLD)
    assert not full.granted
    assert full.wait == HOLD
    await store.finish_quota(1, NOW + 1)
    assert (await store.take_quota(quota, 3, NOW + 1, HOLD)).granted
    assert not (await store.take_quota(quota, 4, NOW + 1, HOLD)).granted
    assert (await store.take_quota(quota, 4, NOW + HOLD, HOLD)).granted  # ticket 2's process died


async def test_pause_blocks_every_quota_with_the_key_and_a_shorter_one_does_not_cut_it(store: Store) -> None:
    quota = Quota((Window("realm:minute", 100, 60.0), Window("realm:batch", 40, 60.0)), "realm", 10)
    await store.pause_quota("realm:minute", NOW + 60)
    await store.pause_quota("realm:minute", NOW + 5)
    paused = await store.take_quota(quota, 1, NOW, HOLD)
    assert not paused.granted
    assert paused.wait == 60.0
    assert (await store.take_quota(Quota((Window("other", 1, 1.0),)), 2, NOW, HOLD)).granted
    assert (await store.take_quota(quota, 1, NOW + 60, HOLD)).granted


async def test_lock_has_one_owner_until_released_or_expired(store: Store) -> None:
    assert await store.acquire_lock("oauth:acme:quickbooks", "a", NOW, 60.0)
    assert not await store.acquire_lock("oauth:acme:quickbooks", "b", NOW + 1, 60.0)
    assert await store.acquire_lock("oauth:acme:quickbooks", "a", NOW + 1, 60.0)  # renewed by its owner
    await store.release_lock("oauth:acme:quickbooks", "b")  # not b's to release
    assert not await store.acquire_lock("oauth:acme:quickbooks", "b", NOW + 2, 60.0)
    await store.release_lock("oauth:acme:quickbooks", "a")
    assert await store.acquire_lock("oauth:acme:quickbooks", "b", NOW + 2, 60.0)
    assert await store.acquire_lock("oauth:acme:quickbooks", "c", NOW + 62, 60.0)  # b died holding it


async def test_deferred_work_survives_its_finish_and_comes_due_after_until_or_on_release(store: Store) -> None:
    key = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "1")
    other = PendingKey("other", Kind.CONTACT, Provider.HUBSPOT, "2")
    for pending in (key, other):
        await store.touch_pending(pending, NOW)
        claimed = await store.claim_pending(pending, "worker", NOW, 120.0)
        assert claimed is not None
        await store.defer_pending(pending, NOW + 300)
        assert not await store.finish_pending(pending, "worker", claimed.generation)  # the row stays
    assert await store.claim_pending(key, "worker", NOW + 1, 120.0) is None
    assert await store.due_pending(NOW + 299, 0, 0) == []
    assert await store.due_pending(NOW + 300, 0, 0) == [key, other]
    assert await store.release_deferred("acme") == 1
    assert await store.due_pending(NOW + 1, 0, 0) == [key]


# --- two processes ------------------------------------------------------------------------------------------------

LIMIT = 4
WINDOW = 0.25  # seconds
MAX_IN_FLIGHT = 2
CALLS = 12  # per process, from 3 tasks each
QUOTA = Quota((Window("shared:window", LIMIT, WINDOW),), "shared", MAX_IN_FLIGHT)


def _calls(url: str, out: str, start: Event) -> None:
    start.wait()
    spans = asyncio.run(_calls_async(url))
    Path(out).write_text("\n".join(f"{arrived} {ended}" for arrived, ended in spans))


def _spans(outs: list[str]) -> list[tuple[float, float]]:
    return [
        (float(line.split()[0]), float(line.split()[1])) for out in outs for line in Path(out).read_text().splitlines()
    ]


async def _calls_async(url: str) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    async with open_store(url) as store:
        limiter = RateLimiter(store, hold_seconds=HOLD, poll_seconds=0.005)

        async def task(count: int) -> None:
            for _ in range(count):
                async with limiter.admitted(QUOTA):
                    arrived = time.time()  # as a provider would see the call: after the take, before its finish
                    await asyncio.sleep(0.005)
                    spans.append((arrived, time.time()))

        await asyncio.gather(*(task(CALLS // 3) for _ in range(3)))
    return spans


async def test_two_processes_on_one_store_never_exceed_the_window_or_the_in_flight_cap(
    shared_url: str, tmp_path: Path
) -> None:
    async with open_store(shared_url):
        pass  # migrated once, before the processes race
    outs = [str(tmp_path / f"spans-{n}.txt") for n in range(2)]
    assert await race_processes(_calls, [(shared_url, out) for out in outs]) == [0, 0]

    spans = _spans(outs)
    assert len(spans) == 2 * CALLS
    for arrived, _ in spans:
        # What the provider would count: arrivals in the window before this one, calls in flight at it.
        in_window = sum(1 for other, _ in spans if arrived - WINDOW < other <= arrived)
        assert in_window <= LIMIT
        in_flight = sum(1 for other, ended in spans if other <= arrived < ended)
        assert in_flight <= MAX_IN_FLIGHT

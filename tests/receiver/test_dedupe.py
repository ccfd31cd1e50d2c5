"""The receiver's dedupe window, on a mocked clock."""

from __future__ import annotations

import asyncio

from services.receiver._dedupe import DedupeWindow


def seen(window: DedupeWindow, key: str) -> bool:
    return window.triage([key])[2] == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_queued_event_is_seen_until_the_window_passes() -> None:
    clock = Clock()
    window = DedupeWindow(seconds=60, max_entries=10, clock=clock)
    window.begin(["a"])
    window.end(["a"], queued=True)
    clock.now = 59
    assert seen(window, "a")
    clock.now = 61
    assert not seen(window, "a")


async def test_an_event_that_failed_to_queue_is_not_remembered() -> None:
    window = DedupeWindow(seconds=60, max_entries=10, clock=Clock())
    window.begin(["a"])
    window.end(["a"], queued=False)
    assert not seen(window, "a")


async def test_the_oldest_entries_go_first_past_the_size_bound() -> None:
    window = DedupeWindow(seconds=60, max_entries=2, clock=Clock())
    for key in "abc":
        window.begin([key])
        window.end([key], queued=True)
    assert not seen(window, "a")
    assert seen(window, "b")
    assert seen(window, "c")
    assert len(window) == 2


async def test_a_concurrent_delivery_waits_for_the_first_ones_outcome() -> None:
    window = DedupeWindow(seconds=60, max_entries=10, clock=Clock())
    window.begin(["a"])
    positions, waiting, _ = window.triage(["a"])
    assert positions == []
    pending = waiting[0]
    asyncio.get_running_loop().call_soon(lambda: window.end(["a"], queued=True))
    assert await pending is True
    assert window.triage(["a"]) == ([], [], 1)  # now queued: a duplicate


async def test_an_event_past_the_window_is_not_seen_even_before_anything_new_is_queued() -> None:
    clock = Clock()
    window = DedupeWindow(seconds=60, max_entries=10, clock=clock)
    window.begin(["a"])
    window.end(["a"], queued=True)
    clock.now = 61
    assert not seen(window, "a")  # entries past the window are dropped lazily; seen() never believes them
    window.begin(["b"])
    window.end(["b"], queued=True)
    assert len(window) == 1  # and the next queued event drops them


async def test_triage_sorts_a_requests_keys_in_one_pass() -> None:
    window = DedupeWindow(seconds=60, max_entries=10, clock=Clock())
    window.begin(["queued"])
    window.end(["queued"], queued=True)
    window.begin(["in flight"])
    positions, waiting, duplicates = window.triage(["new", "queued", "in flight", "new", "other"])
    assert positions == [0, 4]  # the first of equal keys
    assert len(waiting) == 1
    assert duplicates == 2  # queued inside the window, and a repeat of this request's own key

"""The dead-letter guard trips only on a full sample whose dead-letter share exceeds the ratio."""

from __future__ import annotations

from services.worker._guard import DeadLetterGuard


def test_guard_waits_for_a_full_sample() -> None:
    guard = DeadLetterGuard(max_ratio=0.5, sample=4)
    assert [guard.record(dead_lettered=True) for _ in range(3)] == [False, False, False]
    assert guard.record(dead_lettered=True)


def test_guard_trips_only_above_the_ratio_of_the_latest_sample() -> None:
    guard = DeadLetterGuard(max_ratio=0.5, sample=4)
    for dead in (True, True, False, False):
        assert not guard.record(dead_lettered=dead)  # 2 of 4 is not more than half
    assert not guard.record(dead_lettered=True)  # the oldest dead letter leaves the window: still 2 of 4
    assert not guard.record(dead_lettered=True)  # and the next: still 2 of 4
    assert guard.record(dead_lettered=True)  # the first success leaves: 3 of 4


def test_a_ratio_of_one_never_trips() -> None:
    guard = DeadLetterGuard(max_ratio=1.0, sample=2)
    assert not any(guard.record(dead_lettered=True) for _ in range(10))

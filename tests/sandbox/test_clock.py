from __future__ import annotations

import pytest

from hsqbo_sandbox import SandboxClock


def test_advance_moves_now_forward_by_exactly_the_given_seconds() -> None:
    clock = SandboxClock(wall=lambda: 1_000.0)
    assert clock.now() == 1_000.0
    assert clock.advance(3600) == 4_600.0
    assert clock.now() == 4_600.0
    assert clock.offset == 3600


def test_clock_never_moves_back() -> None:
    with pytest.raises(ValueError, match="forward"):
        SandboxClock().advance(-1)


def test_catch_up_reaches_a_restored_offset_and_never_goes_back() -> None:
    clock = SandboxClock(wall=lambda: 1_000.0)
    assert clock.catch_up(600) == 1_600.0
    assert clock.catch_up(60) == 1_600.0
    assert clock.offset == 600

"""The read budget's decisions: the mode, and the CDC interval adapting to the reads left this month."""

from __future__ import annotations

import datetime as dt

from shared.budget import ReadMode, cdc_interval, month_end, read_mode

BUDGET = 500_000
MID_MONTH = dt.datetime(2026, 12, 16, 0, 0, tzinfo=dt.UTC).timestamp()  # 16 days left


def interval(used: int, now: float = MID_MONTH, reads_per_poll: int = 1) -> float:
    return cdc_interval(
        used=used, budget=BUDGET, now=now, reads_per_poll=reads_per_poll, min_seconds=5.0, max_seconds=900.0
    )


def test_the_month_ends_at_midnight_utc_of_the_next_months_first_day() -> None:
    assert month_end(MID_MONTH) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    assert (
        month_end(dt.datetime(2026, 2, 28, 23, 59, tzinfo=dt.UTC).timestamp())
        == dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()
    )


def test_reads_are_degraded_from_90_percent_of_the_budget() -> None:
    assert read_mode(449_999, BUDGET) is ReadMode.NORMAL
    assert read_mode(450_000, BUDGET) is ReadMode.DEGRADED
    assert read_mode(600_000, BUDGET) is ReadMode.DEGRADED


def test_a_company_with_reads_to_spare_is_polled_every_few_seconds() -> None:
    # 450,000 reads to spare over 16 days: half of them is 0.16 reads/s, one read every 6.1 s
    assert 6.0 < interval(0) < 6.2
    assert interval(0, reads_per_poll=4) == 4 * interval(0)  # a poll costing more reads comes less often
    assert interval(0, now=dt.datetime(2026, 12, 31, 12, tzinfo=dt.UTC).timestamp()) == 5.0  # never under the floor


def test_a_company_nearing_its_budget_is_polled_less_and_less() -> None:
    spent = [0, 200_000, 400_000, 440_000, 449_000]
    intervals = [interval(used) for used in spent]
    assert intervals == sorted(intervals)
    assert intervals[-1] > 10 * intervals[0]
    assert interval(450_000) == 900.0  # degraded: the slowest
    assert interval(2 * BUDGET) == 900.0

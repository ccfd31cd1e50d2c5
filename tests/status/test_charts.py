"""The overview's charts: records synced and their lag cut in buckets (per minute, p50 and p95, nearest rank), drawn
as SVG with a bar or a point per bucket that has data."""

from __future__ import annotations

import re

from services.status._charts import DAY, HOUR, buckets, lag_chart, percentile, synced_chart
from shared.domain import Kind
from shared.store import SyncedRecord

NOW = 1_800_000_000.0


def synced(at: float, lag: float | None = None) -> SyncedRecord:
    return SyncedRecord("acme", Kind.CONTACT, at, lag)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([], 0.5) is None


def test_the_hour_is_sixty_minutes_of_records_and_lag() -> None:
    records = [synced(NOW - 30, 1.0), synced(NOW - 20, 3.0), synced(NOW - 10), synced(NOW - 90, 10.0)]
    records.append(synced(NOW - 3700, 1.0))  # before the hour: left out
    rows = buckets(records, HOUR, NOW)
    assert len(rows) == 60
    last, before = rows[-1], rows[-2]
    assert (last.synced, last.per_minute, last.lag_p50, last.lag_p95) == (3, 3.0, 1.0, 3.0)
    assert (before.synced, before.lag_p50) == (1, 10.0)
    assert sum(b.synced for b in rows) == 4
    assert all(b.lag_p50 is None for b in rows[:-2])


def test_the_day_is_in_quarter_hours_counted_per_minute() -> None:
    rows = buckets([synced(NOW - 60 * n) for n in range(15)], DAY, NOW)
    assert len(rows) == 96
    assert (rows[-1].synced, rows[-1].per_minute) == (15, 1.0)


def test_the_charts_draw_a_bar_and_points_per_bucket_with_data() -> None:
    rows = buckets([synced(NOW - 30, 2.0), synced(NOW - 20, 4.0), synced(NOW - 300, 1.0)], HOUR, NOW)
    bars = str(synced_chart(rows, HOUR, "synced-hour-acme"))
    assert bars.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="synced-hour-acme"')
    assert re.findall(r'data-synced="(\d+)"', bars) == ["1", "2"]
    assert "Records synced per minute, last hour" in bars
    lag = str(lag_chart(rows, HOUR, "lag-hour-acme"))
    assert re.findall(r'class="p50" data-seconds="([\d.]+)"', lag) == ["1.000", "2.000"]
    assert re.findall(r'class="p95" data-seconds="([\d.]+)"', lag) == ["1.000", "4.000"]
    assert lag.count("<polyline") == 2


def test_an_empty_window_draws_its_axes_and_no_data() -> None:
    rows = buckets([], DAY, NOW)
    assert "<rect" not in str(synced_chart(rows, DAY, "synced-day-acme"))
    assert "<circle" not in str(lag_chart(rows, DAY, "lag-day-acme"))


def test_a_title_is_escaped() -> None:
    assert 'id="x&#34;&gt;"' in str(synced_chart(buckets([], HOUR, NOW), HOUR, 'x">'))

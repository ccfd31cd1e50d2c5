"""The overview's charts, drawn by the server as inline SVG (no JavaScript): records synced per minute and the
edit-to-other-side lag (p50, p95), over the last hour (1-minute buckets) and the last day (15-minute buckets), from
the records the workers synced (`Store.synced`, written through shared/heartbeat.py). Pure functions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from shared.store import SyncedRecord

WIDTH, HEIGHT = 560, 150
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 18, 22  # margins: the y labels left, the x labels below


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    name: str  # "hour", "day"
    seconds: float
    bucket_seconds: float


HOUR = Window("hour", 3600.0, 60.0)
DAY = Window("day", 86400.0, 900.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Bucket:
    start: float  # epoch seconds
    synced: int
    per_minute: float
    lag_p50: float | None  # seconds; None when no record of the bucket has a known lag
    lag_p95: float | None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (0 < fraction <= 1) of `values`; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def buckets(records: Sequence[SyncedRecord], window: Window, now: float) -> list[Bucket]:
    """The window ending at `now` cut in buckets, oldest first, each with its records synced and their lag."""
    count = int(window.seconds // window.bucket_seconds)
    start = now - count * window.bucket_seconds
    synced = [0] * count
    lags: list[list[float]] = [[] for _ in range(count)]
    for record in records:
        index = min(int((record.at - start) // window.bucket_seconds), count - 1)  # one synced at `now`: the last
        if start <= record.at <= now:
            synced[index] += 1
            if record.lag_seconds is not None:
                lags[index].append(max(record.lag_seconds, 0.0))
    minutes = window.bucket_seconds / 60
    return [
        Bucket(start + i * window.bucket_seconds, synced[i], synced[i] / minutes, percentile(lags[i], 0.5),
               percentile(lags[i], 0.95))
        for i in range(count)
    ]  # fmt: skip


def _clock(at: float, window: Window) -> str:
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    return moment.strftime("%H:%M") if window is HOUR else moment.strftime("%d %b %H:%M")


def _nice_max(value: float) -> float:
    """A round top for the y axis at or above `value` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 5, 10) if step * power >= value)


def _frame(title: str, chart_id: str, top: float, unit: str, first: float, last: float, window: Window) -> list[str]:
    bottom_y = HEIGHT - BOTTOM
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="12" font-size="12" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{bottom_y}" x2="{WIDTH - RIGHT}" y2="{bottom_y}" stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom_y}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" font-size="10" text-anchor="end">{top:g}{escape(unit)}</text>',
        f'<text x="{LEFT - 4}" y="{bottom_y}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 6}" font-size="10">{_clock(first, window)}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" font-size="10" text-anchor="end">'
        f"{_clock(last, window)} UTC</text>",
    ]


def synced_chart(rows: Sequence[Bucket], window: Window, chart_id: str) -> Markup:
    """Bars: records synced per minute in each bucket."""
    top = _nice_max(max((b.per_minute for b in rows), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(rows), 1)
    end = rows[-1].start + window.bucket_seconds if rows else 0.0
    parts = _frame(f"Records synced per minute, last {window.name}", chart_id, top, "", rows[0].start if rows else 0,
                   end, window)  # fmt: skip
    for i, bucket in enumerate(rows):
        if not bucket.synced:
            continue
        height = plot_h * bucket.per_minute / top
        parts.append(
            f'<rect class="bar" data-synced="{bucket.synced}" x="{LEFT + i * step:.1f}" '
            f'y="{TOP + plot_h - height:.1f}" width="{max(step - 1, 1):.1f}" height="{height:.1f}" fill="#4a7">'
            f"<title>{_clock(bucket.start, window)}: {bucket.synced} synced ({bucket.per_minute:.1f}/min)</title>"
            "</rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def lag_chart(rows: Sequence[Bucket], window: Window, chart_id: str) -> Markup:
    """Lines: the lag's p50 and p95 in each bucket with records of known lag (gaps where none)."""
    top = _nice_max(max((b.lag_p95 for b in rows if b.lag_p95 is not None), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(rows), 1)
    end = rows[-1].start + window.bucket_seconds if rows else 0.0
    parts = _frame(f"Edit-to-other-side lag p50 / p95, last {window.name}", chart_id, top, " s",
                   rows[0].start if rows else 0, end, window)  # fmt: skip
    for name, color in (("p95", "#c63"), ("p50", "#36c")):
        points = [
            (LEFT + (i + 0.5) * step, TOP + plot_h - plot_h * value / top, bucket, value)
            for i, bucket in enumerate(rows)
            if (value := bucket.lag_p95 if name == "p95" else bucket.lag_p50) is not None
        ]
        if len(points) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(f'<polyline class="{name}" points="{line}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for x, y, bucket, value in points:
            parts.append(
                f'<circle class="{name}" data-seconds="{value:.3f}" cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{color}">'
                f"<title>{_clock(bucket.start, window)}: {name} {value:.1f} s</title></circle>"
            )
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="12" font-size="10" text-anchor="end">'
        '<tspan fill="#36c">p50</tspan> <tspan fill="#c63">p95</tspan></text></svg>'
    )
    return Markup("".join(parts))

"""Latency percentiles and the per-run summary every benchmark reports."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (`fraction` 0.99 for p99); no interpolation, so the
    answer is always a latency that was really observed."""
    if not ordered:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1]")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    """What one load run measured inside its measuring window (warm-up excluded)."""

    seconds: float
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]  # HTTP status (or "error:<exception>" when no answer came) -> count

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not status.startswith("2"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "statuses": dict(sorted(self.statuses.items())),
            "non_2xx": self.non_2xx,
        }


def summarize(seconds: float, latencies: list[float], statuses: Counter[str]) -> RunSummary:
    """`latencies` in seconds, one per request answered inside the window."""
    if not latencies:
        raise RuntimeError(f"no request completed in the measuring window (statuses: {dict(statuses)})")
    ordered = sorted(latencies)
    return RunSummary(
        seconds=seconds,
        requests=sum(statuses.values()),
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=ordered[-1] * 1000,
        statuses=dict(statuses),
    )

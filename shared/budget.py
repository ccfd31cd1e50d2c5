"""The QBO read budget's decisions, as pure functions: the mode a company's reads are in, and how often the poller
asks its change data capture (CDC).

Intuit meters QBO reads (CorePlus calls) per company and calendar month (Builder tier: 500,000); past the budget
QuickBooks refuses reads until the month ends and shows the app as "Offline" to the customer. Writes are not
metered. So hsqbo spends reads where they buy the most, and slows down before the ceiling:

- **normal**, below `DEGRADED_SHARE` of the budget: a record is read on its own; the poller polls CDC as often as
  the reads to spare allow (`POLL_SHARE` of them, spread over the rest of the month), down to every
  `HSQBO_QBO_CDC_MIN_SECONDS`: QBO edits are seen in seconds even when Intuit's webhook lags minutes.
- **degraded**, from `DEGRADED_SHARE`: records read together are read by one CDC call per entity instead of one
  read each (`shared/clients/_degraded.py`), and the poller polls CDC every `HSQBO_QBO_CDC_MAX_SECONDS`.

The alert `HsqboQboReadBudget` fires earlier, at 80 % (`deploy/prometheus/hsqbo-alerts.yml`).
"""

from __future__ import annotations

import datetime as dt
import enum

ALERT_SHARE = 0.8  # the alert's threshold (kept equal to the rule's)
DEGRADED_SHARE = 0.9  # from here on reads are batched and polling slows to its slowest
POLL_SHARE = 0.5  # of the reads to spare before the degraded mode, the share polling may spend


class ReadMode(enum.StrEnum):
    NORMAL = "normal"
    DEGRADED = "degraded"


def read_mode(used: int, budget: int) -> ReadMode:
    """Normal below `DEGRADED_SHARE` of the budget, degraded from there (and past it)."""
    return ReadMode.DEGRADED if used >= DEGRADED_SHARE * budget else ReadMode.NORMAL


def month_end(now: float) -> float:
    """The epoch second the calendar month (UTC) of `now` ends: when Intuit's monthly count starts again."""
    today = dt.datetime.fromtimestamp(now, dt.UTC)
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp()


def cdc_interval(
    *, used: int, budget: int, now: float, reads_per_poll: int, min_seconds: float, max_seconds: float
) -> float:
    """Seconds until the next CDC poll of a company that has spent `used` of its monthly `budget` of reads, a poll
    costing `reads_per_poll`: polling may spend `POLL_SHARE` of the reads left before the degraded mode, spread
    evenly over the rest of the month; within [min_seconds, max_seconds], and max_seconds once degraded."""
    spare = DEGRADED_SHARE * budget - used
    if read_mode(used, budget) is ReadMode.DEGRADED or spare <= 0:
        return max_seconds
    reads_per_second = POLL_SHARE * spare / max(month_end(now) - now, 1.0)
    return min(max(reads_per_poll / reads_per_second, min_seconds), max_seconds)

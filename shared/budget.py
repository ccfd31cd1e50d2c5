"""API usage and the QBO read budget: what a provider call counts as (`call_kind`: read or write), the keys the
counts are kept under (per account, provider, kind and calendar month, UTC) and the store's role that keeps them
(`UsageBackend`); and the budget's decisions, as pure functions: the mode a company's reads are in, and how often
the poller asks its change data capture (CDC). The counting itself is `shared/clients/_usage.py`.

Intuit's App Partner Program meters QBO's **CorePlus** calls (data out: reads, queries, CDC, reports) per company and
month; **Core** calls (data in: creates, updates, deletes, voids) are not metered. A call that only fetches data is a
read, any other a write. Doubts, read the stricter way: a batch counts per item, a query item as a read and a write
item as a write (Intuit's own batch sample says each item is metered like a normal call; Intuit's docs do not say),
counted by `QboClient.batch`; the OAuth token endpoint is not the Accounting API and is not counted; an answered
error (4xx, 5xx, 429) counts like a success (Intuit does not say it is free). HubSpot has no monthly read budget;
its calls are counted the same way, for the status page.

Past a company's budget (Builder tier: 500,000 a month) QuickBooks refuses reads until the month ends and shows the
app as "Offline" to the customer. So hsqbo spends reads where they buy the most, and slows down before the ceiling:

- **normal**, below `DEGRADED_SHARE` of the budget: a record is read on its own; the poller polls CDC as often as
  the reads to spare allow (`POLL_SHARE` of them, spread over the rest of the month), down to every
  `HSQBO_QBO_CDC_MIN_SECONDS`: QBO edits are seen in seconds even when Intuit's webhook lags minutes.
- **degraded**, from `DEGRADED_SHARE`: records read together are read by one CDC call per entity instead of one
  read each (`shared/clients/_degraded.py`), and the poller polls CDC every `HSQBO_QBO_CDC_MAX_SECONDS`.

The alert `HsqboQboReadBudget` fires earlier, at 80 % (`deploy/prometheus/hsqbo-alerts.yml`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Protocol

from shared.domain import Provider

DEGRADED_SHARE = 0.9  # from here on reads are batched and polling slows to its slowest
POLL_SHARE = 0.5  # of the reads to spare before the degraded mode, the share polling may spend


class CallKind(enum.StrEnum):
    READ = "read"
    WRITE = "write"


# Operations (the clients' metric labels) that only fetch data; every other call writes. QBO's are its CorePlus calls.
READ_OPERATIONS: Mapping[Provider, frozenset[str]] = {
    Provider.QUICKBOOKS: frozenset({"read", "query", "count", "cdc", "preferences", "companyinfo", "exchangerate"}),
    Provider.HUBSPOT: frozenset(
        {
            "get",
            "batch_read",
            "search",
            "list_associations",
            "batch_read_associations",
            "account_details",
            "get_property",
        }
    ),
}
# The token endpoint is not the provider's data API; a QBO batch is counted per item by the client.
UNCOUNTED_OPERATIONS = frozenset({"oauth_token", "batch"})


def call_kind(provider: Provider, operation: str) -> CallKind | None:
    """Whether a call reads or writes; None for a call no budget counts."""
    if operation in UNCOUNTED_OPERATIONS:
        return None
    return CallKind.READ if operation in READ_OPERATIONS.get(provider, frozenset()) else CallKind.WRITE


def month_of(epoch_seconds: float) -> str:
    """The calendar month (UTC) a call falls in, as the store keys it: "2026-12"."""
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).strftime("%Y-%m")


@dataclasses.dataclass(frozen=True, slots=True)
class UsageKey:
    provider: Provider
    account: str  # QBO realm id / HubSpot portal id
    kind: CallKind
    month: str  # "2026-12" (UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiUsage:
    """One account's calls of one kind in one month, as the store holds them (what the status page reads)."""

    key: UsageKey
    calls: int


class UsageBackend(Protocol):
    async def add_api_calls(self, counts: Mapping[UsageKey, int]) -> dict[UsageKey, int]:
        """Add each count to its key's total; returns the new totals."""
        ...

    async def api_usage(
        self, month: str, *, provider: Provider | None = None, account: str | None = None
    ) -> list[ApiUsage]: ...


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

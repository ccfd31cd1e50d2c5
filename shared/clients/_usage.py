"""API usage: every provider call counted per account, provider, kind (read / write) and calendar month (UTC).

QBO meters reads: under Intuit's App Partner Program an app's **CorePlus** calls (data out: reads, queries, CDC,
reports) are counted per company and month against its tier (Builder: 500,000), while **Core** calls (data in:
creates, updates, deletes, voids) are not metered. hsqbo counts a call as a read when it only fetches data, else as
a write (`call_kind`). Doubts, read the stricter way: a batch counts per item, a query item as a read and a write
item as a write (Intuit's own batch sample says each item is metered like a normal call; Intuit's docs do not say),
counted by `QboClient.batch`; the OAuth token endpoint is not the Accounting API and is not counted; an answered
error (4xx, 5xx, 429) counts like a success (Intuit does not say it is free).
HubSpot has no monthly read budget; its calls are counted the same way, for the status page.

Each process counts in memory and adds its counts to the store (`UsageBackend`, shared by every process) at most
every `flush_seconds`: a process killed loses at most that much of its count. The store's totals of the month are
the fleet's; they set the gauges `hsqbo_api_calls_this_month` (and the QBO read budget's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from shared.envelope import Provider
from shared.logging import get_logger
from shared.metrics import API_CALLS_THIS_MONTH

log = get_logger(__name__)

FLUSH_SECONDS = 5.0


class CallKind(enum.StrEnum):
    READ = "read"
    WRITE = "write"


# Operations (the clients' metric labels) that only fetch data; every other call writes. QBO's are its CorePlus calls.
READ_OPERATIONS: Mapping[Provider, frozenset[str]] = {
    Provider.QUICKBOOKS: frozenset({"read", "query", "count", "cdc", "preferences", "companyinfo", "exchangerate"}),
    Provider.HUBSPOT: frozenset(
        {"get", "batch_read", "search", "list_associations", "account_details", "get_property"}
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
    """One account's calls of one kind in one month, as the store holds them (the status page shows these)."""

    key: UsageKey
    calls: int


class UsageBackend(Protocol):
    async def add_api_calls(self, counts: Mapping[UsageKey, int]) -> dict[UsageKey, int]:
        """Add each count to its key's total; returns the new totals."""
        ...

    async def api_usage(
        self, month: str, *, provider: Provider | None = None, account: str | None = None
    ) -> list[ApiUsage]: ...


class UsageRecorder:
    """One per process (over the store): counts calls and keeps the month's totals the store last reported."""

    def __init__(
        self,
        backend: UsageBackend,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend = backend
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._pending: dict[UsageKey, int] = {}
        self._saving: dict[UsageKey, int] = {}  # the counts a flush is adding to the store right now
        self._totals: dict[UsageKey, int] = {}  # the store's, as of the last flush or read
        self._flushed_at = clock()
        self._connections: dict[tuple[Provider, str], set[str]] = {}  # account -> connections (gauge labels)
        self._flushing: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()  # one flush at a time: totals never go back

    def meter(self, connection: str, provider: Provider, account: str) -> UsageMeter:
        self._connections.setdefault((provider, account), set()).add(connection)
        return UsageMeter(self, provider, account)

    def count(self, provider: Provider, account: str, operation: str) -> None:
        """One call answered; the counts go to the store in the background once `flush_seconds` have passed, so a
        call never waits for the store."""
        kind = call_kind(provider, operation)
        if kind is None:
            return
        key = UsageKey(provider, account, kind, month_of(self._clock()))
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._clock() - self._flushed_at >= self._flush_seconds and (
            self._flushing is None or self._flushing.done()
        ):
            self._flushed_at = self._clock()
            self._flushing = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Add the counts since the last flush to the store. A store error keeps them for the next flush: counting
        never fails a call."""
        async with self._flush_lock:
            self._flushed_at = self._clock()
            self._saving, self._pending = self._pending, {}
            if not self._saving:
                return
            try:
                totals = await self._backend.add_api_calls(self._saving)
            except Exception as exc:  # the store is down: the sync's own calls will say so
                for key, calls in self._saving.items():
                    self._pending[key] = self._pending.get(key, 0) + calls
                log.warning("api_usage_not_saved", error=str(exc)[:200])
                return
            finally:
                self._saving = {}
            self._totals.update(totals)
            current = month_of(self._clock())
            for key, total in totals.items():
                if key.month == current:
                    for connection in self._connections.get((key.provider, key.account), ()):
                        API_CALLS_THIS_MONTH.labels(connection, key.provider, key.kind).set(total)

    async def month_calls(self, provider: Provider, account: str, kind: CallKind) -> int:
        """The account's calls of `kind` this month: the store's total (read once, then kept from each flush) plus
        this process's counts not in it yet."""
        key = UsageKey(provider, account, kind, month_of(self._clock()))
        if key not in self._totals:
            rows = await self._backend.api_usage(key.month, provider=provider, account=account)
            self._totals[key] = next((row.calls for row in rows if row.key == key), 0)
        return self._totals[key] + self._saving.get(key, 0) + self._pending.get(key, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class UsageMeter:
    """One account's calls, handed to its client's session."""

    recorder: UsageRecorder
    provider: Provider
    account: str

    def count(self, operation: str) -> None:
        self.recorder.count(self.provider, self.account, operation)

    async def month_calls(self, kind: CallKind) -> int:
        return await self.recorder.month_calls(self.provider, self.account, kind)

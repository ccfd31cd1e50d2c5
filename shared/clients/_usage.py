"""API usage: every provider call counted per account, provider, kind (read / write) and calendar month (UTC); what
counts as which kind, and the keys, are `shared.budget`'s.

Each process counts in memory and adds its counts to the store (`UsageBackend`, shared by every process) at most
every `flush_seconds`: a process killed loses at most that much of its count. The store's totals of the month are
the fleet's; they set the gauge `hsqbo_api_calls_this_month`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from shared.budget import CallKind, UsageBackend, UsageKey, call_kind, month_of
from shared.domain import Provider
from shared.logging import get_logger
from shared.metrics import API_CALLS_THIS_MONTH

log = get_logger(__name__)

FLUSH_SECONDS = 5.0


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

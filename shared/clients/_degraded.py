"""QBO reads near the monthly read budget (the degraded mode of `shared/budget.py`): records read together are read
by one change-data-capture call per entity instead of one `Id in` query per batch.

Which reads are read together is the coalescer's business (`_batching.py`, wired by `QboClient`): one batch of reads
of an entity asks `read_many` first. CDC answers every record of the entity changed in the last `lookback_seconds`:
the records a webhook or the poller just reported, each as it is now (the call starts after each read was asked
for, so never an older snapshot). A record not in the answer (unchanged for longer, such as a counterpart), deleted
(CDC's answer is then only a stub), or left out of an answer CDC cut at its 1,000 objects, is read as usual; so is a
record read alone (one CDC call would cost as much as its read).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.budget import CallKind, ReadMode, read_mode
from shared.clients._usage import UsageMeter
from shared.metrics import QBO_READS_DEGRADED

LOOKBACK_SECONDS = 3600.0

QboRecord = dict[str, Any]
Cdc = Callable[[Sequence[str], dt.datetime], Awaitable[dict[str, list[QboRecord]]]]


class DegradedReads:
    """One QBO company's reads by CDC, used while its reads this month are past the degraded share of `budget`."""

    def __init__(
        self,
        meter: UsageMeter,
        budget: int,
        *,
        connection: str,
        lookback_seconds: float = LOOKBACK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._meter = meter
        self._budget = budget
        self._connection = connection
        self._lookback = lookback_seconds
        self._clock = clock

    async def active(self) -> bool:
        degraded = read_mode(await self._meter.month_calls(CallKind.READ), self._budget) is ReadMode.DEGRADED
        QBO_READS_DEGRADED.labels(self._connection).set(int(degraded))
        return degraded

    async def read_many(self, cdc: Cdc, entity: str, ids: Sequence[str]) -> dict[str, QboRecord]:
        """The records of `ids` one CDC call answers (by id); the others are for the caller to read."""
        since = dt.datetime.fromtimestamp(self._clock() - self._lookback, dt.UTC)
        rows = (await cdc([entity], since)).get(entity, [])
        wanted = set(ids)
        # A record in the answer is current even when CDC cut it at 1,000 objects; one left out is read alone.
        return {
            str(row.get("Id")): row for row in rows if row.get("status") != "Deleted" and str(row.get("Id")) in wanted
        }

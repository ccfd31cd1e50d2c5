"""QBO reads near the monthly read budget (the degraded mode of `shared/budget.py`): records read together are read
by one change-data-capture call per entity instead of one read each.

Reads of one entity that arrive within `gather_seconds` of each other wait for one CDC call, which starts after the
last of them arrived, so each gets the record as it was at or after its own request (never an older snapshot).
CDC answers every record of the entity changed in the last `lookback_seconds`: the records a webhook or the poller
just reported. A record not in the answer (unchanged for longer, such as a counterpart), deleted (CDC's answer is
then only a stub), or left out of an answer CDC cut at its 1,000 objects, is read on its own as usual; so is a
record read alone (one CDC call would cost as much as its read).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.budget import CallKind, ReadMode, read_mode
from shared.clients._usage import UsageMeter
from shared.metrics import QBO_READS_DEGRADED

LOOKBACK_SECONDS = 3600.0
GATHER_SECONDS = 0.05

QboRecord = dict[str, Any]
Cdc = Callable[[Sequence[str], dt.datetime], Awaitable[dict[str, list[QboRecord]]]]


@dataclasses.dataclass(slots=True)
class _Round:
    ids: set[str]
    answer: asyncio.Future[dict[str, QboRecord] | None]


class DegradedReads:
    """One QBO company's batched reads, used while its reads this month are past the degraded share of `budget`."""

    def __init__(
        self,
        meter: UsageMeter,
        budget: int,
        *,
        connection: str,
        gather_seconds: float = GATHER_SECONDS,
        lookback_seconds: float = LOOKBACK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._meter = meter
        self._budget = budget
        self._connection = connection
        self._gather = gather_seconds
        self._lookback = lookback_seconds
        self._clock = clock
        self._rounds: dict[str, _Round] = {}  # entity -> the CDC call readers arriving now will share
        self._calls: set[asyncio.Task[None]] = set()

    async def active(self) -> bool:
        degraded = read_mode(await self._meter.month_calls(CallKind.READ), self._budget) is ReadMode.DEGRADED
        QBO_READS_DEGRADED.labels(self._connection).set(int(degraded))
        return degraded

    async def read(self, cdc: Cdc, entity: str, entity_id: str) -> QboRecord | None:
        """The record from a CDC call shared with the reads of `entity` arriving meanwhile; None: read it alone."""
        shared = self._rounds.get(entity)
        if shared is None:
            shared = self._rounds[entity] = _Round(set(), asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().call_later(self._gather, self._start, cdc, entity)
        shared.ids.add(entity_id)
        answer = await asyncio.shield(shared.answer)
        return None if answer is None else answer.get(entity_id)

    def _start(self, cdc: Cdc, entity: str) -> None:
        shared = self._rounds.pop(entity)  # readers from now on wait for the next call
        task = asyncio.ensure_future(self._call(cdc, entity, shared))
        self._calls.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._calls.discard)

    async def _call(self, cdc: Cdc, entity: str, shared: _Round) -> None:
        if len(shared.ids) < 2:
            shared.answer.set_result(None)
            return
        since = dt.datetime.fromtimestamp(self._clock() - self._lookback, dt.UTC)
        try:
            rows = (await cdc([entity], since)).get(entity, [])
        except Exception as exc:  # every reader of the round gets the error its own read would have got
            shared.answer.set_exception(exc)
            return
        # A record in the answer is current even when CDC cut it at 1,000 objects; one left out is read alone.
        shared.answer.set_result({str(row.get("Id")): row for row in rows if row.get("status") != "Deleted"})

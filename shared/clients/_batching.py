"""Concurrent single calls of one connection meet in batch calls, DataLoader style, below the sync rules: a rule asks
for one record and gets one record (or its own exception); the clients put the asks of every apply in flight on the
connection together.

    coalescer = Coalescer()                       # one per connection (shared/connections.py builds it)
    with coalescer.applying():                    # the engine, around each apply: "one more apply in flight"
        record = await coalescer.submit(group, item, run, limit=30)

`submit` queues `item` in its `group` (what one batch call can carry together: QBO reads of one entity, HubSpot
updates of one object type...); `run(items)` makes the batch call and answers one result per item, in order, where a
result that is an exception is raised to that item's caller alone (one item's fault never fails its neighbours). An
exception `run` raises (a 429, a 5xx, a transport error: the whole call failed) is raised to every caller of the
batch, and the worker's retry policy handles each.

When a group's batch goes:
- at once when it is full (`limit` items);
- as soon as every apply in flight on the connection waits on this coalescer (the engine counts them, `applying`):
  nothing more can join, so waiting longer gains nothing. A lone change is a lone apply: its call goes alone, in the
  next turn of the event loop, with no time window. A call made outside any apply (nothing in flight) goes the same
  way. Every waiting group goes then, each as its own call;
- after `window_seconds` at most (WINDOW_SECONDS), a safety net only: an apply that keeps busy elsewhere (a store
  call, an unbatched API call such as a search) never holds its neighbours' calls for longer than that.

Live changes and catch-up work (`_limits.bulk_calls`: a backfill's applies) never share a batch: each group has a
batch per lane, and its call is made as that lane's, so a live change never waits for the share of the provider's
windows a backfill may take, and a backfill's batch never spends the live share.

A group submitted `one_at_a_time` (its calls are scarce: QBO's 40 `/batch` calls a minute) holds a part-filled batch
while a call of the group is in flight, whatever the above says (group commit): under load the next batch fills while
the previous one waits for the provider's window and its answer, instead of going part-filled and spending a call of
the window on a few items. When that call ends, the batch goes if every apply in flight waits (nothing more can join),
else it gathers on for `hold_seconds` at most (HOLD_SECONDS) while the applies still running reach their calls; with
no call in flight it goes as above. A full batch goes at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from shared.clients._limits import bulk_calls, in_bulk_calls

WINDOW_SECONDS = 0.05
HOLD_SECONDS = 0.5  # a one_at_a_time group's batch gathering on after its group's call ended

Item = TypeVar("Item")
Result = TypeVar("Result")
# One batch call: a result (or the item's own exception) per item, in the items' order.
BatchCall = Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]]


@dataclasses.dataclass(slots=True)
class _Batch(Generic[Item, Result]):
    run: BatchCall[Item, Result]
    bulk: bool  # catch-up work's batch (`_limits.bulk_calls`)
    limit: int
    one_at_a_time: bool
    items: list[Item] = dataclasses.field(default_factory=list)
    answers: list[asyncio.Future[Result]] = dataclasses.field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class Coalescer:
    """One connection's batches in the making, and how many applies it has in flight."""

    def __init__(self, *, window_seconds: float = WINDOW_SECONDS, hold_seconds: float = HOLD_SECONDS) -> None:
        self._window = window_seconds
        self._hold = hold_seconds
        self._in_flight = 0
        self._waiting = 0  # callers whose batch has not gone yet
        self._batches: dict[Hashable, _Batch[Any, Any]] = {}
        self._check_due = False
        self._calls: set[asyncio.Task[None]] = set()
        self._busy: collections.Counter[Hashable] = collections.Counter()  # one_at_a_time groups' calls in flight

    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        """One apply in flight on the connection while the block runs."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._batches:
                self._check_soon()

    async def submit(
        self, group: Hashable, item: Item, run: BatchCall[Item, Result], *, limit: int, one_at_a_time: bool = False
    ) -> Result:
        """`item`'s result from the batch call `run` makes for `group` (the first caller's `run`, `limit` and
        `one_at_a_time` serve the batch)."""
        loop = asyncio.get_running_loop()
        bulk = in_bulk_calls()
        group = (group, bulk)
        batch: _Batch[Item, Result] = self._batches.get(group) or self._batches.setdefault(
            group, _Batch(run, bulk, limit, one_at_a_time, timer=loop.call_later(self._window, self._send, group))
        )
        answer: asyncio.Future[Result] = loop.create_future()
        batch.items.append(item)
        batch.answers.append(answer)
        self._waiting += 1
        if len(batch.items) >= limit:
            self._send(group)
        else:
            self._check_soon()
        try:
            return await answer
        except asyncio.CancelledError:
            if self._batches.get(group) is batch and answer in batch.answers:  # not sent yet: leave the batch
                index = batch.answers.index(answer)
                del batch.items[index], batch.answers[index]
                self._waiting -= 1
                if not batch.items:
                    self._drop(group)
                else:
                    self._check_soon()
            raise

    def _check_soon(self) -> None:
        """Look in the next turn of the loop, so callers woken in this one join first."""
        if not self._check_due:
            self._check_due = True
            asyncio.get_running_loop().call_soon(self._check)

    def _check(self) -> None:
        self._check_due = False
        if self._batches and self._waiting >= self._in_flight:  # every apply in flight waits here
            for group in list(self._batches):
                self._send(group)

    def _drop(self, group: Hashable) -> _Batch[Any, Any] | None:
        batch = self._batches.pop(group, None)
        if batch is not None and batch.timer is not None:
            batch.timer.cancel()
        return batch

    def _send(self, group: Hashable) -> None:
        held = self._batches.get(group)
        if held is not None and held.one_at_a_time and self._busy[group] and len(held.items) < held.limit:
            return  # gathers on: sent when the group's call in flight ends (`_ended`)
        batch = self._drop(group)
        if batch is None:
            return
        self._waiting -= len(batch.items)
        task = asyncio.ensure_future(self._call(batch))
        self._calls.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._calls.discard)
        if batch.one_at_a_time:
            self._busy[group] += 1
            task.add_done_callback(lambda _: self._ended(group))

    def _ended(self, group: Hashable) -> None:
        self._busy[group] -= 1
        if self._busy[group]:
            return
        del self._busy[group]
        held = self._batches.get(group)
        if held is None:
            return
        if len(held.items) >= held.limit or self._waiting >= self._in_flight:
            self._send(group)  # full, or nothing more can join
            return
        if held.timer is not None:
            held.timer.cancel()
        held.timer = asyncio.get_running_loop().call_later(self._hold, self._send, group)

    @staticmethod
    async def _call(batch: _Batch[Any, Any]) -> None:
        try:
            with bulk_calls(batch.bulk):
                results = await batch.run(batch.items)
            if len(results) != len(batch.items):
                raise RuntimeError(f"a batch call answered {len(results)} results for {len(batch.items)} items")
        except Exception as exc:  # the whole call failed: every caller gets its error
            for answer in batch.answers:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except asyncio.CancelledError:
            for answer in batch.answers:
                answer.cancel()
            raise
        for answer, result in zip(batch.answers, results, strict=True):
            if answer.done():
                continue
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)

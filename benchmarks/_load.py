"""Load generators over one aiohttp session: closed loop (a fixed number of connections, each sending its next
request as soon as the previous answer is read) and open loop (requests started on a fixed schedule whatever the
answers do). Both run a warm-up first and measure only requests started inside the measuring window. Times come
from `time.perf_counter` (uvloop's loop clock has millisecond steps).

A request is a `Call`: a label and a coroutine function that sends it and returns the HTTP status, so a call can
read its answer (the sandbox traffic keeps QBO SyncTokens current) and the drivers stay generic.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import uvloop

from benchmarks._stats import RunSummary, summarize

Send = Callable[[aiohttp.ClientSession], Awaitable[int]]
T = TypeVar("T")


def run_load(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's coroutine on uvloop: the stock loop made the Python client the bottleneck at 1,000
    requests/s (the servers run uvloop too, as uvicorn picks it when installed)."""
    return uvloop.run(main)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    label: str  # the kind of request (e.g. "qbo.customer.read"), for per-kind status counts
    send: Send


@dataclasses.dataclass(slots=True)
class _Recorder:
    measure_from: float
    stop_at: float
    last_answer: float = 0.0  # when the last measured request was answered
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=lambda: collections.defaultdict(list))
    statuses: dict[str, Counter[str]] = dataclasses.field(default_factory=lambda: collections.defaultdict(Counter))

    async def run(self, session: aiohttp.ClientSession, call: Call, started: float) -> None:
        """Send `call`; record it when `started` (its start, or when the schedule wanted it to start) is inside
        the window."""
        try:
            outcome = str(await call.send(session))
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = f"error:{type(exc).__name__}"
        if self.measure_from <= started < self.stop_at:
            self.last_answer = time.perf_counter()
            self.latencies[call.label].append(self.last_answer - started)
            self.statuses[call.label][outcome] += 1

    def result(self) -> LoadResult:
        """Rates count every request started in the window over the time until the last one was answered (at
        least the window): a server that falls behind shows a lower rate, not just longer latencies."""
        seconds = max(self.stop_at, self.last_answer) - self.measure_from
        total = summarize(
            seconds,
            list(itertools.chain.from_iterable(self.latencies.values())),
            sum(self.statuses.values(), Counter()),
        )
        by_label = {label: summarize(seconds, self.latencies[label], self.statuses[label]) for label in self.latencies}
        return LoadResult(total, dict(sorted(by_label.items())))


@dataclasses.dataclass(frozen=True, slots=True)
class LoadResult:
    summary: RunSummary
    by_label: dict[str, RunSummary]


def _window(warmup: float, duration: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now + warmup, now + warmup + duration


async def closed_loop(
    session: aiohttp.ClientSession, calls: Iterator[Call], *, connections: int, warmup: float, duration: float
) -> LoadResult:
    """`connections` workers, each with at most one request in flight, until the window ends. `calls` must not
    run out before then."""
    recorder = _Recorder(*_window(warmup, duration))

    async def worker() -> None:
        while (started := time.perf_counter()) < recorder.stop_at:
            call = next(calls, None)
            if call is None:
                raise RuntimeError("the prepared requests ran out before the measuring window ended")
            await recorder.run(session, call, started)

    async with asyncio.TaskGroup() as group:
        for _ in range(connections):
            group.create_task(worker())
    return recorder.result()


async def open_loop(
    session: aiohttp.ClientSession, next_call: Callable[[], Call], *, rate: float, warmup: float, duration: float
) -> LoadResult:
    """Start `rate` requests per second on a fixed schedule. Latency counts from when the schedule wanted the
    request to start, so a server (or client) that falls behind shows it in the latency instead of hiding it
    (no coordinated omission)."""
    recorder = _Recorder(*_window(warmup, duration))
    first = recorder.measure_from - warmup
    total = round((warmup + duration) * rate)
    async with asyncio.TaskGroup() as group:
        for number in range(total):
            due = first + number / rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            group.create_task(recorder.run(session, next_call(), due))
    return recorder.result()

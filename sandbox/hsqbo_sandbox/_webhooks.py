"""WebhookDispatcher: deliver an emulator's change events to a subscriber URL the way the provider does.

`emit(event)` only enqueues (cheap, synchronous, safe inside a request handler). Per partition (QBO: realm,
HubSpot: portal) a background task takes up to `max_batch` queued events, encodes and signs them with the
provider's callables and POSTs them with aiohttp. An answer accepted by `is_ack(status)` within the ack
timeout acknowledges the batch; anything else (other status, timeout, connection error) is a failure, retried
after `retry_delays[attempt - 1]` seconds (the last delay repeats) until `max_attempts` (None: forever). With
`head_of_line_blocking` a failing batch holds back every later event of its partition until it is
acknowledged; without it the partition moves on and the batch is retried on its own.

Faults (see `_faults.py`) drop batches, send acknowledged batches twice (same event ids, like a provider retry
whose ack was lost) and reorder events before batching. `drain(timeout)` waits until nothing is pending, so
tests never sleep. Counters are in `stats()`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from hsqbo_sandbox._faults import Faults
from shared.logging import get_logger

Event = dict[str, Any]

log = get_logger(__name__)


def is_2xx(status: int) -> bool:
    return 200 <= status < 300


@dataclasses.dataclass(slots=True)
class _Batch:
    partition: str
    events: list[Event]
    attempts: int = 0


@dataclasses.dataclass(slots=True)
class DispatcherStats:
    emitted: int = 0  # events accepted by emit()
    delivered: int = 0  # events in acknowledged batches
    deliveries: int = 0  # acknowledged POSTs
    attempts: int = 0  # POSTs tried, including retries and duplicates
    failures: int = 0  # POSTs not acknowledged
    dropped: int = 0  # events lost on purpose (webhook_drop_rate)
    duplicated: int = 0  # batches sent twice on purpose (webhook_duplicate_rate)
    abandoned: int = 0  # events given up after max_attempts
    discarded: int = 0  # events emitted while no URL was configured
    last_status: int | None = None  # HTTP status of the latest attempt (None: no answer)
    last_error: str | None = None


class WebhookDispatcher:
    def __init__(
        self,
        url: str | None,
        *,
        encode_batch: Callable[[list[Event]], bytes],
        sign: Callable[[bytes, str], dict[str, str]],
        content_type: str = "application/json",
        max_batch: int = 100,
        max_in_flight: int = 10,
        retry_delays: Sequence[float] = (10.0,),
        max_attempts: int | None = None,
        head_of_line_blocking: bool = True,
        partition: Callable[[Event], str] = lambda event: "",
        faults: Faults | None = None,
        ack_timeout_seconds: float = 3.0,
        is_ack: Callable[[int], bool] = is_2xx,
        attempt_field: str | None = None,
    ) -> None:
        if not retry_delays:
            raise ValueError("retry_delays needs at least one delay")
        self.url = url
        self.encode_batch = encode_batch
        self.sign = sign
        self.content_type = content_type
        self.max_batch = max_batch
        self.retry_delays = tuple(retry_delays)
        self.max_attempts = max_attempts
        self.head_of_line_blocking = head_of_line_blocking
        self.partition = partition
        self.faults = faults
        self.ack_timeout_seconds = ack_timeout_seconds
        self.is_ack = is_ack
        self.attempt_field = attempt_field  # set in each event to the 0-based attempt (HubSpot's attemptNumber)
        self.counters = DispatcherStats()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._queues: dict[str, collections.deque[Event]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._retries: set[asyncio.Task[None]] = set()
        self._pending = 0  # events emitted and not yet acknowledged, dropped or abandoned
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None

    # lifecycle

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for partition, queue in self._queues.items():
            if queue:
                self._ensure_worker(partition)

    async def stop(self) -> None:
        tasks = [*self._workers.values(), *self._retries]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._retries.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def set_url(self, url: str | None) -> None:
        self.url = url

    # producing

    def emit(self, event: Event) -> None:
        self.counters.emitted += 1
        if not self.url:
            self.counters.discarded += 1
            return
        partition = self.partition(event)
        self._queues.setdefault(partition, collections.deque()).append(event)
        self._pending += 1
        self._idle.clear()
        if self._session is not None:
            self._ensure_worker(partition)

    # observing

    @property
    def pending(self) -> int:
        return self._pending

    def stats(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self.counters),
            "pending": self._pending,
            "retrying_batches": len(self._retries),
            "url": self.url,
        }

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109  # the agreed API: the control route passes one
        """Wait until every emitted event is acknowledged, dropped or abandoned; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # delivering

    def _ensure_worker(self, partition: str) -> None:
        if partition not in self._workers:
            self._workers[partition] = asyncio.create_task(self._run_partition(partition))

    async def _run_partition(self, partition: str) -> None:
        queue = self._queues[partition]
        while queue:
            batch = _Batch(partition, self._take(queue))
            if self.head_of_line_blocking:
                await self._deliver_until_done(batch)
            elif not await self._attempt(batch) and not self._finished_trying(batch):
                task = asyncio.create_task(self._deliver_until_done(batch))
                self._retries.add(task)
                task.add_done_callback(self._retries.discard)
        del self._workers[partition]  # no await since the queue was seen empty: emit() starts a new worker

    def _take(self, queue: collections.deque[Event]) -> list[Event]:
        if self.faults is not None and self.faults.config.webhook_reorder and len(queue) > 1:
            window = [queue.popleft() for _ in range(min(len(queue), 2 * self.max_batch))]
            self.faults.shuffle(window)
            queue.extendleft(reversed(window))
        return [queue.popleft() for _ in range(min(len(queue), self.max_batch))]

    async def _deliver_until_done(self, batch: _Batch) -> None:
        """Attempt (again) after the scheduled delays until acknowledged or out of attempts."""
        if batch.attempts == 0 and await self._attempt(batch):
            return
        while not self._finished_trying(batch):
            await asyncio.sleep(self.retry_delays[min(batch.attempts, len(self.retry_delays)) - 1])
            if await self._attempt(batch):
                return

    def _finished_trying(self, batch: _Batch) -> bool:
        if self.max_attempts is None or batch.attempts < self.max_attempts:
            return False
        self.counters.abandoned += len(batch.events)
        log.warning("webhook batch abandoned", partition=batch.partition, events=len(batch.events),
                    attempts=batch.attempts)  # fmt: skip
        self._settle(batch)
        return True

    async def _attempt(self, batch: _Batch) -> bool:
        """One POST of the batch; True when it is settled (acknowledged or dropped on purpose)."""
        batch.attempts += 1
        if batch.attempts == 1 and self.faults is not None and self.faults.chance(self.faults.config.webhook_drop_rate):
            self.counters.dropped += len(batch.events)
            self._settle(batch)
            return True
        if not await self._post(batch):
            return False
        self.counters.delivered += len(batch.events)
        self.counters.deliveries += 1
        if self.faults is not None and self.faults.chance(self.faults.config.webhook_duplicate_rate):
            self.counters.duplicated += 1
            await self._post(batch)
        self._settle(batch)
        return True

    async def _post(self, batch: _Batch) -> bool:
        url = self.url
        if not url or self._session is None:
            self.counters.failures += 1
            self.counters.last_status, self.counters.last_error = None, "no webhook URL"
            return False
        events = batch.events
        if self.attempt_field is not None:
            events = [{**event, self.attempt_field: batch.attempts - 1} for event in events]
        body = self.encode_batch(events)
        headers = {"Content-Type": self.content_type, **self.sign(body, url)}
        timeout = self.ack_timeout_seconds
        if self.faults is not None and self.faults.config.webhook_timeout_seconds is not None:
            timeout = self.faults.config.webhook_timeout_seconds
        self.counters.attempts += 1
        try:
            async with (
                self._in_flight,
                self._session.post(
                    url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as resp,
            ):
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.counters.failures += 1
            self.counters.last_status, self.counters.last_error = None, type(exc).__name__
            return False
        self.counters.last_status = status
        if self.is_ack(status):
            self.counters.last_error = None
            return True
        self.counters.failures += 1
        self.counters.last_error = f"HTTP {status}"
        return False

    def _settle(self, batch: _Batch) -> None:
        self._pending -= len(batch.events)
        if self._pending == 0:
            self._idle.set()

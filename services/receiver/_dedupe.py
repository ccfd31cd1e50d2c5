"""Which events this receiver has already queued, so a resend is answered 200 without queueing it twice.

Per process and bounded (time window and entry count). That is enough: a duplicate that slips through (another
receiver replica, a restart) costs one redundant re-read in the worker, never a wrong write, because webhooks are
hints and the worker re-reads and debounces. Correctness never depends on this window.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class DedupeWindow:
    def __init__(self, *, seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._clock = clock
        self._queued: OrderedDict[str, float] = OrderedDict()  # key -> when it was confirmed, oldest first
        self._in_flight: dict[str, asyncio.Future[bool]] = {}

    def _expire(self) -> None:
        horizon = self._clock() - self._seconds
        while self._queued:
            oldest_at = next(iter(self._queued.values()))
            if oldest_at >= horizon and len(self._queued) <= self._max_entries:
                break
            self._queued.popitem(last=False)

    def seen(self, key: str) -> bool:
        """Whether `key` was queued inside the window. (Entries past it are dropped as new ones come, in `end`.)"""
        queued_at = self._queued.get(key)
        return queued_at is not None and queued_at >= self._clock() - self._seconds

    def in_flight(self, key: str) -> asyncio.Future[bool] | None:
        """The publish of the same event by a concurrent request, if any: its result says whether it was queued."""
        return self._in_flight.get(key)

    def begin(self, keys: Iterable[str]) -> None:
        """These events are being published together (one message): one outcome for all of them."""
        publish = asyncio.get_running_loop().create_future()
        for key in keys:
            self._in_flight[key] = publish

    def end(self, keys: Iterable[str], *, queued: bool) -> None:
        now = self._clock()
        for key in keys:
            publish = self._in_flight.pop(key, None)
            if queued:
                self._queued[key] = now
                self._queued.move_to_end(key)
            if publish is not None and not publish.done():
                publish.set_result(queued)
        if queued:
            self._expire()

    def __len__(self) -> int:
        return len(self._queued)

"""Which events this receiver has already queued, so a resend is answered 200 without queueing it twice.

Per process and bounded (time window and entry count). That is enough: a duplicate that slips through (another
receiver replica, a restart) costs one redundant re-read in the worker, never a wrong write, because webhooks are
hints and the worker re-reads and debounces. Correctness never depends on this window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence


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

    def triage(self, keys: Sequence[str]) -> tuple[list[int], list[asyncio.Future[bool]], int]:
        """One request's event keys, sorted in one pass: the positions of those to publish (the first of equal
        keys), the publishes of concurrent requests whose outcome stands for the ones they are queueing, and how many
        keys were queued inside the window or repeat an earlier key of `keys`."""
        horizon = self._clock() - self._seconds
        queued, in_flight = self._queued, self._in_flight
        fresh: dict[str, int] = {}
        waiting: list[asyncio.Future[bool]] = []
        duplicates = 0
        for position, key in enumerate(keys):
            if key in fresh or queued.get(key, -math.inf) >= horizon:
                duplicates += 1
            elif (publish := in_flight.get(key)) is not None:
                waiting.append(publish)
            else:
                fresh[key] = position
        return list(fresh.values()), waiting, duplicates

    def begin(self, keys: Iterable[str]) -> None:
        """These events are being published together (one message): one outcome for all of them."""
        self._in_flight.update(dict.fromkeys(keys, asyncio.get_running_loop().create_future()))

    def end(self, keys: Iterable[str], *, queued: bool) -> None:
        now = self._clock()
        in_flight, remembered = self._in_flight, self._queued
        publish = None
        for key in keys:
            publish = in_flight.pop(key, publish)
            if queued:
                if key in remembered:  # queued before, past the window: newest now
                    remembered.move_to_end(key)
                remembered[key] = now
        if publish is not None and not publish.done():
            publish.set_result(queued)
        if queued:
            self._expire()

    def __len__(self) -> int:
        return len(self._queued)

"""The dead-letter guard (arroyo's DlqLimit idea): one poison record is data, but when most recent applies end
dead-lettered, the deploy itself is broken (bad credentials, a bad release, an API down for hours), and dead-lettering
everything would only bury the queue. The worker then stops consuming and leaves the messages where they are."""

from __future__ import annotations

import collections


class DeadLetterGuard:
    def __init__(self, *, max_ratio: float, sample: int) -> None:
        self._max_ratio = max_ratio
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=sample)  # True = dead-lettered

    def record(self, dead_lettered: bool) -> bool:
        """Count one finished apply; True when the last `sample` of them cross the ratio."""
        self._outcomes.append(dead_lettered)
        return self.tripped

    @property
    def tripped(self) -> bool:
        full = len(self._outcomes) == self._outcomes.maxlen
        return full and self.dead_lettered / len(self._outcomes) > self._max_ratio

    @property
    def dead_lettered(self) -> int:
        return sum(self._outcomes)

    @property
    def sample(self) -> int:
        return len(self._outcomes)

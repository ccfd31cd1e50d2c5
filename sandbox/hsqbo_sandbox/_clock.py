"""SandboxClock: the emulators' notion of "now", which tests can move forward without sleeping.

Everything time-dependent in a sandbox (token expiry, the CDC look-back window, MetaData timestamps,
rate-limit windows, fault storms) reads this clock, so `advance(3600)` expires an access token instantly.
Webhook retry delays are real time (compressed by --retry-scale) because a real HTTP receiver is on the other
end.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Seeded demo data is stamped this long before the seeding: an existing account's records predate the connection,
# so a poller's first look (which watches from "now" less a small overlap) does not take them for new changes.
SEED_AGE_SECONDS = 3600.0


class SandboxClock:
    def __init__(self, *, offset: float = 0.0, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset = offset

    @property
    def offset(self) -> float:
        """Seconds the clock has been advanced past the wall clock."""
        return self._offset

    def now(self) -> float:
        """Epoch seconds."""
        return self._wall() + self._offset

    def advance(self, seconds: float) -> float:
        """Move time forward (never back: timestamps must not go backwards). Returns the new now."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds
        return self.now()

    def catch_up(self, offset: float) -> float:
        """Advance until the offset is at least `offset` (a restored state's), never back. Returns the new now."""
        return self.advance(max(0.0, offset - self._offset))

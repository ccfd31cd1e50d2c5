"""What a call takes of a provider's rate limits, and where the uses are counted: the words the API clients' rate
limiter (`shared/clients/_limits.py`) and its shared backend, the store, both speak. Imports nothing of hsqbo."""

from __future__ import annotations

import dataclasses
from typing import Protocol


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` calls in any `seconds`, counted per `key` (e.g. "quickbooks:<realm>:minute")."""

    key: str
    limit: int
    seconds: float


@dataclasses.dataclass(frozen=True, slots=True)
class Quota:
    """What one call takes: a use of each window, and a slot of `in_flight_key` when `max_in_flight` caps it."""

    windows: tuple[Window, ...]
    in_flight_key: str | None = None
    max_in_flight: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key a pause can be on for this call."""
        keys = tuple(window.key for window in self.windows)
        return keys if self.in_flight_key is None or self.in_flight_key in keys else (*keys, self.in_flight_key)


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    granted: bool
    # Refused: seconds until the call may fit. `exact` when that is known (a window of finished calls, a pause);
    # otherwise an upper bound that a call ending early can shorten (in-flight slots, in-flight uses).
    wait: float = 0.0
    exact: bool = True
    room: int = 0  # granted: uses left in the quota's first window after this one


class LimitBackend(Protocol):
    """Where uses, slots and pauses live. `ticket` names one call's share, to finish it."""

    async def take_quota(self, quota: Quota, ticket: int, now: float, hold_seconds: float) -> Admission:
        """All of `quota` or nothing. A granted call's uses count until now + hold_seconds + window, and its slot
        is leased until now + hold_seconds, unless `finish_quota` comes first."""
        ...

    async def finish_quota(self, ticket: int, now: float) -> None:
        """The call ended at `now`: its uses count until now + window, its slot is free."""
        ...

    async def pause_quota(self, key: str, until: float) -> None:
        """No call on `key` before `until` (a later pause already in place stands)."""
        ...


def refused(waits: list[tuple[float, bool]]) -> Admission:
    """The answer to a call that does not fit, from each obstacle's (wait, exact): it fits once all are gone."""
    wait, exact = max(waits)
    return Admission(False, wait=max(0.0, wait), exact=exact)

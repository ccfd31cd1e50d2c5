"""The one retry policy: what a failure of a record's apply (or of routing a change) leads to.

Every failure the worker meets ends here, whatever raised it (a provider's API, the store, the broker, a bug), and
gets one of three answers:

- **retry after a delay** — `transient`: a timeout, a 5xx, anything unexpected. Counts against the record:
  the n-th such failure waits `delays[n-1]` (the last delay again after that), minus up to `jitter` of it so records
  that failed together do not retry together; at `max_attempts` the record is dead-lettered with its history.
  A `conflict` (the record changed under us: QBO's SyncToken, our link revision, a concurrent link) is transient too,
  rerun at once the first `CONFLICT_RERUNS` times (a re-read usually settles it), then backs off from the first
  delay (whatever it waits for, another apply in flight, is short).
- **wait, without counting** — `rate_limited`: the provider's throttle is the account's state, not the record's
  fault; the record waits as long as the provider asked (the smallest delay at least that long). `unavailable`:
  the store or the broker is down; the record backs off (delays in turn, the last one again) however long the outage
  lasts, and is never dead-lettered for it. Neither hot-loops: every wait is at least `delays[0]`.
- **dead-letter now** — `permanent`: an error that running again cannot cure (a refused request the rule did not
  record, a configuration error). Rare: the engine records a record's own permanent failures on its link.

The policy is pure: the worker's scheduler carries out its `Decision` (services/worker/_scheduler.py).
"""

from __future__ import annotations

import dataclasses
import enum
import random
import sqlite3
from collections.abc import Callable, Sequence

import psycopg
from aiormq.exceptions import AMQPError

from shared.errors import ApiError, BusError, HsqboError, RateLimited, StaleObject
from shared.store import DuplicateLink, StaleLink

# The store's connection failing (Postgres down, a pool without a free connection in time, SQLite locked or its
# file gone) and the broker's: the infrastructure, not the record.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    sqlite3.OperationalError,
    BusError,
    AMQPError,
)


CONFLICT_RERUNS = 1  # a record changed under us is re-read and run again at once this often, then backs off


class Failure(enum.StrEnum):
    TRANSIENT = "transient"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    PERMANENT = "permanent"


def classify(error: BaseException) -> Failure:
    if isinstance(error, RateLimited):
        return Failure.RATE_LIMITED
    if isinstance(error, (StaleObject, StaleLink, DuplicateLink)):
        return Failure.CONFLICT
    if isinstance(error, UNAVAILABLE):
        return Failure.UNAVAILABLE
    if isinstance(error, ApiError):
        return Failure.TRANSIENT if error.transient else Failure.PERMANENT
    if isinstance(error, HsqboError):  # our own errors are decisions (configuration, a record's data)
        return Failure.PERMANENT
    if isinstance(error, (OSError, TimeoutError)):  # a socket: the network, not the record
        return Failure.UNAVAILABLE
    return Failure.TRANSIENT  # unexpected: give it the record's attempts, then its history goes to a person


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    failure: Failure
    dead_letter: bool
    delay: float = 0.0  # one of the policy's delays (a delay queue), or 0: at once
    expires_in: float | None = None  # the jittered wait (never longer than `delay`)
    attempt: int = 0  # failures counted against the record so far, this one included
    waits: int = 0  # failures not counted, this one included


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays: Sequence[float]
    max_attempts: int
    jitter: float = 0.2
    random: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if not self.delays or any(delay <= 0 for delay in self.delays):
            raise ValueError("retry delays must be positive, and there must be at least one")

    def decide(self, error: BaseException, *, attempt: int, waits: int = 0) -> Decision:
        """What to do after `error`, given the failures so far (`attempt` counted, `waits` not)."""
        failure = classify(error)
        if failure is Failure.PERMANENT:
            return Decision(failure, dead_letter=True, attempt=attempt + 1, waits=waits)
        if failure is Failure.RATE_LIMITED:
            asked = error.retry_after if isinstance(error, RateLimited) and error.retry_after else self.delays[-1]
            delay = next((tier for tier in self.delays if tier >= asked), self.delays[-1])
            return Decision(failure, False, delay, self._jittered(delay, at_least=asked), attempt, waits + 1)
        if failure is Failure.UNAVAILABLE:
            delay = self.delays[min(waits, len(self.delays) - 1)]
            return Decision(failure, False, delay, self._jittered(delay), attempt, waits + 1)
        attempt += 1
        if attempt >= self.max_attempts:
            return Decision(failure, dead_letter=True, attempt=attempt, waits=waits)
        if failure is Failure.CONFLICT and attempt <= CONFLICT_RERUNS:
            return Decision(failure, False, 0.0, None, attempt, waits)
        # A conflict's backoff starts at the first delay: whatever it waits for (another apply) is short.
        tier = attempt - CONFLICT_RERUNS if failure is Failure.CONFLICT else attempt
        delay = self.delays[min(tier, len(self.delays)) - 1]
        return Decision(failure, False, delay, self._jittered(delay), attempt, waits)

    def _jittered(self, delay: float, *, at_least: float = 0.0) -> float:
        """A delay queue expires only at its head, so a shortened message waits at most the jitter behind its
        predecessors: the jitter only ever shortens, and never below what the provider asked."""
        return max(delay * (1 - self.jitter * self.random()), min(at_least, delay))

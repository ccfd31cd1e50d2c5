"""Client-side rate limits: stay under each provider's throttles so that steady state sees no 429.

Before a call is sent it takes its `Quota`: one use of every sliding `Window` it counts against (QBO: the realm's
requests per minute and per second, batch requests per minute; HubSpot: the portal's burst, searches per second)
and, where the provider caps concurrency, an in-flight slot (QBO: 10 per realm). All or nothing: a call that does
not fit takes nothing and waits. A 429 pauses the key it hit for the time the provider advised.

The bookkeeping sits in a `LimitBackend` so that every process using one store shares it: the store (one short
transaction per take; slots and in-flight uses are leased, so a dead process's share comes back) or `MemoryLimits`.

Catch-up work (an apply of the bulk lane: a backfill, the poller's catch-up) calls inside `bulk_calls()` and takes at
most `BULK_SHARE` of each window and of the in-flight cap; the rest is kept for live changes, so a live edit made
during a backfill never waits behind it for the provider's budget (the lanes keep it from waiting behind it in the
queue).

A use counts from when it is taken until `window` seconds after its call ended: the provider counted the call when
it arrived, somewhere in between (after a wait in the connection pool, say), so ending the window at the answer
never lets a later call land in the provider's window of an earlier one.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager

from shared import money
from shared.clients._transport import Response
from shared.config import Settings
from shared.errors import ApiError, RateLimited
from shared.quotas import Admission, LimitBackend, Quota, Window, refused

_HUBSPOT_SEARCH = "search"  # the HubSpot operation with its own per-second limit
_HUBSPOT_SEARCH_POLICY = "SECONDLY"  # a 429 with this policy is the search limit, not the burst
BULK_SHARE = 0.8  # of each limit, for catch-up work; live changes keep the rest
_BULK = contextvars.ContextVar("hsqbo_bulk_calls", default=False)


@contextlib.contextmanager
def bulk_calls(bulk: bool = True) -> Iterator[None]:
    """The calls made while the block runs (in this task and the tasks it starts) are catch-up work (`bulk`), or
    live ones (False: a batch call carrying live changes, made from whatever task sent it)."""
    token = _BULK.set(bulk)
    try:
        yield
    finally:
        _BULK.reset(token)


def in_bulk_calls() -> bool:
    """Whether calls made now are catch-up work (`bulk_calls`)."""
    return _BULK.get()


def bulk_share(quota: Quota) -> Quota:
    """The part of `quota` catch-up work may take: the same windows and slots (counted with live calls), each to
    `BULK_SHARE` of its limit, at least one."""
    windows = tuple(dataclasses.replace(w, limit=max(1, int(w.limit * BULK_SHARE))) for w in quota.windows)
    in_flight = max(1, int(quota.max_in_flight * BULK_SHARE)) if quota.max_in_flight else 0
    return dataclasses.replace(quota, windows=windows, max_in_flight=in_flight)


@dataclasses.dataclass(slots=True)
class _Use:
    ticket: int
    until: float
    seconds: float


class MemoryLimits:
    """`LimitBackend` in this process's memory: unit tests, single-process tools."""

    def __init__(self) -> None:
        self.uses: dict[str, list[_Use]] = {}
        self.in_flight: dict[str, dict[int, float]] = {}  # key -> ticket -> lease end
        self.pauses: dict[str, float] = {}

    async def take_quota(self, quota: Quota, ticket: int, now: float, hold_seconds: float) -> Admission:
        waits: list[tuple[float, bool]] = [(until - now, True) for key in quota.keys
                                           if (until := self.pauses.get(key, 0.0)) > now]  # fmt: skip
        for window in quota.windows:
            live = self.uses[window.key] = [use for use in self.uses.get(window.key, []) if use.until > now]
            if len(live) >= window.limit:
                blocking = sorted(live, key=lambda use: use.until)[len(live) - window.limit]
                waits.append((blocking.until - now, blocking.until <= now + blocking.seconds))
        if quota.in_flight_key is not None:
            slots = self.in_flight[quota.in_flight_key] = {
                held: lease for held, lease in self.in_flight.get(quota.in_flight_key, {}).items() if lease > now
            }
            if len(slots) >= quota.max_in_flight:
                waits.append((min(slots.values()) - now, False))
        if waits:
            return refused(waits)
        for window in quota.windows:
            self.uses[window.key].append(_Use(ticket, now + hold_seconds + window.seconds, window.seconds))
        if quota.in_flight_key is not None:
            self.in_flight[quota.in_flight_key][ticket] = now + hold_seconds
        first = quota.windows[0] if quota.windows else None
        return Admission(True, room=first.limit - len(self.uses[first.key]) if first else 0)

    async def finish_quota(self, ticket: int, now: float) -> None:
        for uses in self.uses.values():
            for use in uses:
                if use.ticket == ticket:
                    use.until = now + use.seconds
        for slots in self.in_flight.values():
            slots.pop(ticket, None)

    async def pause_quota(self, key: str, until: float) -> None:
        self.pauses[key] = max(until, self.pauses.get(key, 0.0))


class RateLimiter:
    """Takes quotas from a backend, waiting while they do not fit. One per process (per store)."""

    def __init__(
        self,
        backend: LimitBackend,
        *,
        hold_seconds: float,
        poll_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._backend = backend
        self._hold = hold_seconds  # longer than any call may take: a slot is never held past it
        self._poll = poll_seconds  # how soon to look again when another process may free a slot
        self._clock = clock
        self._sleep = sleep
        self._finished = asyncio.Event()  # replaced at every finish: wakes this process's waiters

    @contextlib.asynccontextmanager
    async def admitted(self, quota: Quota) -> AsyncIterator[Admission]:
        """Hold `quota` for the duration of one call."""
        ticket = secrets.randbits(62)
        while True:
            admission = await self._backend.take_quota(quota, ticket, self._clock(), self._hold)
            if admission.granted:
                break
            await self._wait(admission.wait if admission.exact else min(admission.wait, self._poll))
        try:
            yield admission
        finally:
            await self._backend.finish_quota(ticket, self._clock())
            self._finished.set()
            self._finished = asyncio.Event()

    async def pause(self, key: str, seconds: float) -> None:
        await self._backend.pause_quota(key, self._clock() + seconds)

    async def _wait(self, seconds: float) -> None:
        """`seconds`, or less if a call of this process ends meanwhile."""
        finished = asyncio.ensure_future(self._finished.wait())
        slept = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait((finished, slept), return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            slept.cancel()


PauseKey = Callable[[str, Response], str]


class CallLimits:
    """The limits of one provider account: which quota each operation takes, and what an answer says about them."""

    def __init__(
        self,
        limiter: RateLimiter,
        quotas: Mapping[str, Quota],
        default: Quota,
        pause_key: PauseKey,
        *,
        burst: Window | None = None,
    ) -> None:
        self._limiter = limiter
        self._quotas = quotas
        self._default = default
        self._pause_key = pause_key
        self._burst = burst  # the window HubSpot's X-HubSpot-RateLimit-* headers describe

    @classmethod
    def for_qbo(cls, limiter: RateLimiter, realm_id: str, settings: Settings) -> CallLimits:
        """Per realm: requests per minute and per second, in-flight requests; batch requests also per minute."""
        account = f"quickbooks:{realm_id}"
        windows = (
            Window(f"{account}:minute", settings.qbo_requests_per_minute, 60.0),
            Window(f"{account}:second", settings.qbo_requests_per_second, 1.0),
        )
        default = Quota(windows, account, settings.qbo_max_in_flight)
        batch = dataclasses.replace(
            default, windows=(*windows, Window(f"{account}:batch", settings.qbo_batch_per_minute, 60.0))
        )
        # Intuit: after a 429 wait 60 s; the answer does not say which limit it was, so the whole realm waits.
        return cls(limiter, {"batch": batch}, default, lambda operation, response: f"{account}:minute")

    @classmethod
    def for_hubspot(cls, limiter: RateLimiter, portal_id: str, settings: Settings) -> CallLimits:
        """Per portal: the burst window (searches count too, the stricter reading), and searches per second."""
        account = f"hubspot:{portal_id}"
        burst = Window(f"{account}:burst", settings.hubspot_burst_requests, settings.hubspot_burst_seconds)
        search = Window(f"{account}:search", settings.hubspot_search_per_second, 1.0)

        def pause_key(operation: str, response: Response) -> str:
            return search.key if _hubspot_policy(response) == _HUBSPOT_SEARCH_POLICY else burst.key

        return cls(limiter, {_HUBSPOT_SEARCH: Quota((burst, search))}, Quota((burst,)), pause_key, burst=burst)

    def admitted(self, operation: str) -> AbstractAsyncContextManager[Admission]:
        quota = self._quotas.get(operation, self._default)
        return self._limiter.admitted(bulk_share(quota) if _BULK.get() else quota)

    async def observe(self, operation: str, admission: Admission, response: Response, error: ApiError | None) -> None:
        """A 429 pauses the key it hit for the advised time. HubSpot's `X-HubSpot-RateLimit-Remaining: 0` while
        our own count left room means someone else spends the budget (or the real limit is lower than ours): the
        burst key waits out the interval."""
        if isinstance(error, RateLimited) and response.status == 429:
            await self._limiter.pause(self._pause_key(operation, response), error.retry_after or 0.0)
            return
        if self._burst is not None and response.header("X-HubSpot-RateLimit-Remaining") == "0" and admission.room:
            await self._limiter.pause(self._burst.key, _interval_seconds(response) or self._burst.seconds)


def _hubspot_policy(response: Response) -> str | None:
    try:
        body = money.loads(response.body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return str(body.get("policyName") or "") or None if isinstance(body, dict) else None


def _interval_seconds(response: Response) -> float:
    try:
        return float(response.header("X-HubSpot-RateLimit-Interval-Milliseconds") or 0) / 1000
    except ValueError:
        return 0.0

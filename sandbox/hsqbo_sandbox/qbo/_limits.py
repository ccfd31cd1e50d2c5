"""Intuit's per-realm throttles, answered with 429 Fault 3001: at most `requests_per_minute` requests in any
60 s (sandbox clock; 500 by default), `max_concurrent` requests in flight (10) and `batch_per_minute` batch
requests (40). An ASGI middleware outside fault injection, so injected latency counts as time in flight.
Requests refused with 429 do not use up the allowance. Limits can be changed at run time (`/_sandbox/limits`)."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hsqbo_sandbox._clock import SandboxClock

WINDOW_SECONDS = 60.0


@dataclasses.dataclass(slots=True)
class RealmLimits:
    requests_per_minute: int = 500
    max_concurrent: int = 10
    batch_per_minute: int = 40

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def realm_of(path: str) -> str | None:
    """`/v3/company/<realmId>/...` -> realmId."""
    parts = path.split("/", 5)
    return parts[3] if len(parts) > 3 and parts[1] == "v3" and parts[2] == "company" else None


class RateLimiter:
    def __init__(self, clock: SandboxClock, limits: RealmLimits) -> None:
        self.clock = clock
        self.limits = limits
        self._recent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._recent_batches: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._in_flight: dict[str, int] = collections.defaultdict(int)

    def admit(self, realm_id: str, *, batch: bool) -> bool:
        now = self.clock.now()
        recent = self._window(self._recent[realm_id], now)
        batches = self._window(self._recent_batches[realm_id], now)
        if (
            len(recent) >= self.limits.requests_per_minute
            or self._in_flight[realm_id] >= self.limits.max_concurrent
            or (batch and len(batches) >= self.limits.batch_per_minute)
        ):
            return False
        recent.append(now)
        if batch:
            batches.append(now)
        self._in_flight[realm_id] += 1
        return True

    def release(self, realm_id: str) -> None:
        self._in_flight[realm_id] -= 1

    @staticmethod
    def _window(times: collections.deque[float], now: float) -> collections.deque[float]:
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()
        return times

    def middleware(self, throttled_response: Callable[[], Response]) -> Middleware:
        return Middleware(RateLimitMiddleware, limiter=self, throttled_response=throttled_response)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, throttled_response: Callable[[], Response]) -> None:
        self.app = app
        self.limiter = limiter
        self.throttled_response = throttled_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        realm_id = realm_of(scope["path"]) if scope["type"] == "http" else None
        if realm_id is None:
            await self.app(scope, receive, send)
            return
        if not self.limiter.admit(realm_id, batch=scope["path"].rstrip("/").endswith("/batch")):
            await self.throttled_response()(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.limiter.release(realm_id)

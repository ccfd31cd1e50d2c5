"""RequestLog: every request made to an emulated API (never the `/_sandbox/*` control surface), with its
answer.

Tests and benchmarks count API calls per change with it. The log is an ASGI middleware
(`RequestLog.middleware`) placed outermost, so requests refused by fault injection or rate limits are recorded
with their status too. Which account and which OAuth client made a request is provider-specific, so each
emulator passes an `identify(scope)` callable; tokens themselves are never stored.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.sandbox._clock import SandboxClock
from services.sandbox._faults import CONTROL_PREFIX

# (account id, client id) of a request, either unknown -> None
Identify = Callable[[Scope], tuple[str | None, str | None]]


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedRequest:
    time: float  # sandbox clock, epoch seconds, when the request arrived
    method: str
    path: str
    query: str
    status: int
    account: str | None
    client: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RequestLog:
    def __init__(self, clock: SandboxClock, *, max_entries: int = 1_000_000) -> None:
        self.clock = clock
        self._entries: collections.deque[RecordedRequest] = collections.deque(maxlen=max_entries)

    def add(self, entry: RecordedRequest) -> None:
        self._entries.append(entry)

    def list(
        self,
        *,
        account: str | None = None,
        since: float | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        status: int | None = None,
    ) -> list[RecordedRequest]:
        """Oldest first. Every filter given must match."""
        return [
            entry
            for entry in self._entries
            if (account is None or entry.account == account)
            and (since is None or entry.time >= since)
            and (method is None or entry.method == method.upper())
            and (path_contains is None or path_contains in entry.path)
            and (status is None or entry.status == status)
        ]

    def count(self, **filters: Any) -> int:
        if not filters:
            return len(self._entries)
        return len(self.list(**filters))

    def clear(self) -> None:
        self._entries.clear()

    def middleware(self, identify: Identify) -> Middleware:
        return Middleware(RequestLogMiddleware, log=self, identify=identify)


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, *, log: RequestLog, identify: Identify) -> None:
        self.app = app
        self.log = log
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        arrived = self.log.clock.now()
        status = 500  # what the client sees if the app raises before answering

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            account, client = self.identify(scope)
            query = scope.get("query_string", b"").decode("latin-1")
            self.log.add(RecordedRequest(arrived, scope["method"], scope["path"], query, status, account, client))

"""RequestLog: every request made to an emulated API (never the `/_sandbox/*` control surface), with its
answer.

Tests and benchmarks count API calls per change with it. The log is an ASGI middleware
(`RequestLog.middleware`) placed outermost, so requests refused by fault injection or rate limits are recorded
with their status too. Which account and which OAuth client made a request is provider-specific, so each
emulator passes an `identify(scope)` callable; tokens themselves are never stored.

JSON request bodies are kept too (tests read what hsqbo sent, e.g. that no amount was float-rounded), bounded: a
body over `max_body_bytes` is not kept, and only the last `max_bodies` requests keep theirs. Only JSON bodies: the
OAuth token endpoint's form bodies carry secrets and are never kept.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox._faults import CONTROL_PREFIX

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
    body: str | None = dataclasses.field(default=None, repr=False, compare=False)  # JSON text, see the docstring

    def to_dict(self, *, with_body: bool = False) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        if not with_body:
            del fields["body"]
        return fields


class RequestLog:
    def __init__(
        self,
        clock: SandboxClock,
        *,
        max_entries: int = 1_000_000,
        max_bodies: int = 20_000,
        max_body_bytes: int = 1_000_000,
    ) -> None:
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self._max_bodies = max_bodies
        self._entries: collections.deque[RecordedRequest] = collections.deque(maxlen=max_entries)
        self._with_body: collections.deque[RecordedRequest] = collections.deque()

    def add(self, entry: RecordedRequest) -> None:
        self._entries.append(entry)
        if entry.body is not None:
            self._with_body.append(entry)
            if len(self._with_body) > self._max_bodies:
                # the oldest kept body goes (the entry itself stays, counted as before)
                object.__setattr__(self._with_body.popleft(), "body", None)

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
        self._with_body.clear()

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
        content_type = dict(scope.get("headers") or ()).get(b"content-type", b"")
        chunks: list[bytes] | None = [] if b"json" in content_type.lower() else None
        size = 0

        async def receive_and_keep() -> Message:
            nonlocal chunks, size
            message = await receive()
            if chunks is not None and message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.log.max_body_bytes:
                    chunks = None  # too big to keep
                else:
                    chunks.append(chunk)
            return message

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_and_keep, send_and_watch)
        finally:
            account, client = self.identify(scope)
            query = scope.get("query_string", b"").decode("latin-1")
            body = b"".join(chunks).decode("utf-8", "replace") if chunks else None
            self.log.add(RecordedRequest(arrived, scope["method"], scope["path"], query, status, account, client, body))

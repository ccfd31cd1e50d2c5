"""Transports: the one seam between the API clients and the network.

A client builds a `Request` (method, full URL with its query string already encoded, headers, body bytes) and a
transport returns a `Response`. `AiohttpTransport` is the real one; `MockTransport` hands each request to a function,
so unit tests describe the provider's answers without a server. A transport raises `ConnectionError` or
`TimeoutError` when no answer came; the clients turn those into `TransportError`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import aiohttp
import yarl

from shared import money
from shared.config import Settings


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str  # absolute, query string included and already percent-encoded
    # Out of the repr: headers carry the bearer token and token-endpoint bodies the refresh token.
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    body: bytes = dataclasses.field(default=b"", repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        # HTTP header names are case-insensitive: store them lower-cased so `header()` is a plain lookup.
        object.__setattr__(self, "headers", {name.lower(): value for name, value in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON, every non-integer number a Decimal (`shared.money`)."""
        return money.loads(self.body)


class Transport(Protocol):
    async def send(self, request: Request) -> Response: ...


class AiohttpTransport:
    """One shared `aiohttp.ClientSession` (connection pool) for every client in the process. Created lazily inside
    the running loop; close it with `aclose()` (or `async with`)."""

    def __init__(self, *, timeout_seconds: float, connect_timeout_seconds: float, max_connections: int) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=connect_timeout_seconds)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AiohttpTransport:
        return cls(
            timeout_seconds=settings.api_timeout_seconds,
            connect_timeout_seconds=settings.api_connect_timeout_seconds,
            max_connections=settings.api_max_connections,
        )

    async def send(self, request: Request) -> Response:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                auto_decompress=True,
            )
        try:
            async with self._session.request(
                request.method,
                yarl.URL(request.url, encoded=True),  # encoded by the client; yarl must not re-quote it
                headers=dict(request.headers),
                data=request.body or None,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                return Response(answer.status, dict(answer.headers), body)
        except TimeoutError as exc:  # first: aiohttp's timeout errors are also ClientErrors
            raise TimeoutError(f"no answer within {self._timeout.total} s") from exc
        except aiohttp.ClientError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


Handler = Callable[[Request], Response | Awaitable[Response]]


class MockTransport:
    """Answers every request with `handler(request)` (a plain or async function) and keeps the requests it saw, in
    order, in `requests`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[Request] = []

    async def send(self, request: Request) -> Response:
        self.requests.append(request)
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            return await answer
        return answer

"""Fixtures shared by the sandbox tests: a webhook sink served on loopback that records what it receives and
answers what the test tells it to (a status per delivery, or a hang for slow-acknowledgement tests)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from shared.asgi import AppServer


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int  # what the sink answered


class WebhookSink:
    """Answers 200 unless told otherwise: `statuses` are used up one per delivery, `hang` makes it never answer
    (the sender times out). `wait_for(n)` awaits the n-th delivery instead of sleeping."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []
        self.hang = False
        self.url = ""
        self.release = asyncio.Event()  # set at teardown so hanging handlers end and the server can stop
        self._arrived = asyncio.Condition()
        self.app = Starlette(routes=[Route("/hook", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        status = self.statuses.pop(0) if self.statuses else 200
        if self.hang:
            status = 0
        async with self._arrived:
            self.deliveries.append(Delivery(dict(request.headers), body, status))
            self._arrived.notify_all()
        if self.hang:
            await self.release.wait()  # the sender times out first
        return Response(status_code=status)

    async def wait_for(self, count: int, within: float = 5.0) -> list[Delivery]:
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries


@contextlib.asynccontextmanager
async def serving_with_sink(sink: WebhookSink, *apps: ASGIApp) -> AsyncIterator[list[AppServer]]:
    """Serve the sink and `apps` on loopback; stop them all at once (each uvicorn stop takes a poll interval)."""
    all_apps: list[ASGIApp] = [sink.app, *apps]
    servers = [AppServer(app) for app in all_apps]
    for server in servers:
        await server.start()
    sink.url = f"{servers[0].url}/hook"
    try:
        yield servers[1:]
    finally:
        sink.release.set()
        await asyncio.gather(*(server.stop() for server in servers))


@pytest.fixture
async def webhook_sink() -> AsyncIterator[WebhookSink]:
    sink = WebhookSink()
    async with serving_with_sink(sink):
        yield sink

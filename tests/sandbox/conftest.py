"""Fixtures shared by the sandbox tests: a webhook sink served on loopback that records what it receives and
answers what the test tells it to (a status per delivery, or a hang for slow-acknowledgement tests)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.asgi import serving


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


@pytest.fixture
async def webhook_sink() -> AsyncIterator[WebhookSink]:
    sink = WebhookSink()
    async with serving(sink.app) as server:
        sink.url = f"{server.url}/hook"
        try:
            yield sink
        finally:
            sink.release.set()

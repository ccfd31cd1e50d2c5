"""Serve ASGI apps with uvicorn inside a running event loop: several servers in one process (`hsqbo run`, the
sandbox's two emulators) and real loopback servers on ephemeral ports in tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its owner: several run in one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AppServer:
    """One uvicorn server as an asyncio task. `port=0` picks a free port; `url` tells which."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        # Forwarded headers are the app's to believe or not (HSQBO_TRUSTED_PROXIES), not uvicorn's loopback default.
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="on", proxy_headers=False
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host

    @property
    def port(self) -> int:
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it could not start (port taken...)
                raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task

    async def wait(self) -> None:
        """Until the server stops (it stops on should_exit)."""
        if self._task is not None:
            await self._task


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[AppServer]:
    server = AppServer(app, host=host, port=port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class ValidTarget:
    """Answers 400 to a request whose query string is not UTF-8 (a server passes the bytes on as they came, and
    Starlette's `request.url` cannot decode them), so no page or webhook handler meets one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                scope["query_string"].decode()
            except UnicodeDecodeError:
                await PlainTextResponse("the query string is not UTF-8", 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)

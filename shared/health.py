"""Liveness and readiness of a worker or poller, served next to its metrics (HSQBO_METRICS_PORT).

    /healthz  200 while the process answers at all (a wedged or dead one is restarted by its supervisor)
    /readyz   200 when every check holds (the broker connected, the store reachable), else 503 naming the failing
              ones; JSON {"check": true|false}

A check answers from the process's own state, without I/O: /readyz is served on the metrics server's thread, never
the event loop. What needs I/O (the store) is probed on the loop every few seconds by `probe_forever`, which keeps
the answer for the check to read.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from shared.logging import get_logger

log = get_logger("hsqbo.health")

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
PROBE_SECONDS = 5.0  # between two probes of the store

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Readiness:
    """Named checks, all of which must hold for the process to take work."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: Callable[[], bool]) -> None:
        with self._lock:
            self._checks[name] = check

    def clear(self) -> None:
        with self._lock:
            self._checks.clear()

    def status(self) -> dict[str, bool]:
        with self._lock:
            checks = dict(self._checks)
        status: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                status[name] = bool(check())
            except Exception:
                status[name] = False
        return status


# The process's readiness: a worker or poller adds its checks once started.
READINESS = Readiness()


class Probe:
    """The last answer of an async probe (e.g. a store query), readable from any thread."""

    def __init__(self) -> None:
        self.ok = False

    def __call__(self) -> bool:
        return self.ok

    async def forever(self, probe: Callable[[], Awaitable[object]], every: float = PROBE_SECONDS) -> None:
        """Run `probe` every `every` seconds; `ok` is whether the last one succeeded. Cancel to stop."""
        while True:
            try:
                await probe()
                if not self.ok:
                    log.info("probe_ok")
                self.ok = True
            except Exception as exc:
                if self.ok:
                    log.warning("probe_failed", error=f"{type(exc).__name__}: {exc}"[:200])
                self.ok = False
            await asyncio.sleep(every)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape or probe on stderr (our logs are JSON lines)."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


def health_app(readiness: Readiness) -> WsgiApp:
    """/metrics (Prometheus), /healthz and /readyz."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == READY_PATH:
            status = readiness.status()
            ready = bool(status) and all(status.values())  # nothing registered yet: still starting
            start_response("200 OK" if ready else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [orjson.dumps(status)]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def serve_metrics(host: str, port: int | None, readiness: Readiness = READINESS) -> WSGIServer | None:
    """Serve this process's /metrics, /healthz and /readyz at http://host:port on a thread (a worker or poller, which
    have no HTTP server of their own); None when no port is configured. Port 0 takes a free one (`server_port`)."""
    if port is None:
        return None
    server = make_server(host, port, health_app(readiness), ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="hsqbo-metrics").start()
    return server

"""`hsqbo receiver`: accepts signed HubSpot and Intuit webhooks and answers 2xx only once RabbitMQ has them. Its
/metrics, /healthz and /readyz are also served on a port of their own (HSQBO_METRICS_PORT, 9100 when unset), so the
public webhook port shows nothing but the webhooks' answers and its probes."""

from __future__ import annotations

import argparse
import gc

import uvicorn

from services.receiver._app import create_app
from shared.asgi import listen
from shared.health import READINESS
from shared.metrics import serve_metrics
from shared.process import process_settings

__all__ = ["METRICS_PORT", "configure_parser", "create_app", "main"]

METRICS_PORT = 9100  # the receiver's metrics when HSQBO_METRICS_PORT is unset


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")


def main(args: argparse.Namespace) -> None:
    settings = process_settings()
    app = create_app(settings)
    READINESS.add("broker", lambda: bool(app.state.receiver.publisher.ready))
    serve_metrics(settings.metrics_host, METRICS_PORT if settings.metrics_port is None else settings.metrics_port)
    listening = listen(args.host, args.port)  # a port in use: one line (StartupError), before anything starts
    # Forwarded headers: the app believes HSQBO_TRUSTED_PROXIES' only (create_app), not uvicorn's loopback default.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            proxy_headers=False, log_config=None)  # fmt: skip
    # What is loaded by now lives as long as the process: out of the collector's sight, a full collection no longer
    # walks every module's objects (collections were a profile's visible share of a request).
    gc.freeze()
    uvicorn.Server(config).run(sockets=[listening])

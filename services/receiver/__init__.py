"""`hsqbo receiver`: accepts signed HubSpot and Intuit webhooks and answers 2xx only once RabbitMQ has them."""

from __future__ import annotations

import argparse

import uvicorn

from services.receiver._app import create_app
from shared.asgi import listen
from shared.process import process_settings

__all__ = ["configure_parser", "create_app", "main"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")


def main(args: argparse.Namespace) -> None:
    settings = process_settings()
    app = create_app(settings)
    listening = listen(args.host, args.port)  # a port in use: one line (StartupError), before anything starts
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            proxy_headers=True, log_config=None)  # fmt: skip
    uvicorn.Server(config).run(sockets=[listening])

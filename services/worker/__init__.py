"""`hsqbo worker`: consumes queued changes, debounces them per record and applies the sync rules both ways."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from services.worker._engine import Engine
from services.worker._worker import Worker
from shared.clients import AiohttpTransport
from shared.config import Settings, load_settings
from shared.connections import ContextFactory
from shared.logging import configure_logging
from shared.metrics import serve_metrics
from shared.store import open_store
from shared.syncconfig import load_sync_settings

__all__ = ["Engine", "Worker", "configure_parser", "main", "run_worker"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="sync rules TOML (default: HSQBO_CONFIG)")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run one worker until `stop` is set."""
    sync = load_sync_settings(settings.config)
    async with (
        open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
        AiohttpTransport.from_settings(settings) as transport,
    ):
        engine = Engine(store, ContextFactory(settings, store, transport), sync)
        worker = Worker(settings, sync, store, engine)
        await worker.start()
        try:
            await stop.wait()
        finally:
            await worker.stop()


def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    if args.config:
        settings = settings.model_copy(update={"config": args.config})
    configure_logging(settings.log_level)
    serve_metrics(settings.metrics_host, settings.metrics_port)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(serve())

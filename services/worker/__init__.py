"""`hsqbo worker`: consumes queued changes, debounces them per record and applies the sync rules both ways."""

from __future__ import annotations

import argparse
import asyncio

from services.worker._engine import Engine
from services.worker._worker import Worker
from shared.clients import AiohttpTransport
from shared.config import Settings
from shared.connections import ContextFactory
from shared.health import READINESS, Probe
from shared.metrics import serve_metrics
from shared.process import process_settings, stop_on_signals
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
        contexts = ContextFactory(settings, store, transport)
        engine = Engine(store, contexts, sync)
        worker = Worker(settings, sync, store, engine)
        store_reachable = Probe()
        READINESS.add("broker", lambda: worker.connected)
        READINESS.add("store", store_reachable)
        await worker.start()
        probing = asyncio.create_task(store_reachable.forever(store.count_pending))
        try:
            await stop.wait()
        finally:
            probing.cancel()
            READINESS.clear()
            await worker.stop()
            await contexts.usage.flush()  # the last calls' counts reach the store too


def main(args: argparse.Namespace) -> None:
    settings = process_settings(args.config)
    serve_metrics(settings.metrics_host, settings.metrics_port)

    async def serve() -> None:
        await run_worker(settings, stop_on_signals())

    asyncio.run(serve())

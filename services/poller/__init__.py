"""`hsqbo poller`: the fallback for missed webhooks. Polls QBO (CDC) and HubSpot (search) for changes the worker has
not synced and queues them like webhook events."""

from __future__ import annotations

import argparse
import asyncio

from services.poller._poller import Poller
from shared.bus import Publisher
from shared.clients import AiohttpTransport
from shared.config import Settings
from shared.connections import ContextFactory
from shared.metrics import serve_metrics
from shared.process import process_settings, stop_on_signals
from shared.store import open_store
from shared.syncconfig import load_sync_settings

__all__ = ["Poller", "configure_parser", "main", "run_poller"]

BROKER_WAIT_SECONDS = 30.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="sync rules TOML (default: HSQBO_CONFIG)")
    parser.add_argument("--once", action="store_true", help="poll every connection once, then exit")


async def run_poller(settings: Settings, stop: asyncio.Event, *, once: bool = False) -> None:
    """Poll until `stop` is set (or one round with `once`)."""
    sync = load_sync_settings(settings.config)
    publisher = Publisher(settings.rabbitmq_url, confirm_timeout=settings.publish_timeout_seconds)
    await publisher.start()
    try:
        async with (
            open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
            AiohttpTransport.from_settings(settings) as transport,
        ):
            poller = Poller(settings, sync, store, ContextFactory(settings, store, transport), publisher.publish)
            await publisher.wait_ready(BROKER_WAIT_SECONDS)  # not ready: the first poll fails and is retried
            if once:
                await poller.poll_once()
            else:
                await poller.run(stop)
    finally:
        await publisher.close()


def main(args: argparse.Namespace) -> None:
    settings = process_settings(args.config)
    serve_metrics(settings.metrics_host, settings.metrics_port)

    async def serve() -> None:
        await run_poller(settings, stop_on_signals(), once=args.once)

    asyncio.run(serve())

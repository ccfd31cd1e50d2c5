"""`hsqbo status`: the status page for the people who run a sync (records per status with their errors, one record's
history and "Sync now", CSV export, dead letters and their replay)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress

import uvicorn

from services.status._app import StatusPage
from services.status._guard import HEALTH_PATH
from shared.clients import AiohttpTransport
from shared.config import Settings, secret
from shared.connections import ContextFactory
from shared.errors import ConfigError
from shared.process import process_settings
from shared.store import open_store
from shared.syncconfig import load_sync_settings

__all__ = ["HEALTH_PATH", "StatusPage", "configure_parser", "main", "status_password"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    parser.add_argument("--config", help="sync rules TOML (default: HSQBO_CONFIG)")


def status_password(settings: Settings, host: str) -> str | None:
    """The page's password; required unless it listens on loopback only and no proxy forwards others to it."""
    if settings.status_password is not None:
        return secret(settings.status_password)
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ConfigError(f"HSQBO_STATUS_PASSWORD is required to serve the status page on {host}")
    if settings.trusted_proxies:  # a proxy on this host brings anyone's requests to loopback
        raise ConfigError("HSQBO_STATUS_PASSWORD is required to serve the status page behind HSQBO_TRUSTED_PROXIES")
    return None


def main(args: argparse.Namespace) -> None:
    settings = process_settings(args.config)
    password = status_password(settings, args.host)

    async def serve() -> None:
        async with (
            open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
            AiohttpTransport.from_settings(settings) as transport,
        ):
            contexts = ContextFactory(settings, store, transport)  # the record page's field comparison reads both
            page = StatusPage(settings, load_sync_settings(settings.config), store, contexts=contexts)
            config = uvicorn.Config(
                page.app(password), host=args.host, port=args.port, log_level="warning", proxy_headers=False
            )  # the page believes forwarded headers from HSQBO_TRUSTED_PROXIES only (_guard.py)
            await uvicorn.Server(config).serve()

    asyncio.run(serve())

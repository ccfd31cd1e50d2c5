"""`hsqbo run`: the whole stack on one machine, in one process and one event loop — both sandboxes (a seeded portal
and realm), the receiver they send signed webhooks to, a worker connecting the two accounts, the poller catching
what webhooks miss, and demo traffic: a HubSpot user and a QuickBooks user making an edit every few seconds, so
changes show flowing both ways in the log.

Secrets and app ids left unset are generated for the run and kept in memory. The connection is `run_connection`'s
unless HSQBO_CONFIG names one: then its first connection is used with the sandboxes' account ids filled in.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from pathlib import Path

from services.receiver import METRICS_PORT
from services.run._demo import DemoEdit, DemoTraffic
from services.run._stack import (
    ConnectionFactory,
    RunningStack,
    StackOptions,
    local_connection,
    pointed_at,
    running_stack,
    sandbox_apps,
    save_sandbox_tokens,
    with_local_app,
)
from shared.config import Settings
from shared.logging import get_logger
from shared.process import process_settings, stop_on_signals
from shared.syncconfig import ConnectionSettings, load_sync_settings

__all__ = [
    "ConnectionFactory",
    "DemoEdit",
    "DemoTraffic",
    "RunningStack",
    "StackOptions",
    "configure_parser",
    "local_connection",
    "main",
    "pointed_at",
    "run_connection",
    "running_stack",
    "sandbox_apps",
    "save_sandbox_tokens",
    "with_local_app",
]

log = get_logger("hsqbo.run")


def run_connection(portal_id: int, realm_id: str, template: ConnectionSettings | None = None) -> ConnectionSettings:
    """`template` (from HSQBO_CONFIG) on the sandboxes' accounts; without one, the recommended settings except that a
    new HubSpot contact syncs at once (the incumbent waits for its first invoice, which a demo never reaches)."""
    if template is not None:
        return template.model_copy(update={"hubspot_portal_id": str(portal_id), "qbo_realm_id": realm_id})
    # Named after the realm: a store kept from an earlier run without --state-file holds links to other sandboxes.
    return local_connection(f"demo-{realm_id}", portal_id, realm_id,
                            contacts={"hubspot_to_qbo": {"created_after": "setup_date"}})  # fmt: skip


def configure_parser(parser: argparse.ArgumentParser) -> None:
    defaults = StackOptions()
    parser.add_argument("--host", default=defaults.host, help="interface every server listens on")
    parser.add_argument("--port", type=int, default=defaults.port, help="the receiver's port")
    parser.add_argument("--hubspot-port", type=int, default=defaults.hubspot_port, help="the HubSpot sandbox's port")
    parser.add_argument("--qbo-port", type=int, default=defaults.qbo_port, help="the QuickBooks sandbox's port")
    parser.add_argument("--status-port", type=int, default=defaults.status_port, help="the status page's port")
    parser.add_argument("--metrics-port", type=int, default=METRICS_PORT, help="/metrics, /healthz and /readyz")
    parser.add_argument("--no-demo", dest="demo", action="store_false", help="no demo traffic: you make the edits")
    parser.add_argument("--demo-interval", type=float, default=4.0, help="seconds between demo edits (default 4)")
    parser.add_argument("--state-file", type=Path, help="sandbox data: loaded at start if present, saved at exit")


def main(args: argparse.Namespace) -> None:
    settings = process_settings()
    template = next(iter(load_sync_settings(settings.config).connection), None)
    options = StackOptions(
        host=args.host, port=args.port, hubspot_port=args.hubspot_port, qbo_port=args.qbo_port,
        status_port=args.status_port, metrics_port=args.metrics_port, state_file=args.state_file,
    )  # fmt: skip
    connection = functools.partial(run_connection, template=template)
    asyncio.run(_serve(settings, options, connection, args.demo_interval if args.demo else None))


async def _serve(
    settings: Settings, options: StackOptions, connection: ConnectionFactory, demo_interval: float | None
) -> None:
    stop = stop_on_signals()
    async with running_stack(settings, options, connection) as stack:
        log.info(
            "hsqbo_running", receiver=stack.receiver.url, hubspot_sandbox=stack.sandbox.hubspot_server.url,
            qbo_sandbox=stack.sandbox.qbo_server.url, metrics=stack.metrics_url,
            status_page=stack.status.url,
            connection=stack.connection.name, portal_id=stack.portal_id, realm_id=stack.realm_id,
            demo_interval=demo_interval,
        )  # fmt: skip
        demo = DemoTraffic(stack.sandbox, stack.portal_id, stack.realm_id)
        async with asyncio.TaskGroup() as tasks:
            if demo_interval is not None:
                tasks.create_task(demo.run(demo_interval, stop))
            await stop.wait()
        log.info("hsqbo_stopping")
    log.info("hsqbo_stopped", state_file=str(options.state_file) if options.state_file else None)

"""`hsqbo poller`: the fallback for missed webhooks. Polls QBO (CDC) and HubSpot (search) for changes the worker has
not synced and queues them like webhook events. `--backfill` is the initial sync: every record not in sync, once;
`--reconcile` compares every linked pair's values, reports and re-queues those apart."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from services.poller._backfill import backfill, report
from services.poller._poller import Poller
from services.poller._reconcile import Counts, format_report, reconcile
from services.poller._source import Publish, Tally
from shared.bus import Publisher
from shared.clients import AiohttpTransport
from shared.config import Settings
from shared.connections import ConnectionPaused, ContextFactory, SyncContext
from shared.domain import Kind
from shared.errors import AuthRevoked, MissingScopes
from shared.health import READINESS, Probe
from shared.metrics import serve_metrics
from shared.process import parse_time, process_settings, stop_on_signals
from shared.store import Reconciliation, Store, open_store
from shared.syncconfig import SyncSettings, load_sync_settings

__all__ = ["Poller", "Tally", "backfill", "configure_parser", "main", "reconcile", "run_pass", "run_poller"]

BROKER_WAIT_SECONDS = 30.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="sync rules TOML (default: HSQBO_CONFIG)")
    parser.add_argument("--once", action="store_true", help="poll every connection once, then exit")
    passes = parser.add_argument_group("one-off passes (then exit)")
    passes.add_argument("--backfill", action="store_true", help="queue every record not in sync, then exit")
    passes.add_argument("--since", type=parse_time, metavar="TIME",
                        help="only records changed since (ISO 8601 or a duration ago: 30d); default: all")  # fmt: skip
    passes.add_argument("--dry-run", action="store_true", help="with --backfill or --reconcile: count, queue nothing")
    passes.add_argument("--connection", help="only this connection (default: all)")
    passes.add_argument("--reconcile", action="store_true",
                        help="compare every linked pair, print a report, queue the ones apart, then exit")  # fmt: skip
    passes.add_argument("--last", action="store_true", help="with --reconcile: print the last kept report, run none")


@contextlib.asynccontextmanager
async def _working_set(
    settings: Settings, *, publishing: bool
) -> AsyncIterator[tuple[Store, ContextFactory, Publish | None]]:
    """The store, connection contexts on it, and a confirmed publisher (None when not `publishing`)."""
    async with (
        open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
        AiohttpTransport.from_settings(settings) as transport,
    ):
        contexts = ContextFactory(settings, store, transport)
        if not publishing:
            yield store, contexts, None
            return
        publisher = Publisher(settings.rabbitmq_url, confirm_timeout=settings.publish_timeout_seconds)
        await publisher.start()
        store_reachable = Probe()
        READINESS.add("broker", lambda: publisher.ready)
        READINESS.add("store", store_reachable)
        probing = asyncio.create_task(store_reachable.forever(store.count_pending))
        try:
            await publisher.wait_ready(BROKER_WAIT_SECONDS)  # not ready: publishing fails, and is retried or reported
            yield store, contexts, publisher.publish
        finally:
            probing.cancel()
            READINESS.clear()
            await publisher.close()


async def run_poller(settings: Settings, stop: asyncio.Event, *, once: bool = False) -> None:
    """Poll until `stop` is set (or one round with `once`)."""
    sync = load_sync_settings(settings.config)
    async with _working_set(settings, publishing=True) as (store, contexts, publish):
        assert publish is not None
        poller = Poller(settings, sync, store, contexts, publish)
        if once:
            await poller.poll_once()
        else:
            await poller.run(stop)


T = TypeVar("T")


async def run_pass(
    settings: Settings, sync: SyncSettings, one_pass: Callable[[SyncContext, Publish | None], Awaitable[T]], *,
    dry_run: bool,
) -> dict[str, T | str]:  # fmt: skip
    """Run one pass (a backfill, a reconciliation) over each connection of `sync` (publishing nothing in a dry run):
    what it returned, or why it was skipped."""
    results: dict[str, T | str] = {}
    async with _working_set(settings, publishing=not dry_run) as (_, contexts, publish):
        for connection in sync.connection:
            try:
                ctx = await contexts.get(connection)
                results[connection.name] = await one_pass(ctx, publish)
            except ConnectionPaused as paused:
                results[connection.name] = str(paused)
            except (AuthRevoked, MissingScopes) as exc:  # paused for every process, as the worker and poller do
                results[connection.name] = str(await contexts.pause(connection.name, exc))
    return results


def _progress(tally: Tally) -> None:
    """A one-line count on a terminal's stderr; nothing when stderr is a file or pipe."""
    if sys.stderr.isatty():
        print(f"\r{tally.provider} {tally.object_type}: {tally.found} found, {tally.queued} to queue",
              end="", file=sys.stderr, flush=True)  # fmt: skip


def _reconcile_progress(kind: Kind, counts: Counts) -> None:
    if sys.stderr.isatty():
        print(f"\r{kind}: {counts.checked} checked, {counts.drifted} drifted, {counts.missing} missing",
              end="", file=sys.stderr, flush=True)  # fmt: skip


async def _last_reports(settings: Settings, sync: SyncSettings) -> dict[str, str]:
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        return {
            connection.name: format_report(kept[0]) if (kept := await store.reconciliations(connection.name))
            else "no reconciliation kept yet"
            for connection in sync.connection
        }  # fmt: skip


def _reconcile_main(settings: Settings, sync: SyncSettings, args: argparse.Namespace) -> None:
    if args.last:
        for name, text in asyncio.run(_last_reports(settings, sync)).items():
            print(f"connection {name}\n{text}")
        return

    async def one_pass(ctx: SyncContext, publish: Publish | None) -> Reconciliation:
        return await reconcile(ctx, publish, now=time.time(), progress=_reconcile_progress)

    results = asyncio.run(run_pass(settings, sync, one_pass, dry_run=args.dry_run))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for name, result in results.items():
        print(f"connection {name}\n" + (format_report(result) if isinstance(result, Reconciliation) else
                                        f"skipped: {result}"))  # fmt: skip


def main(args: argparse.Namespace) -> None:
    settings = process_settings(args.config)
    if args.backfill or args.reconcile:
        sync = load_sync_settings(settings.config)
        if args.connection:
            chosen = sync.named(args.connection)
            if chosen is None:
                raise SystemExit(f"hsqbo poller: no connection named {args.connection!r} in the sync config")
            sync = SyncSettings(connection=[chosen])
        if args.reconcile:
            _reconcile_main(settings, sync, args)
            return
        since = dt.datetime.fromtimestamp(args.since, dt.UTC) if args.since is not None else None

        async def one_pass(ctx: SyncContext, publish: Publish | None) -> list[Tally]:
            return await backfill(ctx, publish, since=since, progress=_progress)

        results = asyncio.run(run_pass(settings, sync, one_pass, dry_run=args.dry_run))
        if sys.stderr.isatty():
            print(file=sys.stderr)
        for name, result in results.items():
            print(f"connection {name}" + (" (dry run: nothing queued)" if args.dry_run else ""))
            print(report(result) if isinstance(result, list) else f"skipped: {result}")
        return
    serve_metrics(settings.metrics_host, settings.metrics_port)

    async def serve() -> None:
        await run_poller(settings, stop_on_signals(), once=args.once)

    asyncio.run(serve())

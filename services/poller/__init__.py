"""`hsqbo poller`: the fallback for missed webhooks. Polls QBO (CDC) and HubSpot (search) for changes the worker has
not synced and queues them like webhook events. `--backfill` is the initial sync: every record not in sync, once;
`--backfill --plan FILE` writes what it would do (link, create, exclude, needs review) and writes nothing, `--backfill
--apply FILE` runs that plan once its reviews are decided; `--reconcile` compares every linked pair's values, reports
and re-queues those apart."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import orjson

from services.poller import _plan
from services.poller._backfill import backfill, report
from services.poller._first_sync import apply_plan, make_plan
from services.poller._first_sync import progress as first_sync_progress
from services.poller._poller import Poller
from services.poller._reconcile import Counts, format_report, reconcile
from services.poller._source import Publish, Tally
from shared.broker import Broker, Lane
from shared.clients import bulk_calls
from shared.config import Settings
from shared.connections import ConnectionPaused, ContextFactory, SyncContext
from shared.domain import Kind
from shared.envelope import ChangeEnvelope
from shared.errors import AuthRevoked, MissingScopes
from shared.health import READINESS, Probe
from shared.metrics import serve_metrics
from shared.process import parse_time, process_settings, run_service
from shared.runtime import open_runtime
from shared.store import FirstSync, Reconciliation, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings, load_sync_settings

__all__ = ["Poller", "Tally", "backfill", "configure_parser", "main", "reconcile", "run_pass", "run_poller"]

BROKER_WAIT_SECONDS = 30.0
FOLLOW_SECONDS = 1.0  # between two looks at a running first sync's progress


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="sync rules TOML (default: HSQBO_CONFIG)")
    parser.add_argument("--once", action="store_true", help="poll every connection once, then exit")
    passes = parser.add_argument_group("one-off passes (then exit)")
    passes.add_argument("--backfill", action="store_true", help="queue every record not in sync, then exit")
    passes.add_argument("--since", type=parse_time, metavar="TIME",
                        help="only records changed since (ISO 8601 or a duration ago: 30d); default: all")  # fmt: skip
    passes.add_argument("--dry-run", action="store_true", help="with --backfill or --reconcile: count, queue nothing")
    passes.add_argument("--connection", help="only this connection (default: all)")
    passes.add_argument("--plan", metavar="FILE", help="with --backfill: write what it would do to FILE, write nothing")
    passes.add_argument("--apply", metavar="FILE", help="with --backfill: run the plan in FILE, follow its progress")
    passes.add_argument("--reconcile", action="store_true",
                        help="compare every linked pair, print a report, queue the ones apart, then exit")  # fmt: skip
    passes.add_argument("--last", action="store_true", help="with --reconcile: print the last kept report, run none")


def bulk_publisher(broker: Broker) -> Publish:
    """What the poller finds is catch-up work: it travels in the bulk lane, never ahead of live changes."""

    async def publish(envelopes: Sequence[ChangeEnvelope]) -> None:
        await broker.publish(envelopes, Lane.BULK)

    return publish


@contextlib.asynccontextmanager
async def _working_set(
    settings: Settings, *, publishing: bool
) -> AsyncIterator[tuple[Store, ContextFactory, Publish | None]]:
    """The store, connection contexts on it, and a confirmed publisher (None when not `publishing`)."""
    async with open_runtime(settings, publishing=publishing) as runtime:
        if runtime.broker is None:
            yield runtime.store, runtime.contexts, None
            return
        broker = runtime.broker
        store_reachable = Probe()
        READINESS.add("broker", lambda: broker.ready)
        READINESS.add("store", store_reachable)
        probing = asyncio.create_task(store_reachable.forever(runtime.store.count_pending))
        try:
            await broker.wait_ready(BROKER_WAIT_SECONDS)  # not ready: publishing fails, and is retried or reported
            yield runtime.store, runtime.contexts, bulk_publisher(broker)
        finally:
            probing.cancel()
            READINESS.clear()


async def run_poller(settings: Settings, stop: asyncio.Event, *, once: bool = False) -> None:
    """Poll until `stop` is set (or one round with `once`). Its API calls are catch-up work: they leave part of each
    API limit to the workers' live changes (`bulk_calls`)."""
    sync = load_sync_settings(settings.config)
    async with _working_set(settings, publishing=True) as (store, contexts, publish):
        assert publish is not None
        poller = Poller(settings, sync, store, contexts, publish)
        with bulk_calls():
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
        with bulk_calls():
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


def _one_connection(sync: SyncSettings, option: str) -> ConnectionSettings:
    if len(sync.connection) != 1:
        raise SystemExit(f"hsqbo poller: {option} plans one connection: name it with --connection")
    return sync.connection[0]


def _first_sync_main(settings: Settings, sync: SyncSettings, args: argparse.Namespace, since: dt.datetime | None) -> (
    None
):  # fmt: skip
    """`--backfill --plan FILE` or `--backfill --apply FILE` (see _first_sync.py)."""
    path = Path(args.plan or args.apply)
    if args.plan:
        connection = _one_connection(sync, "--plan")
        plan = asyncio.run(_plan_to_file(settings, connection, since, path))
        print(f"connection {connection.name}: plan written to {path}; nothing was written to either account")
        print(_plan.report(plan))
        if plan.unresolved():
            print(f"{len(plan.unresolved())} record(s) need a decision: set their \"decision\" in the file (pick "
                  "with \"pick\": ID, create_new, exclude) or on the status page, then --apply")  # fmt: skip
        return
    try:
        plan = _plan.from_json(orjson.loads(path.read_bytes()))
    except (OSError, orjson.JSONDecodeError, _plan.PlanError) as exc:
        raise SystemExit(f"hsqbo poller: cannot read the plan {path}: {exc}") from None
    planned = sync.named(plan.connection)
    if planned is None:
        raise SystemExit(f"hsqbo poller: the plan is for connection {plan.connection!r}, not in the sync config")
    asyncio.run(_apply_and_follow(settings, planned, plan))


async def _plan_to_file(
    settings: Settings, connection: ConnectionSettings, since: dt.datetime | None, path: Path
) -> _plan.Plan:
    def planned(looked_at: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{looked_at} records looked at", end="", file=sys.stderr, flush=True)

    async with _working_set(settings, publishing=False) as (store, contexts, _):
        ctx = await _context(contexts, connection)
        plan = await make_plan(ctx, since=since, now=time.time(), planned=planned)
        await asyncio.to_thread(path.write_bytes, orjson.dumps(_plan.to_json(plan), option=orjson.OPT_INDENT_2))
        kept = FirstSync(connection=connection.name, plan=_plan.to_json(plan), planned_at=plan.planned_at)
        await store.save_first_sync(kept)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return plan


async def _apply_and_follow(settings: Settings, connection: ConnectionSettings, plan: _plan.Plan) -> None:
    async with _working_set(settings, publishing=True) as (store, _, publish):
        assert publish is not None
        try:
            queued = await apply_plan(store, connection, plan, publish)
        except _plan.PlanError as exc:
            raise SystemExit(f"hsqbo poller: the plan cannot be applied yet:\n{exc}") from None
        confirmed = FirstSync(
            connection=connection.name, plan=_plan.to_json(plan), planned_at=plan.planned_at, applied_at=time.time()
        )
        applied = await store.save_first_sync(confirmed)
        print(f"connection {connection.name}: {queued} record(s) queued for the workers", flush=True)
        while (done := await first_sync_progress(store, applied, time.time())) is not None and not done.finished:
            if sys.stderr.isatty():
                print(f"\r{_plan.progress_line(done)}", end="", file=sys.stderr, flush=True)
            await asyncio.sleep(FOLLOW_SECONDS)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        if done is not None:
            print(_plan.progress_line(done))


async def _context(contexts: ContextFactory, connection: ConnectionSettings) -> SyncContext:
    try:
        return await contexts.get(connection)
    except ConnectionPaused as paused:
        raise SystemExit(f"hsqbo poller: {paused}") from None


def main(args: argparse.Namespace) -> None:
    if (args.plan or args.apply) and not args.backfill:
        raise SystemExit("hsqbo poller: --plan and --apply go with --backfill")
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
        if args.plan or args.apply:
            _first_sync_main(settings, sync, args, since)
            return

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
    run_service(lambda stop: run_poller(settings, stop, once=args.once), settings)

"""`hsqbo worker`: consumes queued changes and applies the sync rules both ways. How an event travels through it,
one part per module (each readable in one sitting):

    broker adapter  `_consumer.py`   the live and bulk lanes' queues, consumed (shared/broker.py declares them);
                                     each delivery decoded and handed on, acknowledged once carried through
      │ a change (webhook, poller)           │ an apply command (a change's, a retry's, "Sync now", the sweep's)
      ▼                                      ▼
    scheduler       `_scheduler.py`  a change → `_ingest.route` → the records' pending work in the store → an apply
                                     command into the change's lane at once (a record with no link yet settles
                                     HSQBO_UNLINKED_SETTLE_SECONDS first; a change to a record already pending
                                     coalesces into it); a failure → the one `RetryPolicy`
                                     (`_retry.py`): retry through a delay queue, or a dead letter with its history,
                                     watched by the guard (`_guard.py`); the sweep re-schedules lost work
      │ an apply command
      ▼
    applier         `_applier.py`    the record's lease → the engine (`_engine.py`: the rule of `rules/` re-reads
                                     the source, merges, and plans its writes (`_plan.py`), which `_executor.py`
                                     carries out: the other side, the link, the activity) →
                                     the records it wakes (back to the scheduler) → finish, or one follow-up apply
                                     when changes arrived meanwhile
      ▼
    API clients     shared/clients/  the calls of the connection's applies in flight meet in batch calls
                                     (`_batching.py`: the engine counts its applies in flight, a batch goes when
                                     full or once every one of them waits, so a lone change goes alone, at once);
                                     the echo of our own QBO write is answered from the write (`_echoes.py`)
      ▼
    HubSpot CRM v3 / QBO v3 API

`_worker.py` puts the three together (`Worker`: start, graceful stop, the sweep's timer, the links gauge). Applies
run concurrently: each delivery's handler is a task of its own (aio-pika), up to HSQBO_WORKER_PREFETCH per queue,
and the records of one delivery are handed on together, so their calls meet in batches.
"""

from __future__ import annotations

import argparse
import asyncio

from services.worker._engine import Engine
from services.worker._worker import Worker
from shared.config import Settings
from shared.health import READINESS, Probe
from shared.metrics import serve_metrics
from shared.process import process_settings, run_service
from shared.runtime import open_runtime
from shared.syncconfig import load_sync_settings

__all__ = ["Engine", "Worker", "configure_parser", "main", "run_worker"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="sync rules TOML (default: HSQBO_CONFIG)")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run one worker until `stop` is set."""
    sync = load_sync_settings(settings.config)
    async with open_runtime(settings, sync) as runtime:
        assert runtime.broker is not None
        worker = Worker(settings, sync, runtime.store, Engine(runtime.store, runtime.contexts, sync),
                        broker=runtime.broker)  # fmt: skip
        store_reachable = Probe()
        READINESS.add("broker", lambda: worker.connected)
        READINESS.add("store", store_reachable)
        starting = asyncio.create_task(worker.start(broker_wait=0.0))
        probing = asyncio.create_task(store_reachable.forever(runtime.store.count_pending))
        try:
            await stop.wait()
        finally:
            probing.cancel()
            READINESS.clear()
            starting.cancel()
            await worker.stop()


def main(args: argparse.Namespace) -> None:
    settings = process_settings(args.config)
    serve_metrics(settings.metrics_host, settings.metrics_port)
    run_service(lambda stop: run_worker(settings, stop), settings)

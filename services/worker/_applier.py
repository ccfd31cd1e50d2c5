"""The applier: one record brought up to date, under its lease.

    claim the record's lease (None: nothing pending, or another apply holds it: that one sees our changes)
    → keep it renewed while the engine runs the rule (services/worker/_engine.py: re-read, merge, write, record)
    → (the scheduler wakes the records it names) → `finish`: the pending row goes if no change arrived meanwhile;
      otherwise it stays for one follow-up apply.

A failure escapes with the lease still held: the scheduler decides when the record runs again and sets it aside
until then (`Store.defer_pending`), so neither the sweep nor a stray message runs it earlier.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable

from services.worker._engine import Applied, Engine
from services.worker._hints import oldest_change_at, request_ids, traces
from shared import tracing
from shared.domain import PendingKey
from shared.heartbeat import Pulse
from shared.logging import bound, get_logger
from shared.metrics import APPLIES, APPLY_LATENCY, SYNC_LAG
from shared.store import PendingWork

log = get_logger("hsqbo.worker")

# Outcomes that wrote the record on the other side: the end of its end-to-end lag.
SYNCING_ACTIONS = frozenset({"created", "updated", "linked", "deleted", "voided", "merged"})


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    applied: Applied
    owner: str  # the lease holder, until `finish`
    generation: int  # of the pending work it applied


class ApplyFailed(Exception):
    """The engine (or the store around it) failed; `owner` still holds the record's lease."""

    def __init__(self, error: Exception, owner: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.owner = owner


class Applier:
    def __init__(
        self, store: PendingWork, engine: Engine, *, lease_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.process = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.pulse: Pulse | None = None  # notes each synced record for the status page (shared/heartbeat.py)

    async def apply(self, key: PendingKey) -> Result | None:
        """Apply the record now; None when there is nothing to do here. Raises ApplyFailed."""
        # One lease holder per apply, not per process: two apply messages for one record exclude each other even
        # inside one worker.
        owner = f"{self.process}:{uuid.uuid4().hex[:12]}"
        try:
            claimed = await self.store.claim_pending(key, owner, self.clock(), self.lease_seconds)
        except Exception as exc:
            raise ApplyFailed(exc, owner) from exc
        if claimed is None:
            return None
        started = time.perf_counter()
        brought_by = request_ids(claimed.hints)
        traced = traces(claimed.hints)
        renewing = asyncio.create_task(self._keep_lease(key, owner))
        # Every line logged while applying (ours, the API clients') names the webhook requests that brought it; the
        # apply's span continues the oldest change's trace and links the others.
        with (
            bound(
                request_id=brought_by[0] if brought_by else None,
                request_ids=brought_by if len(brought_by) > 1 else None,
            ),
            tracing.span(
                f"apply {key.kind}", parent=traced[0] if traced else None, links=traced[1:], side=str(key.side),
                object_id=key.object_id,
            ),
        ):  # fmt: skip
            try:
                applied = await self.engine.apply(key, claimed.hints)
            except Exception as exc:
                raise ApplyFailed(exc, owner) from exc
            finally:
                renewing.cancel()
        APPLIES.labels(key.kind, applied.outcome.action).inc()
        APPLY_LATENCY.labels(key.kind).observe(time.perf_counter() - started)
        changed_at = oldest_change_at(claimed.hints)
        if changed_at is not None and applied.outcome.action in SYNCING_ACTIONS:
            SYNC_LAG.labels(key.kind, key.side).observe(max(self.clock() - changed_at, 0.0))
        if applied.outcome.action in SYNCING_ACTIONS and self.pulse is not None:  # the status page's charts
            self.pulse.synced(key.connection, key.kind, None if changed_at is None else self.clock() - changed_at)
        return Result(applied, owner, claimed.generation)

    async def finish(self, key: PendingKey, result: Result) -> bool:
        """Remove the record's pending work if no change arrived meanwhile; False when one did (the row stays, its
        lease released: it is applied again) or it was set aside. Raises ApplyFailed."""
        try:
            finished = await self.store.finish_pending(key, result.owner, result.generation)
        except Exception as exc:
            raise ApplyFailed(exc, result.owner) from exc
        log.debug(
            "apply_done", kind=key.kind, side=key.side, object_id=key.object_id, generation=result.generation,
            action=result.applied.outcome.action, finished=finished,
        )  # fmt: skip
        return finished

    async def _keep_lease(self, key: PendingKey, owner: str) -> None:
        """Renew the record's lease while its apply runs (throttled or slow APIs can outlast one lease), so no other
        worker takes the record meanwhile. Only a process that stops renewing (a crash) loses it."""
        renewing = asyncio.current_task()
        # Ends on cancellation even when a store call swallowed the CancelledError: a renewal outliving its apply
        # holds the record for ever (the chaos soak saw one left `cancelling` for minutes after a broker restart).
        while renewing is None or not renewing.cancelling():
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                renewed = await self.store.claim_pending(key, owner, self.clock(), self.lease_seconds)
            except Exception as exc:  # the store is down: try again at the next turn, the lease may still hold
                log.warning("lease_renewal_failed", kind=key.kind, object_id=key.object_id, error=type(exc).__name__)
                continue
            if renewed is None:
                log.error("lease_lost", kind=key.kind, object_id=key.object_id)
                return

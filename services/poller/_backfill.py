"""The initial sync (backfill): every record on both sides changed since a date (or ever), queued unless its link
already shows that version — the poller's envelopes, through the same worker, so the sync rules and filters decide
what becomes of each (match by email or SKU, create, exclude). A dry run counts what would be queued and queues
nothing. The poller's cursors are left alone: it goes on watching from where it was.

QBO is read with queries (`MetaData.LastUpdatedTime >= since`, by id) rather than CDC, which looks back 30 days only;
a query returns active records, which is what a first sync wants. HubSpot is read with the same search as the poller.

Its envelopes carry no change time (0: unknown): a record changed months ago and synced now is a first sync, not an
end-to-end lag of months (hsqbo_sync_lag_seconds).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from services.poller import _hubspot, _qbo
from services.poller._source import Progress, Publish, Tally, TallyQueue
from shared.clients import qbo_quote
from shared.connections import SyncContext
from shared.domain import Provider
from shared.envelope import ChangeEnvelope


def _untimed(publish: Publish) -> Publish:
    async def untimed(envelopes: Sequence[ChangeEnvelope]) -> None:
        await publish([dataclasses.replace(envelope, occurred_at_ms=0) for envelope in envelopes])

    return untimed


async def backfill(
    ctx: SyncContext, publish: Publish | None, *, since: dt.datetime | None, progress: Progress = lambda tally: None
) -> list[Tally]:
    """Queue (or with `publish` None, count) every record of the connection's synced objects changed since `since`."""
    connection = ctx.connection
    if publish is not None:
        publish = _untimed(publish)
    tallies: list[Tally] = []
    for kind, entity in _qbo.ENTITIES.items():
        if not connection.objects(kind).syncs_from(Provider.QUICKBOOKS):
            continue
        queue = TallyQueue(publish, Tally(Provider.QUICKBOOKS, entity.lower()), progress)
        where = f"MetaData.LastUpdatedTime >= {qbo_quote(since.isoformat())}" if since else None
        async for row in ctx.qbo.query_all(entity, where=where, order_by="Id"):
            await _qbo.add(ctx, queue, kind, entity, row)
        await queue.flush()
        tallies.append(queue.tally)
    since_ms = int(since.timestamp() * 1000) if since else 0
    for kind, object_types in _hubspot.OBJECT_TYPES.items():
        if not connection.objects(kind).syncs_from(Provider.HUBSPOT):
            continue
        handled: set[str] = set()  # an invoice and its line items make one invoice change
        for object_type, envelope_type in object_types:
            queue = TallyQueue(publish, Tally(Provider.HUBSPOT, envelope_type), progress)
            await _hubspot.add_all(ctx, queue, kind, _hubspot.modified_since(ctx, kind, object_type, since_ms), handled)
            await queue.flush()
            tallies.append(queue.tally)
    return tallies


def report(tallies: Sequence[Tally]) -> str:
    """A table of what a backfill found, one line per side and object type."""
    lines = [f"{'side':<12}{'object':<18}{'found':>8}{'in sync':>9}{'queued':>8}"]
    lines += [f"{t.provider:<12}{t.object_type:<18}{t.found:>8}{t.in_sync:>9}{t.queued:>8}" for t in tallies]
    return "\n".join(lines)

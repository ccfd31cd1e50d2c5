"""The initial sync (backfill): every record on both sides changed since a date (or ever), queued unless its link
already shows that version — the poller's envelopes, through the same worker, so the sync rules and filters decide
what becomes of each (match by email or SKU, create, exclude). A dry run counts what would be queued and queues
nothing. The poller's cursors are left alone: it goes on watching from where it was.

QBO is read with queries (`MetaData.LastUpdatedTime >= since`, by id) rather than CDC, which looks back 30 days only;
a query returns active records, which is what a first sync wants. HubSpot is read with the same search as the poller.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence

from services.poller import _hubspot, _qbo
from services.poller._source import PUBLISH_CHUNK, Publish
from shared.clients import qbo_quote
from shared.connections import SyncContext
from shared.envelope import ChangeEnvelope, Provider


@dataclasses.dataclass(slots=True)
class Tally:
    """What a backfill found of one object type on one side."""

    provider: Provider
    object_type: str
    found: int = 0
    in_sync: int = 0  # the link already shows this version: nothing to do
    queued: int = 0  # queued (or, in a dry run, would be)


Progress = Callable[[Tally], None]  # called after each chunk, for a progress line


class TallyQueue:
    """Envelopes of one object type, published in chunks as they come (unless a dry run), counted in `tally`."""

    def __init__(self, publish: Publish | None, tally: Tally, progress: Progress) -> None:
        self.publish = publish
        self.tally = tally
        self.progress = progress
        self.waiting: list[ChangeEnvelope] = []

    async def add(self, envelope: ChangeEnvelope | None) -> None:
        self.tally.found += 1
        if envelope is None:
            self.tally.in_sync += 1
        else:
            self.waiting.append(envelope)
        if len(self.waiting) >= PUBLISH_CHUNK:
            await self.flush()

    async def flush(self) -> None:
        if self.waiting and self.publish is not None:
            await self.publish(self.waiting)
        self.tally.queued += len(self.waiting)
        self.waiting = []
        self.progress(self.tally)


async def backfill(
    ctx: SyncContext, publish: Publish | None, *, since: dt.datetime | None, progress: Progress = lambda tally: None
) -> list[Tally]:
    """Queue (or with `publish` None, count) every record of the connection's synced objects changed since `since`."""
    connection = ctx.connection
    tallies: list[Tally] = []
    for kind, entity in _qbo.ENTITIES.items():
        if not connection.objects(kind).syncs_from(Provider.QUICKBOOKS):
            continue
        queue = TallyQueue(publish, Tally(Provider.QUICKBOOKS, entity.lower()), progress)
        where = f"MetaData.LastUpdatedTime >= {qbo_quote(since.isoformat())}" if since else None
        async for row in ctx.qbo.query_all(entity, where=where, order_by="Id"):
            link = await ctx.store.get_link(ctx.name, kind, qbo_id=str(row["Id"]))
            await queue.add(None if _qbo.in_sync(link, row) else _qbo.envelope(connection.qbo_realm_id, entity, row))
        await queue.flush()
        tallies.append(queue.tally)
    since_ms = int(since.timestamp() * 1000) if since else 0
    for kind, object_types in _hubspot.OBJECT_TYPES.items():
        if not connection.objects(kind).syncs_from(Provider.HUBSPOT):
            continue
        for object_type, envelope_type in object_types:
            queue = TallyQueue(publish, Tally(Provider.HUBSPOT, envelope_type), progress)
            async for record in _hubspot.modified_since(ctx, object_type, since_ms):
                link = await _hubspot.link_of(ctx, kind, envelope_type, record.id)
                in_sync = _hubspot.in_sync(link, record)
                await queue.add(
                    None if in_sync else _hubspot.envelope(connection.hubspot_portal_id, envelope_type, record)
                )
            await queue.flush()
            tallies.append(queue.tally)
    return tallies


def report(tallies: Sequence[Tally]) -> str:
    """A table of what a backfill found, one line per side and object type."""
    lines = [f"{'side':<12}{'object':<18}{'found':>8}{'in sync':>9}{'queued':>8}"]
    lines += [f"{t.provider:<12}{t.object_type:<18}{t.found:>8}{t.in_sync:>9}{t.queued:>8}" for t in tallies]
    return "\n".join(lines)

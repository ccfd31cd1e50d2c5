"""Reconciliation: the deletions polling cannot see. HubSpot search finds live records only, so a HubSpot record
deleted while its webhook was lost would stay linked, its QBO counterpart active, for ever. A reconciliation reads
every synced link's HubSpot record back (batch reads of 100) and queues a deletion for each one that is gone; the
worker's rule re-reads it and makes the QBO record inactive, as for a delivered deletion webhook. QBO needs none:
CDC reports deleted records, and customers and items are made inactive, which is an update.

The poller runs it once every `reconcile_seconds` per connection (when is kept in the store, so restarts and other
pollers agree); `hsqbo poller --reconcile [--dry-run]` runs it now.
"""

from __future__ import annotations

from services.poller import _hubspot
from services.poller._source import Poll, Progress, Publish, Tally, TallyQueue
from shared.connections import SyncContext
from shared.envelope import ChangeEnvelope, Operation, Provider
from shared.logging import get_logger
from shared.store import LinkStatus

log = get_logger("hsqbo.poller")

LINKS_PER_READ = 100  # HubSpot's batch read limit
RECONCILED_AT = "hubspot:reconciled_at"  # the store cursor: when this connection was last reconciled


def deletion(portal_id: str, object_type: str, object_id: str, now: float) -> ChangeEnvelope:
    return ChangeEnvelope(
        provider=Provider.HUBSPOT,
        account_id=portal_id,
        object_type=object_type,
        object_id=object_id,
        operation=Operation.DELETED,
        occurred_at_ms=int(now * 1000),
        event_id=f"reconcile:{portal_id}:{object_type}:{object_id}",
    )


async def reconcile(
    ctx: SyncContext, publish: Publish | None, *, now: float, progress: Progress = lambda tally: None
) -> list[Tally]:
    """Queue (or with `publish` None, count) a deletion for every synced HubSpot record that no longer exists."""
    connection = ctx.connection
    tallies = []
    for kind, object_types in _hubspot.OBJECT_TYPES.items():
        if not connection.objects(kind).syncs_from(Provider.HUBSPOT):
            continue
        object_type, envelope_type = object_types[0]  # the record's own type (line items have no links)
        queue = TallyQueue(publish, Tally(Provider.HUBSPOT, envelope_type), progress)
        offset = 0
        while links := await ctx.store.list_links(
            ctx.name, kind, LinkStatus.SYNCED, limit=LINKS_PER_READ, offset=offset
        ):
            offset += len(links)
            ids = [link.hubspot_id for link in links if link.hubspot_id is not None]
            found = await ctx.hubspot.batch_read(object_type, ids) if ids else None
            present = {record.id for record in found.results} if found else set()
            for object_id in ids:
                gone = object_id not in present
                await queue.add(deletion(connection.hubspot_portal_id, envelope_type, object_id, now) if gone else None)
        await queue.flush()
        tallies.append(queue.tally)
    return tallies


class HubSpotDeletions:
    """The poller's reconciliation: due once every `reconcile_seconds` per connection."""

    provider = Provider.HUBSPOT

    async def poll(self, poll: Poll) -> float | None:
        last = await poll.cursor(RECONCILED_AT)
        if last is not None and poll.now - float(last) < poll.reconcile_seconds:
            return None
        tallies = await reconcile(poll.ctx, poll.publish, now=poll.now)
        await poll.advance(RECONCILED_AT, str(poll.now))
        gone = sum(tally.queued for tally in tallies)
        log.info("reconciled", connection=poll.ctx.name, checked=sum(t.found for t in tallies), gone=gone)
        return None

"""HubSpot changes by CRM search: per synced object type, records modified since that type's cursor, oldest first.

A search query pages through at most 10,000 results: past that the search starts again from the last modification
date seen. Line items stand for their invoice (the worker routes a line item's change to it). Search finds live
records only: a deletion whose webhook was lost waits for a reconciliation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.poller._source import Poll, TallyQueue
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.envelope import ChangeEnvelope, Operation, Provider
from shared.store import Kind, Link, PendingKey

# kind -> (search object type, envelope object type) of each HubSpot type whose changes are that kind's
OBJECT_TYPES = {
    Kind.CONTACT: (("contacts", "contact"),),
    Kind.PRODUCT: (("products", "product"),),
    Kind.INVOICE: (("invoices", "invoice"), ("line_items", "line_item")),
    Kind.PAYMENT: (("commerce_payments", "commerce_payment"),),
}
RESULT_CAP = 10_000  # results one search query pages through
PAGE_SIZE = 200


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def cursor_name(object_type: str) -> str:
    return f"hubspot:{object_type}"


def in_sync(link: Link | None, record: HubSpotObject) -> bool:
    """Whether the link already shows this version of the record (its `updatedAt`): nothing to do."""
    return link is not None and record.updated_at is not None and link.hubspot_version == record.updated_at.isoformat()


async def add(ctx: SyncContext, queue: TallyQueue, kind: Kind, record: HubSpotObject) -> None:
    """A record found changed: queued unless its link shows this version. A line item has no link: each change of
    one is work for its invoice."""
    envelope_type = queue.tally.object_type
    part = envelope_type == "line_item"
    link = None if part else await ctx.store.get_link(ctx.name, kind, hubspot_id=record.id)
    key = PendingKey(ctx.name, kind, Provider.HUBSPOT, f"{envelope_type}:{record.id}" if part else record.id)
    await queue.add(
        None if in_sync(link, record) else envelope(ctx.connection.hubspot_portal_id, envelope_type, record), key, link
    )


def envelope(portal_id: str, object_type: str, record: HubSpotObject) -> ChangeEnvelope:
    updated_ms = int(record.updated_at.timestamp() * 1000) if record.updated_at else 0
    return ChangeEnvelope(
        provider=Provider.HUBSPOT,
        account_id=portal_id,
        object_type=object_type,
        object_id=record.id,
        operation=Operation.UPDATED,
        occurred_at_ms=updated_ms,
        event_id=f"poll:{portal_id}:{object_type}:{record.id}:{updated_ms}",  # one version found twice: one event
    )


async def modified_since(ctx: SyncContext, object_type: str, since_ms: int) -> AsyncIterator[HubSpotObject]:
    """Every record of `object_type` modified at or after `since_ms`, oldest first."""
    modified = modified_property(object_type)
    while True:
        after: str | None = None
        last_ms = since_ms
        while True:
            page = await ctx.hubspot.search(
                object_type,
                filter_groups=[{"filters": [{"propertyName": modified, "operator": "GTE", "value": str(since_ms)}]}],
                properties=[modified],
                sorts=[{"propertyName": modified, "direction": "ASCENDING"}],
                limit=PAGE_SIZE,
                after=after,
            )
            for record in page.results:
                if record.updated_at is not None:
                    last_ms = max(last_ms, int(record.updated_at.timestamp() * 1000))
                yield record
            if page.after is None or not page.results:
                return
            if int(page.after) + PAGE_SIZE > RESULT_CAP:
                break  # the next page would pass the cap: query again from the last date seen
            after = page.after
        # Records modified in the same millisecond as `last_ms` come again: duplicates, harmless (one event id).
        since_ms = last_ms if last_ms > since_ms else since_ms + 1


class HubSpotChanges:
    provider = Provider.HUBSPOT

    async def poll(self, poll: Poll) -> float:
        ctx = poll.ctx
        connection = ctx.connection
        next_ms = int(poll.now * 1000) - int(poll.overlap_seconds * 1000)
        for kind, object_types in OBJECT_TYPES.items():
            if not connection.objects(kind).syncs_from(Provider.HUBSPOT):
                continue
            for object_type, envelope_type in object_types:
                stored = await poll.cursor(cursor_name(object_type))
                since_ms = int(stored) if stored else next_ms  # watching starts now (see _poller)
                queue = poll.queue(Provider.HUBSPOT, envelope_type)
                async for record in modified_since(ctx, object_type, since_ms):
                    await add(ctx, queue, kind, record)
                await poll.done(queue)
                await poll.advance(cursor_name(object_type), str(max(next_ms, since_ms)))
        return poll.now

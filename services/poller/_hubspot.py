"""HubSpot changes by CRM search: per synced object type, records modified since that type's cursor, oldest first.

A search query pages through at most 10,000 results: past that the search starts again from the last modification
date seen. Search finds live records only: a deletion whose webhook was lost waits for a reconciliation.

A record is queued only when its version (`updatedAt`) is newer than the one its link last saw, whatever the link's
status. Line items have no links: a line item found changed stands for its invoice (read through the association),
which is queued once per poll, and only when the invoice's own version is not the one its link shows (HubSpot
recomputes an invoice's amounts when a line item's price, quantity or discount changes, a new invoice version).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.poller._source import Poll, TallyQueue
from services.worker import _fields
from services.worker.rules import contacts
from services.worker.rules._pair import holds_agreement, hubspot_properties
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.domain import Kind, Part, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.errors import NotFound
from shared.store import Link
from shared.versions import link_shows

# kind -> (search object type, envelope object type) of each HubSpot type whose changes are that kind's
OBJECT_TYPES = {
    Kind.CONTACT: (("contacts", "contact"),),
    Kind.PRODUCT: (("products", "product"),),
    Kind.INVOICE: (("invoices", "invoice"), ("line_items", "line_item")),
    Kind.PAYMENT: (("commerce_payments", "commerce_payment"),),
}
RESULT_CAP = 10_000  # results one search query pages through
PAGE_SIZE = 200
LINE_ITEMS_PER_ROUND = 100  # line items whose invoices are looked up together (one batch read)


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def cursor_name(object_type: str) -> str:
    return f"hubspot:{object_type}"


# kind -> the field sync whose records the search reads with their mapped properties (see `in_sync`)
PAIRS = {Kind.CONTACT: contacts.SPEC}


def in_sync(ctx: SyncContext, kind: Kind, link: Link | None, record: HubSpotObject) -> bool:
    """Whether the record has nothing to sync: its link already shows this version (its `updatedAt`), whatever the
    link's status, or (a kind in `PAIRS`) it holds exactly its settled link's agreement (`holds_agreement`: a write of
    ours made without reading it first left the link's version behind)."""
    if link_shows(link, Provider.HUBSPOT, record.updated_at.isoformat() if record.updated_at else None):
        return True
    spec = PAIRS.get(kind)
    return spec is not None and holds_agreement(spec, ctx.connection.objects(kind), link, record)


def searched_properties(ctx: SyncContext, kind: Kind, object_type: str) -> list[str]:
    """What a search of `object_type` reads: its modification date, and a `PAIRS` kind's mapped properties."""
    spec = PAIRS.get(kind)
    maps = _fields.active_maps(spec.fields, ctx.connection.objects(kind)) if spec is not None else []
    return hubspot_properties(maps, modified_property(object_type))


async def add(ctx: SyncContext, queue: TallyQueue, kind: Kind, record: HubSpotObject, handled: set[str]) -> None:
    """A record found changed: queued unless its link shows this version. `handled`: the ids already looked at in
    this pass (an invoice found by its own search is not queued again for its line items)."""
    handled.add(record.id)
    link = await ctx.store.get_link(ctx.name, kind, hubspot_id=record.id)
    keys = [PendingKey(ctx.name, kind, Provider.HUBSPOT, record.id)]
    await queue.add(
        None
        if in_sync(ctx, kind, link, record)
        else envelope(ctx.connection.hubspot_portal_id, queue.tally.object_type, record),
        keys,
        link,
    )


async def add_line_items(
    ctx: SyncContext, queue: TallyQueue, line_items: list[HubSpotObject], invoices: set[str]
) -> None:
    """Line items found changed, each standing for its invoice: the invoice is queued (as an invoice change) once,
    unless it is in `invoices` (looked at already in this pass; then counted in sync) or its link shows its version."""
    parents: dict[str, list[str]] = {}
    for line_item in line_items:
        try:
            found = await ctx.hubspot.list_associations("line_items", line_item.id, "invoices")
        except NotFound:  # deleted since the search
            found = []
        parents[line_item.id] = [association.to_id for association in found]
    new = sorted({i for ids in parents.values() for i in ids} - invoices)
    records = {r.id: r for r in (await ctx.hubspot.batch_read("invoices", new)).results} if new else {}
    portal_id = ctx.connection.hubspot_portal_id
    for line_item in line_items:
        queued: ChangeEnvelope | None = None
        # The line item's webhook leaves work keyed by the line item, which the worker turns into its invoice's.
        keys = [PendingKey(ctx.name, Kind.INVOICE, Provider.HUBSPOT, line_item.id, Part.LINE_ITEM)]
        link: Link | None = None
        for invoice_id in parents[line_item.id]:
            if invoice_id in invoices or invoice_id not in records:
                continue
            invoices.add(invoice_id)
            invoice_link = await ctx.store.get_link(ctx.name, Kind.INVOICE, hubspot_id=invoice_id)
            if not in_sync(ctx, Kind.INVOICE, invoice_link, records[invoice_id]):
                queued = envelope(portal_id, "invoice", records[invoice_id])
                keys.append(PendingKey(ctx.name, Kind.INVOICE, Provider.HUBSPOT, invoice_id))
                link = invoice_link
        await queue.add(queued, keys, link)


async def add_all(
    ctx: SyncContext, queue: TallyQueue, kind: Kind, records: AsyncIterator[HubSpotObject], handled: set[str]
) -> None:
    """Every record of one search: each as `add`, or line items in rounds as `add_line_items`."""
    if queue.tally.object_type != "line_item":
        async for record in records:
            await add(ctx, queue, kind, record, handled)
        return
    waiting: list[HubSpotObject] = []
    async for record in records:
        waiting.append(record)
        if len(waiting) >= LINE_ITEMS_PER_ROUND:
            await add_line_items(ctx, queue, waiting, handled)
            waiting = []
    if waiting:
        await add_line_items(ctx, queue, waiting, handled)


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


async def modified_since(ctx: SyncContext, kind: Kind, object_type: str, since_ms: int) -> AsyncIterator[
    HubSpotObject
]:  # fmt: skip
    """Every record of `object_type` (of `kind`) modified at or after `since_ms`, oldest first, with the properties
    `in_sync` compares."""
    modified = modified_property(object_type)
    properties = searched_properties(ctx, kind, object_type)
    while True:
        after: str | None = None
        last_ms = since_ms
        while True:
            page = await ctx.hubspot.search(
                object_type,
                filter_groups=[{"filters": [{"propertyName": modified, "operator": "GTE", "value": str(since_ms)}]}],
                properties=properties,
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
            handled: set[str] = set()  # of this kind: an invoice and its line items make one invoice change
            for object_type, envelope_type in object_types:
                stored = await poll.cursor(cursor_name(object_type))
                since_ms = int(stored) if stored else next_ms  # watching starts now (see _poller)
                queue = poll.queue(Provider.HUBSPOT, envelope_type)
                await add_all(ctx, queue, kind, modified_since(ctx, kind, object_type, since_ms), handled)
                await poll.done(queue)
                await poll.advance(cursor_name(object_type), str(max(next_ms, since_ms)))
        return poll.now

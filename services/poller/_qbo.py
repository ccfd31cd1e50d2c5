"""QBO changes by change data capture: one CDC call for every synced entity, since the oldest of their cursors (one
read of the company's monthly budget per poll).

CDC answers at most 1000 objects and says nothing when it cut (whether the cap is per entity or shared is not
documented): an answer of 1000 objects or more is read as "maybe more", and each entity is asked on its own, where a
full answer moves that entity's cursor to the latest change in it and CDC is asked again. CDC orders each entity's
changes by last update (deleted ones last).
A cursor older than CDC's 30 days is moved forward with a warning: changes older than that need a reconciliation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.poller._source import Poll, TallyQueue
from shared.connections import SyncContext
from shared.domain import Kind, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.logging import get_logger
from shared.store import Link, LinkStatus
from shared.syncconfig import ConnectionSettings
from shared.versions import GONE, link_shows

log = get_logger("hsqbo.poller")

ENTITIES = {Kind.CONTACT: "Customer", Kind.PRODUCT: "Item", Kind.INVOICE: "Invoice", Kind.PAYMENT: "Payment"}
CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE = dt.timedelta(days=30)
CDC_AGE_MARGIN = dt.timedelta(hours=1)  # stay clear of the 30-day edge (clocks differ)
ROUNDS_PER_POLL = 10  # full answers followed in one poll; the rest waits for the next poll


def cursor_name(entity: str) -> str:
    return f"quickbooks:{entity}"


def _updated_at(row: dict[str, Any]) -> dt.datetime | None:
    value = (row.get("MetaData") or {}).get("LastUpdatedTime")
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def in_sync(link: Link | None, row: dict[str, Any]) -> bool:
    """Whether the link already shows this version of the record (whatever its status: synced, excluded, failing,
    deleted...): the worker has nothing to do. A deletion is in sync when nothing was linked, the link is deleted, or
    the worker already saw the record gone."""
    if row.get("status") == "Deleted":
        return link is None or link.status == LinkStatus.DELETED or link_shows(link, Provider.QUICKBOOKS, GONE)
    return link_shows(link, Provider.QUICKBOOKS, str(row.get("SyncToken")))


def envelope(realm_id: str, entity: str, row: dict[str, Any]) -> ChangeEnvelope:
    deleted = row.get("status") == "Deleted"
    updated = _updated_at(row)
    version = "deleted" if deleted else str(row.get("SyncToken"))
    return ChangeEnvelope(
        provider=Provider.QUICKBOOKS,
        account_id=realm_id,
        object_type=entity.lower(),
        object_id=str(row["Id"]),
        operation=Operation.DELETED if deleted else Operation.UPDATED,
        occurred_at_ms=int(updated.timestamp() * 1000) if updated else 0,
        event_id=f"poll:{realm_id}:{entity}:{row['Id']}:{version}",  # the same version found twice is one event
    )


async def add(ctx: SyncContext, queue: TallyQueue, kind: Kind, entity: str, row: dict[str, Any]) -> None:
    """A record found changed: queued unless its link shows this version."""
    link = await ctx.store.get_link(ctx.name, kind, qbo_id=str(row["Id"]))
    keys = [PendingKey(ctx.name, kind, Provider.QUICKBOOKS, str(row["Id"]))]
    await queue.add(None if in_sync(link, row) else envelope(ctx.connection.qbo_realm_id, entity, row), keys, link)


class QboChanges:
    provider = Provider.QUICKBOOKS

    @staticmethod
    def reads_per_poll(connection: ConnectionSettings) -> int:
        """QBO reads one poll costs when nothing piled up: one CDC call for every entity synced from QBO."""
        return int(any(connection.objects(kind).syncs_from(Provider.QUICKBOOKS) for kind in ENTITIES))

    async def poll(self, poll: Poll) -> float:
        connection = poll.ctx.connection
        now = dt.datetime.fromtimestamp(poll.now, dt.UTC)
        synced = {
            kind: entity for kind, entity in ENTITIES.items() if connection.objects(kind).syncs_from(self.provider)
        }
        together = await self._together(poll, synced, now) if len(synced) > 1 else None
        if together is not None:
            return together
        watermark = poll.now
        for kind, entity in synced.items():
            watermark = min(watermark, await self._entity(poll, kind, entity, now))
        return watermark

    async def _since(self, poll: Poll, entity: str, now: dt.datetime) -> dt.datetime:
        stored = await poll.cursor(cursor_name(entity))
        since = dt.datetime.fromisoformat(stored) if stored else now - dt.timedelta(seconds=poll.overlap_seconds)
        oldest = now - CDC_MAX_AGE + CDC_AGE_MARGIN  # watching starts now (see _poller) unless a cursor says since when
        if since < oldest:
            if stored:
                log.warning(
                    "poll_gap", connection=poll.ctx.name, entity=entity, cursor=stored, reason="older than 30 days"
                )
            since = oldest
        return since

    async def _together(self, poll: Poll, synced: dict[Kind, str], now: dt.datetime) -> float | None:
        """Every synced entity in one CDC call (one read of the company's budget) from the oldest cursor; None when
        the answer may be cut (1,000 objects: whether the cap is per entity or per answer is not documented), so
        each entity is asked on its own."""
        ctx = poll.ctx
        since = min([await self._since(poll, entity, now) for entity in synced.values()])
        result = await ctx.qbo.cdc(list(synced.values()), since)
        if sum(len(result.entities.get(entity, [])) for entity in synced.values()) >= CDC_MAX_OBJECTS:
            return None
        covered = result.time or now
        for kind, entity in synced.items():
            queue = poll.queue(Provider.QUICKBOOKS, entity.lower(), defer=True)
            for row in result.entities.get(entity, []):
                await add(ctx, queue, kind, entity, row)
            await poll.done(queue)
            await poll.advance(cursor_name(entity), (covered - dt.timedelta(seconds=poll.overlap_seconds)).isoformat())
        return covered.timestamp()

    async def _entity(self, poll: Poll, kind: Kind, entity: str, now: dt.datetime) -> float:
        ctx = poll.ctx
        overlap = dt.timedelta(seconds=poll.overlap_seconds)
        since = await self._since(poll, entity, now)
        for _ in range(ROUNDS_PER_POLL):
            result = await ctx.qbo.cdc([entity], since)
            rows = result.entities.get(entity, [])
            # A full answer moves the cursor to its latest change: nothing it holds may wait for the next poll.
            queue = poll.queue(Provider.QUICKBOOKS, entity.lower(), defer=len(rows) < CDC_MAX_OBJECTS)
            for row in rows:
                await add(ctx, queue, kind, entity, row)
            await poll.done(queue)
            if len(rows) < CDC_MAX_OBJECTS:
                covered = result.time or now
                await poll.advance(cursor_name(entity), (covered - overlap).isoformat())
                return covered.timestamp()
            # Maybe cut: go on from the latest change seen (a whole answer of one instant would not move: step past).
            latest = max((t for t in map(_updated_at, rows) if t is not None), default=since)
            if latest <= since:
                log.warning("poll_window_full", connection=ctx.name, entity=entity, since=since.isoformat())
                latest = since + dt.timedelta(seconds=1)
            since = latest
            await poll.advance(cursor_name(entity), since.isoformat())
        return since.timestamp()

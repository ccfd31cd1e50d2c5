"""The reviewed initial sync: plan (read both sides, decide, write nothing), then apply the confirmed plan.

`make_plan` reads what `_backfill.py` reads (QBO by query, HubSpot by search, then each page's records with the
properties the rules use, by batch read) and asks the sync rules what they would do with each record not in sync:
their own filters (`screen_*`) and matching (`match_*`, `rules._match.decide`) for contacts and products, the
filters for invoices and payments (matched by the id map only: a record with no link is created). It calls no write
endpoint and writes nothing to the store: the plan is a value (`_plan.py`), kept in a file or the store by the caller.

`apply_plan` refuses a plan with undecided reviews. Otherwise it records each review decision on the record's link
(as `hsqbo review resolve` does: status needs_review, the candidates, the decision), then queues every planned record
like the backfill (no change time: a first sync is no lag). The worker applies each with the rules, so a record that
changed since the plan is decided on what it is then (a match that appeared meanwhile is still found).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from services.poller import _hubspot, _qbo
from services.poller._plan import Action, Entry, Plan, PlanError, Progress, confirmable, without_mirrored_links
from services.poller._source import PUBLISH_CHUNK, Publish
from services.worker import _fields
from services.worker.rules import Excluded, Failing, contacts, products
from services.worker.rules import _filters as filters
from services.worker.rules import _match as match
from services.worker.rules._pair import hubspot_properties
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.company import CompanySettingsError
from shared.connections import SyncContext
from shared.domain import Kind, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.store import ActivityLog, Candidate, FirstSync, Link, LinkStatus, LinkStore, PendingWork, ReviewDecision
from shared.syncconfig import ConnectionSettings

BATCH_READ = 100  # ids per HubSpot batch read (HubSpot's limit)
# A confirmed first sync with no pending work for this long after it was queued is done (the workers turn queued
# changes into pending work within moments).
SETTLE_SECONDS = 10.0

Planned = Callable[[int], None]  # called with the number of records looked at so far, for a progress line


def _hubspot_properties(ctx: SyncContext, kind: Kind) -> list[str]:
    """The properties the rules read of a record of `kind` (for its filters, matching and label)."""
    settings = ctx.connection.objects(kind)
    wanted = set(settings.hubspot_to_qbo.hubspot_properties)
    if kind == Kind.CONTACT:
        wanted |= set(hubspot_properties(_fields.active_maps(contacts.SPEC.fields, ctx.connection.contacts)))
    elif kind == Kind.PRODUCT:
        wanted |= set(hubspot_properties(_fields.active_maps(products.SPEC.fields, ctx.connection.products)))
        wanted |= {"name", "hs_sku"}
    else:
        wanted |= {"hs_number", "hs_title", "hs_amount_billed", "hs_currency", "hs_initial_amount"}
    return sorted(wanted)


def label(kind: Kind, side: Provider, record: HubSpotObject | QboEntity) -> str:
    """What a person recognises a record by, short."""
    if isinstance(record, HubSpotObject):
        p = record.properties
        if kind == Kind.CONTACT:
            return contacts._contact_label(record)
        parts = [p.get("name") or p.get("hs_number") or p.get("hs_title"), p.get("hs_sku")]
        amount = p.get("hs_amount_billed") or p.get("hs_initial_amount")
        if amount:
            parts.append(f"{amount} {p.get('hs_currency') or ''}".strip())
        return ", ".join(str(part) for part in parts if part)[:120] or f"{kind} {record.id}"
    if kind == Kind.CONTACT:
        return contacts._label(record)
    name = record.get("Name") or record.get("DisplayName") or record.get("DocNumber")
    customer = (record.get("CustomerRef") or {}).get("name")
    parts = [name, record.get("Sku"), customer]
    if record.get("TotalAmt") is not None:
        parts.append(f"{record['TotalAmt']} {(record.get('CurrencyRef') or {}).get('value', '')}".strip())
    return ", ".join(str(part) for part in parts if part)[:120] or f"{kind} {record.get('Id')}"


async def _decide(ctx: SyncContext, kind: Kind, side: Provider, record: HubSpotObject | QboEntity, link: Link | None,
                  entry: Entry) -> Entry:  # fmt: skip
    """What the rules make of one record not in sync (`entry`: its identity, action still to set)."""
    if link is not None and link.hubspot_id is not None and link.qbo_id is not None:
        other = link.qbo_id if side == Provider.HUBSPOT else link.hubspot_id
        return dataclasses.replace(entry, action=Action.UPDATE, matched=Candidate(other, "linked"))
    if link is not None and link.review_decision == ReviewDecision.EXCLUDE:
        return dataclasses.replace(entry, action=Action.EXCLUDE, reason=match.EXCLUDED_BY_OPERATOR)
    settings = ctx.connection.objects(kind)
    try:
        chosen: match.Match
        if isinstance(record, HubSpotObject):
            if kind == Kind.CONTACT:
                await contacts.screen_contact(ctx, record)
                chosen, _ = await contacts.match_contact(ctx, record, link)
            elif kind == Kind.PRODUCT:
                await products.screen_product(ctx, record)
                chosen, _ = await products.match_product(ctx, record, link)
            else:  # invoices and payments: the id map only
                await filters.check_hubspot(ctx, settings.hubspot_to_qbo, record)
                chosen = match.Create()
        elif kind == Kind.CONTACT:
            await contacts.screen_customer(ctx, record)
            chosen, _ = await contacts.match_customer(ctx, record, link)
        elif kind == Kind.PRODUCT:
            await products.screen_item(ctx, record)
            chosen, _ = await products.match_item(ctx, record, link)
        else:
            await filters.check_qbo(ctx, settings.qbo_to_hubspot, record)
            chosen = match.Create()
    except Excluded as excluded:
        return dataclasses.replace(entry, action=Action.EXCLUDE, reason=str(excluded))
    except (Failing, CompanySettingsError) as failing:
        return dataclasses.replace(entry, action=Action.FAILING, reason=str(failing))
    if isinstance(chosen, match.LinkTo):
        return dataclasses.replace(entry, action=Action.LINK, matched=Candidate(chosen.id, chosen.label))
    if isinstance(chosen, match.Review):
        return dataclasses.replace(entry, action=Action.REVIEW, reason=chosen.reason, candidates=chosen.candidates)
    return dataclasses.replace(entry, action=Action.CREATE)


async def _hubspot_records(ctx: SyncContext, kind: Kind, object_type: str, since_ms: int) -> AsyncIterator[
    HubSpotObject
]:  # fmt: skip
    """Every record of `object_type` changed since, with the properties the rules read."""
    properties = _hubspot_properties(ctx, kind)
    waiting: list[str] = []
    async for found in _hubspot.modified_since(ctx, kind, object_type, since_ms):
        waiting.append(found.id)
        if len(waiting) >= BATCH_READ:
            for record in (await ctx.hubspot.batch_read(object_type, waiting, properties=properties)).results:
                yield record
            waiting = []
    if waiting:
        for record in (await ctx.hubspot.batch_read(object_type, waiting, properties=properties)).results:
            yield record


async def make_plan(
    ctx: SyncContext, *, since: dt.datetime | None, now: float, planned: Planned = lambda looked_at: None
) -> Plan:
    """The first sync's plan of the connection's synced objects changed since `since` (or ever). Reads only."""
    connection = ctx.connection
    entries: list[Entry] = []
    in_sync = 0
    looked_at = 0
    for kind, entity in _qbo.ENTITIES.items():
        if not connection.objects(kind).syncs_from(Provider.QUICKBOOKS):
            continue
        where = f"MetaData.LastUpdatedTime >= {qbo_quote(since.isoformat())}" if since else None
        async for row in ctx.qbo.query_all(entity, where=where, order_by="Id"):
            looked_at += 1
            link = await ctx.store.get_link(ctx.name, kind, qbo_id=str(row["Id"]))
            if _qbo.in_sync(link, row):
                in_sync += 1
                continue
            entry = Entry(kind=kind, side=Provider.QUICKBOOKS, id=str(row["Id"]), object_type=entity.lower(),
                          label=label(kind, Provider.QUICKBOOKS, row), action=Action.CREATE)  # fmt: skip
            entries.append(await _decide(ctx, kind, Provider.QUICKBOOKS, row, link, entry))
            planned(looked_at)
    since_ms = int(since.timestamp() * 1000) if since else 0
    for kind, object_types in _hubspot.OBJECT_TYPES.items():
        if not connection.objects(kind).syncs_from(Provider.HUBSPOT):
            continue
        object_type, envelope_type = object_types[0]  # a line item's invoice is found by its own search
        async for record in _hubspot_records(ctx, kind, object_type, since_ms):
            looked_at += 1
            link = await ctx.store.get_link(ctx.name, kind, hubspot_id=record.id)
            if _hubspot.in_sync(ctx, kind, link, record):
                in_sync += 1
                continue
            entry = Entry(kind=kind, side=Provider.HUBSPOT, id=record.id, object_type=envelope_type,
                          label=label(kind, Provider.HUBSPOT, record), action=Action.CREATE)  # fmt: skip
            entries.append(await _decide(ctx, kind, Provider.HUBSPOT, record, link, entry))
            planned(looked_at)
    since_at = since.timestamp() if since else None
    return Plan(
        connection=ctx.name, planned_at=now, since=since_at, entries=tuple(without_mirrored_links(entries)),
        in_sync=in_sync,
    )  # fmt: skip


def _envelope(connection: ConnectionSettings, entry: Entry, planned_at: float) -> ChangeEnvelope:
    account = connection.hubspot_portal_id if entry.side == Provider.HUBSPOT else connection.qbo_realm_id
    return ChangeEnvelope(
        provider=entry.side, account_id=account, object_type=entry.object_type, object_id=entry.id,
        operation=Operation.UPDATED, occurred_at_ms=0,  # a first sync is no end-to-end lag
        event_id=f"first-sync:{account}:{entry.object_type}:{entry.id}:{planned_at:.3f}",
    )  # fmt: skip


async def _record_decision(store: LinkStore, connection: str, entry: Entry) -> None:
    """The operator's decision on the record's link, for the worker to apply (as `hsqbo review resolve`)."""
    ids: dict[str, Any] = {"hubspot_id" if entry.side == Provider.HUBSPOT else "qbo_id": entry.id}
    link = await store.get_link(connection, entry.kind, **ids) or Link(
        connection=connection, kind=entry.kind, origin=entry.side, **ids
    )
    await store.save_link(
        dataclasses.replace(
            link, status=LinkStatus.NEEDS_REVIEW, error_category="needs_review",
            error_message=f"{entry.reason}: decided at the first sync's review"[:500], candidates=entry.candidates,
            review_decision=entry.decision, review_pick=entry.pick,
        )
    )  # fmt: skip


async def apply_plan(store: LinkStore, connection: ConnectionSettings, plan: Plan, publish: Publish) -> int:
    """Record the plan's review decisions and queue every planned record; returns how many were queued. Raises
    PlanError when a review is undecided or the plan is another connection's. Calls neither API."""
    if plan.connection != connection.name:
        raise PlanError(f"the plan is for connection {plan.connection!r}, not {connection.name!r}")
    if wrong := confirmable(plan):
        raise PlanError("\n".join(wrong))
    for entry in plan.entries:
        if entry.action == Action.REVIEW:
            await _record_decision(store, connection.name, entry)
    await _publish_all(publish, [_envelope(connection, entry, plan.planned_at) for entry in plan.entries])
    return len(plan.entries)


async def _publish_all(publish: Publish, envelopes: Sequence[ChangeEnvelope]) -> None:
    for start in range(0, len(envelopes), PUBLISH_CHUNK):
        await publish(envelopes[start : start + PUBLISH_CHUNK])


class ProgressCounts(PendingWork, ActivityLog, Protocol):
    """What a first sync's progress reads: the connection's pending work, and the activity since it was confirmed."""


async def progress(store: ProgressCounts, first_sync: FirstSync, now: float) -> Progress | None:
    """How far the connection's confirmed first sync is (None: not confirmed yet): the records applied since the
    confirmation (each apply of a record not in sync leaves one activity line; other changes synced meanwhile count
    too, so it is an estimate), all of them once no work for the connection has been pending for SETTLE_SECONDS."""
    if first_sync.applied_at is None:
        return None
    total = len(first_sync.plan.get("entries", ()))
    pending = sum((await store.count_pending_by_kind(first_sync.connection)).values())
    applied = await store.count_activity_since(first_sync.connection, first_sync.applied_at)
    settled = not pending and now - first_sync.applied_at >= SETTLE_SECONDS
    done = total if settled else min(total, applied)
    return Progress(total=total, done=done, started_at=first_sync.applied_at, now=now)

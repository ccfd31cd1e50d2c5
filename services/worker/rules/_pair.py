"""Field sync between two linked records, shared by the rules whose objects are a flat set of mapped fields
(contacts ↔ customers, products ↔ items): read both, merge three ways against the last agreed values, write only the
fields that differ, record the new agreement. Also the id-map steps those rules share: `claim` (join two matched
records) and `repoint_merged` (follow a merge on either side)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

from services.worker import _fields
from services.worker._fields import FieldMap
from services.worker.rules import Excluded, Failing, Hints, Outcome
from shared.clients import HubSpotObject, QboEntity
from shared.connections import SyncContext
from shared.domain import Action, Direction, Kind, Provider
from shared.errors import NotFound
from shared.store import Link, LinkStatus, RepointOutcome
from shared.syncconfig import ObjectSettings


@dataclasses.dataclass(frozen=True, slots=True)
class PairSpec:
    hubspot_type: str  # CRM object type in the API path: "contacts"
    qbo_entity: str  # QBO entity name: "Customer"
    fields: tuple[FieldMap, ...]  # the default mappings


def hubspot_properties(maps: Sequence[FieldMap], *extra: str) -> list[str]:
    return sorted({m.hubspot_property for m in maps} | set(extra))


async def sync_fields(
    ctx: SyncContext,
    spec: PairSpec,
    settings: ObjectSettings,
    link: Link,
    record: HubSpotObject,
    entity: QboEntity,
    *,
    action: Action = Action.UPDATED,
    qbo_extra: dict[str, Any] | None = None,
    settled: _fields.Values | None = None,
) -> Outcome:
    """Bring two linked records into agreement and save the link. `link` must carry both ids. `settled`: agreed
    values a rule fixes whatever the link says (products: the type)."""
    if link.hubspot_id is None or link.qbo_id is None:
        raise ValueError("sync_fields needs a link with both ids")
    hubspot_id = link.hubspot_id
    maps = _fields.active_maps(spec.fields, settings)
    ours = _fields.from_hubspot(maps, record.properties)
    theirs = _fields.from_qbo(maps, entity)
    # Before writing a side we record what it will hold (`hubspot_hash`, `qbo_hash`; QBO's requestid only keeps a
    # write from happening twice), so when a crash loses the link update that follows, a side showing exactly those
    # values is our write, the last agreement, and not an edit there that would win a conflict against the user's
    # newer edit on the other side.
    if link.hubspot_hash == _fields.content_hash(ours):
        agreed = ours
    elif link.qbo_hash == _fields.content_hash(theirs):
        agreed = theirs
    else:
        agreed = link.synced
    agreed = {**agreed, **(settled or {})}
    if settings.direction == "two_way":
        target = _fields.merge(agreed, ours, theirs, winner=settings.conflict_winner)
    else:
        target = ours if settings.direction == "hubspot_to_qbo" else theirs
    to_qbo = _fields.changed(target, theirs) if settings.syncs_from("hubspot") else {}
    to_hubspot = _fields.changed(target, ours) if settings.syncs_from("quickbooks") else {}

    written_token = link.qbo_written_sync_token
    qbo_version = str(entity.get("SyncToken"))
    if to_qbo or qbo_extra:
        body = {
            "Id": link.qbo_id,
            "SyncToken": entity["SyncToken"],
            "sparse": True,
            **_fields.to_qbo(maps, to_qbo, entity),
            **(qbo_extra or {}),
        }
        request_id = ctx.request_id(spec.qbo_entity, link.qbo_id, "update", str(entity["SyncToken"]), link=link)
        if to_qbo:
            # QBO's intent; none if HubSpot is written next, as QBO holding `target` is no agreement until HubSpot
            # holds it too (the fields bound for HubSpot would read as HubSpot-side edits). HubSpot's hash goes: the
            # base it may have given is saved in `synced`, and kept, it could take a user's later edit for our write.
            link = await ctx.store.save_link(
                dataclasses.replace(
                    link,
                    synced=agreed,
                    qbo_hash=None if to_hubspot else _fields.content_hash(target),
                    hubspot_hash=None,
                )
            )
        updated = await ctx.qbo.update(spec.qbo_entity, body, request_id=request_id)
        written_token = qbo_version = str(updated["SyncToken"])
    hubspot_version = record.updated_at.isoformat() if record.updated_at else link.hubspot_version
    if to_hubspot:
        # The new hash replaces the old ones, which may be what told us a side holds an earlier write of ours that
        # no link update recorded: `agreed` is kept as the base, or a second interruption before this write would
        # leave that earlier write looking like an edit on its side, winning over the user's newer edit. The fields
        # just written to QBO are agreed on now.
        link = await ctx.store.save_link(
            dataclasses.replace(
                link,
                synced={**agreed, **to_qbo},
                hubspot_hash=_fields.content_hash(target),
                qbo_hash=None,
                qbo_version=qbo_version,
                qbo_written_sync_token=written_token,
            )
        )
        updated_record = await ctx.hubspot.update(spec.hubspot_type, hubspot_id, _fields.to_hubspot(maps, to_hubspot))
        hubspot_version = updated_record.updated_at.isoformat() if updated_record.updated_at else hubspot_version

    saved = await ctx.store.save_link(
        dataclasses.replace(
            link,
            synced=target,
            hubspot_hash=_fields.content_hash(target),
            qbo_hash=_fields.content_hash(target),
            hubspot_version=hubspot_version,
            qbo_version=qbo_version,
            qbo_written_sync_token=written_token,
            last_synced_at=ctx.clock(),
            status=LinkStatus.SYNCED,
            error_category=None,
            error_message=None,
        )
    )
    if action == Action.LINKED and (to_qbo or to_hubspot):
        # Two existing records first joined: what the link overwrote on each side, so an operator can undo it.
        await ctx.store.log_activity(
            ctx.name, saved.kind, "overwritten", link_id=saved.id, hubspot_id=saved.hubspot_id, qbo_id=saved.qbo_id,
            detail=overwritten(theirs, to_qbo, ours, to_hubspot),
        )  # fmt: skip
    wrote = sorted(set(to_qbo) | set(to_hubspot))
    direction = (
        None
        if not (to_qbo or to_hubspot)
        else Direction.HUBSPOT_TO_QBO
        if to_qbo and not to_hubspot
        else Direction.QBO_TO_HUBSPOT
        if to_hubspot and not to_qbo
        else None
    )
    if not wrote and not qbo_extra:
        return Outcome(Action.UNCHANGED if action == Action.UPDATED else action, None, saved)
    return Outcome(action, direction, saved, detail="fields: " + ", ".join(wrote) if wrote else "")


def overwritten(qbo_before: _fields.Values, to_qbo: _fields.Values, hubspot_before: _fields.Values,
                to_hubspot: _fields.Values) -> str:  # fmt: skip
    """The values a first link overwrote, per side: "QuickBooks: name: 'Old' → 'New'; HubSpot: phone: None → '1'"."""

    def side(before: _fields.Values, after: _fields.Values) -> str:
        return ", ".join(f"{name}: {before.get(name)!r} → {after[name]!r}" for name in sorted(after))

    parts = [f"QuickBooks: {side(qbo_before, to_qbo)}" if to_qbo else "",
             f"HubSpot: {side(hubspot_before, to_hubspot)}" if to_hubspot else ""]  # fmt: skip
    return "overwritten on linking; " + "; ".join(part for part in parts if part)


async def claim(
    ctx: SyncContext, kind: Kind, link: Link | None, origin: Provider, hubspot_id: str, qbo_id: str, *, category: str
) -> Link:
    """The link joining two matched records, refusing to steal a record already linked to another one (the record
    is then failing with `category`)."""
    by_hubspot = (
        link
        if link is not None and link.hubspot_id == hubspot_id
        else (await ctx.store.get_link(ctx.name, kind, hubspot_id=hubspot_id))
    )
    by_qbo = await ctx.store.get_link(ctx.name, kind, qbo_id=qbo_id)
    if by_qbo is not None and by_qbo.hubspot_id not in (None, hubspot_id):
        raise Failing(
            f"QuickBooks {kind} {qbo_id} is already linked to HubSpot {kind} {by_qbo.hubspot_id}", category=category
        )
    if by_hubspot is not None and by_hubspot.qbo_id not in (None, qbo_id):
        raise Failing(
            f"HubSpot {kind} {hubspot_id} is already linked to QuickBooks {kind} {by_hubspot.qbo_id}", category=category
        )
    base = by_hubspot or by_qbo
    if by_hubspot is not None and by_qbo is not None and by_hubspot.id != by_qbo.id:
        # Two half links for one pair (each side's record was seen alone first, e.g. one failed, the other was
        # being created): the QBO one is retired and gives up its id, which the HubSpot one takes.
        await ctx.store.save_link(
            dataclasses.replace(
                by_qbo, qbo_id=None, status=LinkStatus.DELETED, error_category="merged",
                error_message=f"superseded by the link of HubSpot {kind} {hubspot_id}",
            )
        )  # fmt: skip
        base = by_hubspot
    if base is None:
        return Link(connection=ctx.name, kind=kind, origin=origin, hubspot_id=hubspot_id, qbo_id=qbo_id)
    return dataclasses.replace(base, hubspot_id=hubspot_id, qbo_id=qbo_id)


async def intend_qbo_create(
    ctx: SyncContext, kind: Kind, link: Link | None, hubspot_id: str, holds: _fields.Values
) -> Link:
    """The link to create the QBO record of HubSpot record `hubspot_id` under (`link`: the record's link, if any,
    without a QBO id), recording first what the new record will hold as `sync_fields` reads it (see there). Pass it
    to `ctx.request_id`. An intent left by an attempt cut short (no outcome recorded on it since: the status this save
    sets) is kept as it is, so the retry sends that attempt's requestid and QBO replays its create, answering with
    what the kept intent describes. A recorded failure moves the status: the next attempt records afresh."""
    if link is not None and link.qbo_hash is not None and link.status == LinkStatus.SYNCED:
        return link
    base = link or Link(connection=ctx.name, kind=kind, origin=Provider.HUBSPOT, hubspot_id=hubspot_id)
    return await ctx.store.save_link(
        dataclasses.replace(
            base,
            qbo_hash=_fields.content_hash(holds),
            status=LinkStatus.SYNCED,
            error_category=None,
            error_message=None,
        )
    )


async def repoint_merged(ctx: SyncContext, kind: Kind, side: Provider, survivor: str, hints: Hints) -> bool:
    """A merge moves the merged-away record's link to the survivor (or retires it if the survivor has one)."""
    losers = [str(loser) for loser in (hints.get("merged_ids") or {}) if str(loser) != survivor]
    for loser in losers:
        result = await ctx.store.repoint_link(ctx.name, kind, side, loser, survivor)
        if result.outcome is RepointOutcome.LOSER_DELETED:
            await ctx.store.log_activity(
                ctx.name, kind, "merged", link_id=result.loser.id if result.loser else None,
                detail=f"{side} record {loser} merged into {survivor}; its link is retired",
            )  # fmt: skip
    return bool(losers)


async def deactivate_in_qbo(
    ctx: SyncContext, spec: PairSpec, kind: Kind, settings: ObjectSettings, hubspot_id: str
) -> Outcome:
    """The HubSpot record is gone: its QBO record is made inactive (accounting data is never deleted)."""
    link = await ctx.store.get_link(ctx.name, kind, hubspot_id=hubspot_id)
    if link is None or link.qbo_id is None or link.status == LinkStatus.DELETED:
        return Outcome(Action.SKIPPED, detail="deleted in HubSpot; nothing linked in QuickBooks")
    if settings.on_delete == "propagate":
        entity = await ctx.qbo.read(spec.qbo_entity, link.qbo_id)
        if entity.get("Active", True):
            body = {"Id": link.qbo_id, "SyncToken": entity["SyncToken"], "sparse": True, "Active": False}
            request_id = ctx.request_id(spec.qbo_entity, link.qbo_id, "deactivate", str(entity["SyncToken"]), link=link)
            entity = await ctx.qbo.update(spec.qbo_entity, body, request_id=request_id)
        link = dataclasses.replace(link, qbo_written_sync_token=str(entity["SyncToken"]))
    saved = await ctx.store.save_link(dataclasses.replace(link, status=LinkStatus.DELETED))
    detail = f"{spec.qbo_entity} made inactive" if settings.on_delete == "propagate" else "on_delete=ignore"
    return Outcome(Action.DELETED, Direction.HUBSPOT_TO_QBO, saved, detail)


async def archive_in_hubspot(ctx: SyncContext, spec: PairSpec, settings: ObjectSettings, link: Link | None) -> Outcome:
    """The QBO record was made inactive: its HubSpot record is archived (restorable in HubSpot), once. Inactive and
    never paired: excluded. Already deleted (archived before, or gone in HubSpot): nothing more to do, the status
    stays — another apply of the same inactive record neither archives again nor flips it to excluded."""
    if link is not None and link.status == LinkStatus.DELETED:
        return Outcome(Action.UNCHANGED, link=link, detail=f"inactive in QuickBooks; the HubSpot {spec.hubspot_type} "
                       "record was archived before")  # fmt: skip
    if link is None or link.hubspot_id is None:
        raise Excluded("inactive in QuickBooks", category="inactive")
    if settings.on_delete == "propagate":
        with contextlib.suppress(NotFound):  # already archived
            await ctx.hubspot.archive(spec.hubspot_type, link.hubspot_id)
    saved = await ctx.store.save_link(dataclasses.replace(link, status=LinkStatus.DELETED))
    detail = f"HubSpot {spec.hubspot_type} record archived" if settings.on_delete == "propagate" else "on_delete=ignore"
    return Outcome(Action.DELETED, Direction.QBO_TO_HUBSPOT, saved, detail)

"""Field sync between two linked records, shared by the rules whose objects are a flat set of mapped fields
(contacts ↔ customers, products ↔ items): read both, merge three ways against the last agreed values, write only the
fields that differ, record the new agreement. Also the id-map steps those rules share: `claim` (join two matched
records), the creates (with the look for a QBO create whose answer was lost, `lost_create`, and the wait of a QBO
record that may be one, `wait_for_a_create_in_doubt`), and `repoint_merged` (follow a merge on either side). Every
write is a plan (`plan_fields`, `plan_claim`, `plan_qbo_create`, `plan_hubspot_create`, `plan_repoint`,
`plan_deactivate`, `plan_archive`: pure), carried out by `_executor.carry_out`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.worker import _fields
from services.worker._executor import MergedAway, carry_out, carry_out_answered
from services.worker._fields import FieldMap
from services.worker._plan import (
    AllRefused,
    Alternative,
    Answer,
    Answered,
    ArchiveHubSpot,
    CreateHubSpot,
    CreateQboOneOf,
    LogActivity,
    Plan,
    Refusal,
    RepointLink,
    RequestId,
    SaveLink,
    SaveOtherLink,
    Step,
    UpdateHubSpot,
    UpdateQbo,
)
from services.worker.rules import Excluded, Failing, Hints, Outcome, direction_from
from services.worker.rules import _match as match
from services.worker.rules._match import REVIEWED
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.connections import SyncContext
from shared.domain import Action, Direction, Kind, PendingKey, Provider
from shared.store import Link, LinkStatus, StaleLink
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
    first: Sequence[Step] = (),
    hubspot_read: bool = True,
) -> Outcome:
    """Bring two linked records into agreement and save the link (`plan_fields`, carried out after the steps
    `first`: a claim's). `link` must carry both ids."""
    if link.qbo_id is None:
        raise ValueError("sync_fields needs a link with both ids")
    request_id = ctx.request_id(spec.qbo_entity, link.qbo_id, "update", str(entity.get("SyncToken")), link=link)
    plan = plan_fields(
        spec, settings, link, record, entity, action=action, qbo_extra=qbo_extra, settled=settled,
        request_id=request_id, now=ctx.clock(), hubspot_read=hubspot_read,
    )  # fmt: skip
    return await carry_out(ctx, dataclasses.replace(plan, steps=(*first, *plan.steps)))


def plan_fields(
    spec: PairSpec,
    settings: ObjectSettings,
    link: Link,
    record: HubSpotObject,
    entity: QboEntity,
    *,
    action: Action,
    request_id: str,
    now: float,
    qbo_extra: dict[str, Any] | None = None,
    settled: _fields.Values | None = None,
    hubspot_read: bool = True,
) -> Plan:
    """The plan bringing two linked records into agreement: merge three ways against the last agreement, write each
    side only the fields that differ, then record the new agreement on the link. `settled`: agreed values a rule
    fixes whatever the link says (products: the type). `request_id`: the QBO update's (see `_plan`). `hubspot_read`
    False: `record` is the link's agreement, not read (`unread_hubspot`), and the link keeps its HubSpot version.

    Its steps, each optional but the last save: record QBO's intent, update QBO, record HubSpot's intent, update
    HubSpot, save the agreement (status synced), log what a first link overwrote. A crash after any of them and a
    re-run converge, and a side holding what its intent recorded is taken as our write, not as an edit there
    (tests/worker/test_pair.py runs every window). One window is left: when both sides are written, QBO's intent
    records no hash (see below), so after a crash right after the QBO write a user's HubSpot edit of a field just
    written to QBO is a conflict with that write, which wins under `conflict_winner = "quickbooks"`."""
    if link.hubspot_id is None or link.qbo_id is None:
        raise ValueError("sync_fields needs a link with both ids")
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

    steps: list[Step] = []
    written_token: str | Answered | None = link.qbo_written_sync_token
    qbo_version: str | Answered = str(entity.get("SyncToken"))
    if to_qbo or qbo_extra:
        if to_qbo:
            # QBO's intent; none if HubSpot is written next, as QBO holding `target` is no agreement until HubSpot
            # holds it too (the fields bound for HubSpot would read as HubSpot-side edits). HubSpot's hash goes: the
            # base it may have given is saved in `synced`, and kept, it could take a user's later edit for our write.
            qbo_intent = None if to_hubspot else _fields.content_hash(target)
            steps.append(SaveLink({"synced": agreed, "qbo_hash": qbo_intent, "hubspot_hash": None}))
        body = {
            "Id": link.qbo_id,
            "SyncToken": entity["SyncToken"],
            "sparse": True,
            **_fields.to_qbo(maps, to_qbo, entity),
            **(qbo_extra or {}),
        }
        steps.append(UpdateQbo(spec.qbo_entity, body, request_id))
        written_token = qbo_version = Answered(Answer.QBO_SYNC_TOKEN)
    read_version = record.updated_at.isoformat() if record.updated_at else link.hubspot_version
    hubspot_version: str | Answered | None = read_version
    if to_hubspot:
        # The new hash replaces the old ones, which may be what told us a side holds an earlier write of ours that
        # no link update recorded: `agreed` is kept as the base, or a second interruption before this write would
        # leave that earlier write looking like an edit on its side, winning over the user's newer edit. The fields
        # just written to QBO are agreed on now.
        steps.append(
            SaveLink({
                "synced": {**agreed, **to_qbo}, "hubspot_hash": _fields.content_hash(target), "qbo_hash": None,
                "qbo_version": qbo_version, "qbo_written_sync_token": written_token,
            })
        )  # fmt: skip
        steps.append(UpdateHubSpot(spec.hubspot_type, link.hubspot_id, _fields.to_hubspot(maps, to_hubspot)))
        if hubspot_read:
            hubspot_version = Answered(Answer.HUBSPOT_UPDATED_AT, default=read_version)
    steps.append(
        SaveLink({
            "synced": target, "hubspot_hash": _fields.content_hash(target), "qbo_hash": _fields.content_hash(target),
            "hubspot_version": hubspot_version, "qbo_version": qbo_version, "qbo_written_sync_token": written_token,
            "last_synced_at": now, "status": LinkStatus.SYNCED, "error_category": None, "error_message": None,
        })
    )  # fmt: skip
    if action == Action.LINKED and (to_qbo or to_hubspot):
        # Two existing records first joined: what the link overwrote on each side, so an operator can undo it.
        steps.append(LogActivity(Action.OVERWRITTEN, overwritten(theirs, to_qbo, ours, to_hubspot)))
    wrote = sorted(set(to_qbo) | set(to_hubspot))
    if not wrote and not qbo_extra:
        return Plan(link, tuple(steps), Action.UNCHANGED if action == Action.UPDATED else action)
    direction = (
        Direction.HUBSPOT_TO_QBO
        if to_qbo and not to_hubspot
        else Direction.QBO_TO_HUBSPOT
        if to_hubspot and not to_qbo
        else None
    )
    return Plan(link, tuple(steps), action, direction, "fields: " + ", ".join(wrote) if wrote else "")


def link_settled(settings: ObjectSettings, link: Link) -> bool:
    """Whether both sides held the link's last agreement when it was saved (no intent of an interrupted sync left on
    it) and the pair syncs both ways."""
    if link.status != LinkStatus.SYNCED or not link.synced or settings.direction != "two_way":
        return False
    agreed = _fields.content_hash(link.synced)
    return link.hubspot_hash == agreed and link.qbo_hash == agreed


def settled_from_qbo(spec: PairSpec, settings: ObjectSettings, link: Link, entity: QboEntity) -> bool:
    """Whether a change of the linked QBO record (`entity`, as the rule compares it) leaves HubSpot nothing to take,
    so that its HubSpot record need not be read: the mapped values are the link's last agreement and the link is
    settled (`link_settled`). A change made in QBO to no mapped field (its balance, say) is one. A HubSpot edit made
    since is its own change: it would only be written to QBO, which its own apply does (the link's HubSpot version is
    left as it was, so the poller finds it too when its webhook is lost)."""
    return link_settled(settings, link) and _fields.from_qbo(_fields.active_maps(spec.fields, settings), entity) == (
        link.synced
    )


def holds_agreement(spec: PairSpec, settings: ObjectSettings, link: Link | None, record: HubSpotObject) -> bool:
    """Whether a HubSpot record (read with its mapped properties) holds exactly its settled link's agreement
    (`link_settled`): it has nothing to sync, whatever its version. The poller asks this of a record whose version its
    link does not show, as a write of ours made without reading the record first (`unread_hubspot`) leaves that
    version behind."""
    maps = _fields.active_maps(spec.fields, settings)
    if (
        link is None
        or not link_settled(settings, link)
        or any(m.hubspot_property not in record.properties for m in maps)
    ):
        return False
    return _fields.from_hubspot(maps, record.properties) == link.synced


async def unread_hubspot(
    ctx: SyncContext, spec: PairSpec, settings: ObjectSettings, link: Link
) -> HubSpotObject | None:
    """The linked HubSpot record as its settled link's agreement (`link_settled`), so that a QBO change is written to
    HubSpot without reading the record first (HubSpot has no conditional update; issue 13: a QBO edit costs one QBO
    read and one HubSpot write). None when it must be read: the link is not settled, or a HubSpot change of the
    record waits to be applied (its webhook came).

    What the unread write risks, and how it is bounded: a HubSpot edit whose webhook has not come yet. Of another
    field, it is kept (only the fields QBO changed are written) and its webhook's apply reads and syncs it; of the
    same field, the QBO value overwrites it whatever the conflict winner, as a read's answer would have within the
    read-to-write window (here the window is the webhook's delay). As the write's answer would record a version the
    poller takes as seen, hiding such an edit whose webhook never comes, the link keeps the version it had and the
    poller compares the record's values instead (`holds_agreement`). A record merged away in HubSpot, its merge not
    yet seen: HubSpot writes its id through to the survivor, so the fields QBO changed land there; the write's answer
    names the survivor, the plan stops there (`MergedAway`), `restore_survivor` writes the survivor's own values back
    and the rule reads the record, following the merge."""
    if link.hubspot_id is None or not link_settled(settings, link):
        return None
    if await ctx.store.get_pending(PendingKey(ctx.name, link.kind, Provider.HUBSPOT, link.hubspot_id)) is not None:
        return None
    maps = _fields.active_maps(spec.fields, settings)
    return HubSpotObject(link.hubspot_id, dict(_fields.to_hubspot(maps, link.synced)), None, None)


async def restore_survivor(ctx: SyncContext, spec: PairSpec, settings: ObjectSettings, kind: Kind,
                           merged: MergedAway) -> None:  # fmt: skip
    """Undo an unread write that HubSpot wrote through to the record a merged-away one was merged into: the fields it
    wrote get the survivor's values back from the survivor's settled link (`link_settled`: what it held when last in
    agreement). A survivor with no settled link keeps them (nothing says what it held); its activity says so."""
    survivor = await ctx.store.get_link(ctx.name, kind, hubspot_id=merged.survivor_id)
    if survivor is None or not link_settled(settings, survivor):
        if survivor is not None:
            written = ", ".join(sorted(merged.written.properties))
            await ctx.store.log_activity(
                ctx.name, kind, Action.UPDATED, link_id=survivor.id, hubspot_id=survivor.hubspot_id,
                qbo_id=survivor.qbo_id, detail=f"{written} written through from merged-away {merged.written.object_id}",
            )  # fmt: skip
        return
    maps = [m for m in _fields.active_maps(spec.fields, settings) if m.hubspot_property in merged.written.properties]
    await ctx.hubspot.update(spec.hubspot_type, merged.survivor_id, _fields.to_hubspot(maps, survivor.synced))


def overwritten(qbo_before: _fields.Values, to_qbo: _fields.Values, hubspot_before: _fields.Values,
                to_hubspot: _fields.Values) -> str:  # fmt: skip
    """The values a first link overwrote, per side: "QuickBooks: name: 'Old' → 'New'; HubSpot: phone: None → '1'"."""

    def side(before: _fields.Values, after: _fields.Values) -> str:
        return ", ".join(f"{name}: {before.get(name)!r} → {after[name]!r}" for name in sorted(after))

    parts = [f"QuickBooks: {side(qbo_before, to_qbo)}" if to_qbo else "",
             f"HubSpot: {side(hubspot_before, to_hubspot)}" if to_hubspot else ""]  # fmt: skip
    return "overwritten on linking; " + "; ".join(part for part in parts if part)


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """Two matched records joined: the pair's link (ids set, saved by the field sync's plan that follows) and the
    steps to run before it (the half link it supersedes, retired)."""

    link: Link
    steps: tuple[Step, ...] = ()


async def claim(
    ctx: SyncContext, kind: Kind, link: Link | None, origin: Provider, hubspot_id: str, qbo_id: str, *, category: str
) -> Claim:
    """`plan_claim` over the links holding either id (`link`: the record's, as read)."""
    by_hubspot = (
        link
        if link is not None and link.hubspot_id == hubspot_id
        else (await ctx.store.get_link(ctx.name, kind, hubspot_id=hubspot_id))
    )
    by_qbo = await ctx.store.get_link(ctx.name, kind, qbo_id=qbo_id)
    return plan_claim(ctx.name, kind, origin, hubspot_id, qbo_id, by_hubspot, by_qbo, category=category)


def plan_claim(
    connection: str,
    kind: Kind,
    origin: Provider,
    hubspot_id: str,
    qbo_id: str,
    by_hubspot: Link | None,
    by_qbo: Link | None,
    *,
    category: str,
) -> Claim:
    """The link joining two matched records, given the links holding either id as read, refusing to steal a record
    already linked to another one (the record is then failing with `category`). Two half links for one pair (each
    side's record was seen alone first, e.g. one failed, the other was being created): the QBO one is retired and
    gives up its id, which the HubSpot one takes. A crash after the retirement: the next claim finds the HubSpot half
    alone."""
    if by_qbo is not None and by_qbo.hubspot_id not in (None, hubspot_id):
        raise Failing(
            f"QuickBooks {kind} {qbo_id} is already linked to HubSpot {kind} {by_qbo.hubspot_id}", category=category
        )
    if by_hubspot is not None and by_hubspot.qbo_id not in (None, qbo_id):
        raise Failing(
            f"HubSpot {kind} {hubspot_id} is already linked to QuickBooks {kind} {by_hubspot.qbo_id}", category=category
        )
    steps: tuple[Step, ...] = ()
    if by_hubspot is not None and by_qbo is not None and by_hubspot.id != by_qbo.id:
        retired = {
            "qbo_id": None, "status": LinkStatus.DELETED, "error_category": "merged",
            "error_message": f"superseded by the link of HubSpot {kind} {hubspot_id}",
        }  # fmt: skip
        steps = (SaveOtherLink(by_qbo, retired),)
    base = by_hubspot or by_qbo
    if base is None:
        return Claim(Link(connection=connection, kind=kind, origin=origin, hubspot_id=hubspot_id, qbo_id=qbo_id))
    return Claim(dataclasses.replace(base, hubspot_id=hubspot_id, qbo_id=qbo_id), steps)


CLOCK_SKEW_SECONDS = 300.0  # how far QBO's clock (a record's CreateTime) may run behind ours (an intent's save)


@dataclasses.dataclass(frozen=True, slots=True)
class Held:
    """A QBO record holding one of a create's candidate names, as `lost_create` found it."""

    entity: QboEntity
    ours: bool  # it is the record an attempt cut short made (see `lost_create`)
    doubt: bool = False  # not provably ours, nor provably another's: created after the intent, linked to nothing
    half: Link | None = None  # the link holding its QBO id alone (no HubSpot record: excluded, failing), if any


def create_cut_short(link: Link) -> bool:
    """Whether `link` (no QBO id) keeps the intent of a QBO create attempt cut short: no outcome recorded since."""
    return link.qbo_id is None and link.qbo_hash is not None and link.status == LinkStatus.SYNCED


async def lost_create(
    ctx: SyncContext,
    spec: PairSpec,
    kind: Kind,
    link: Link,
    *,
    name_field: str,
    names: Sequence[str],
    hash_of: Callable[[QboEntity], str],
) -> dict[str, Held]:
    """The records holding a create's candidate names (by name, casefolded: QBO's names ignore case), in one query,
    when the create's link keeps the intent of an attempt cut short (`create_cut_short`; none otherwise: nothing to
    look for). That attempt's create may have been made with no answer reaching us: a batch's requestid is the
    batch's, so a retry meeting other neighbours is not replayed, and its first name would be refused as taken by
    the very record it made. A holder is that record, `ours`, only on proof, never a guess: it holds what the intent
    recorded (`hash_of`: its hash as `holds` was computed), it was created after the intent was saved (QBO's clock
    within `CLOCK_SKEW_SECONDS`), and no link holds it. One created since and linked to nothing that holds other
    values (a person made it meanwhile, or QBO changed a value as it made ours) is a `doubt`: it needs review."""
    if not create_cut_short(link):
        return {}
    where = f"{match.ACTIVE_OR_NOT} AND {name_field} IN ({', '.join(qbo_quote(name) for name in names)})"
    rows = await ctx.qbo.query(f"SELECT * FROM {spec.qbo_entity} WHERE {where} MAXRESULTS {len(names)}")
    held: dict[str, Held] = {}
    for row in rows:
        created = _created_at(row)
        other = await ctx.store.get_link(ctx.name, kind, qbo_id=str(row["Id"]))
        linked = other is not None and other.status != LinkStatus.DELETED and other.hubspot_id is not None
        since = (created is None or created >= link.updated_at - CLOCK_SKEW_SECONDS) and not linked
        ours = since and created is not None and hash_of(row) == link.qbo_hash
        held[str(row.get(name_field, "")).casefold()] = Held(row, ours, doubt=since and not ours, half=other)
    return held


async def wait_for_a_create_in_doubt(
    ctx: SyncContext, kind: Kind, link: Link | None, entity: QboEntity, content_hash: str
) -> None:
    """Before a QBO record with no linked HubSpot record (`link`: its link as the rule read it) is made in HubSpot:
    when a HubSpot record's QBO create was cut short (its answer lost) with an intent recording exactly this record's
    values (`content_hash`, computed as that intent's `holds`), and this record was created after that intent, it
    may be that create's record, its QBO webhook come before the retry that adopts it (`lost_create`). Made in
    HubSpot it would be a second HubSpot record, so the apply stops as a conflict (`StaleLink`) and runs again after
    that retry, finding the pair linked. Its link is read again after the look: a retry that adopted the record
    just before it (no longer in doubt) has linked it, which the rule's earlier read could not show."""
    created = _created_at(entity)
    for doubt in await ctx.store.creates_in_doubt(ctx.name, kind, content_hash):
        if created is None or created >= doubt.updated_at - CLOCK_SKEW_SECONDS:
            raise StaleLink(
                f"QuickBooks {kind} {entity.get('Id')} may be the record the create of HubSpot {kind} "
                f"{doubt.hubspot_id} made, its answer lost: that create's retry adopts it"
            )
    now = await ctx.store.get_link(ctx.name, kind, qbo_id=str(entity["Id"]))
    if (now and (now.id, now.revision)) != (link and (link.id, link.revision)):
        raise StaleLink(f"QuickBooks {kind} {entity.get('Id')}: linked meanwhile")


def _created_at(entity: QboEntity) -> float | None:
    """A QBO record's `MetaData.CreateTime`, epoch seconds (None: missing or not a time with an offset)."""
    stamp = (entity.get("MetaData") or {}).get("CreateTime")
    try:
        created = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None
    return created.timestamp() if created is not None and created.tzinfo is not None else None


def plan_qbo_create(
    spec: PairSpec,
    link: Link,
    hubspot_id: str,
    body: Mapping[str, Any],
    *,
    name_field: str,
    names: Sequence[str],
    holds: _fields.Values,
    all_refused: AllRefused,
    held: Mapping[str, Held] | None = None,
) -> Plan:
    """The plan making the QBO record of HubSpot record `hubspot_id` (`link`: its link as read, or a new one; no QBO
    id), named the first of `names` QBO does not refuse as taken. Its steps: record first what the new record will
    hold as `sync_fields` reads it (the intent, see there); create it (`CreateQboOneOf`, each name's requestid made
    under the intent); save its id and SyncToken on the link, its review done. The field sync from what QBO made
    follows, from the create's answer (a create replayed for a retry answers what the first attempt made).

    An intent left by an attempt cut short (no outcome recorded on it since: the status the intent sets) is kept
    as it is, so the retry sends that attempt's requestids and QBO replays its answers, making nothing twice; and the
    rule looks first for the record that attempt may have made (`lost_create`, `held`: the records holding the
    names, by name casefolded): the one that is ours is adopted, its id saved on the link (no create); a name held
    by another record is not sent (QBO would refuse it), and a name taken since the look stops the plan
    (`CreateQboOneOf.looked_up`); a holder in doubt, or several of ours, need review, raised as `Ambiguous`. A
    recorded failure moves the status: the next attempt records afresh, its requestids new. A crash after the last
    save: the next apply finds the link with both ids and syncs the fields over it."""
    held = held or {}
    ours = [h.entity for h in held.values() if h.ours]
    if len(ours) > 1 or any(h.doubt for h in held.values()):
        raise Ambiguous(tuple(h.entity for h in held.values() if h.ours or h.doubt))
    if ours:
        (adopt,) = [h for h in held.values() if h.ours]
        qbo_id = str(adopt.entity["Id"])
        # A link holding its id alone (its webhook's apply excluded it, say) is retired first, as a claim does.
        claimed = plan_claim(link.connection, link.kind, Provider.HUBSPOT, hubspot_id, qbo_id, link, adopt.half,
                             category=all_refused.category)  # fmt: skip
        adopted = {"qbo_id": qbo_id, "qbo_written_sync_token": str(adopt.entity.get("SyncToken")), **REVIEWED}
        detail = "made by an earlier attempt whose answer was lost"
        return Plan(link, (*claimed.steps, SaveLink(adopted)), Action.CREATED, Direction.HUBSPOT_TO_QBO, detail)
    steps: list[Step] = []
    if not create_cut_short(link):
        intent = {"qbo_hash": _fields.content_hash(holds), "status": LinkStatus.SYNCED, "error_category": None,
                  "error_message": None}  # fmt: skip
        steps.append(SaveLink(intent))
    alternatives = tuple(
        Alternative({name_field: name}, RequestId((spec.qbo_entity, "create", hubspot_id, name)))
        for name in names
        if name.casefold() not in held
    )
    if not alternatives:
        raise Failing(all_refused.message, category=all_refused.category)
    looked_up = create_cut_short(link)
    steps.append(CreateQboOneOf(spec.qbo_entity, body, alternatives, Refusal.DUPLICATE_NAME, all_refused, looked_up))
    made = {"qbo_id": Answered(Answer.QBO_ID), "qbo_written_sync_token": Answered(Answer.QBO_SYNC_TOKEN), **REVIEWED}
    steps.append(SaveLink(made))
    return Plan(link, tuple(steps), Action.CREATED, Direction.HUBSPOT_TO_QBO)


class Ambiguous(Exception):
    """The QBO records that may be the one a create cut short made, none of them provably (`plan_qbo_create`: one in
    doubt, or several of ours): the record needs review, an operator picks."""

    def __init__(self, entities: tuple[QboEntity, ...]) -> None:
        super().__init__(f"{len(entities)} QuickBooks records may each be the one a lost create made")
        self.entities = entities


def plan_hubspot_create(
    spec: PairSpec, link: Link, properties: Mapping[str, str], *, holds: _fields.Values | None
) -> Plan:
    """The plan making the HubSpot record of the QBO record of `link` (as read, or a new one; no HubSpot id): record
    first what it will hold (`holds`, the intent, see `sync_fields`; None: none recorded), create it, save its id and
    version on the link, its review done. The field sync from what the create wrote follows. A crash after the
    create: the next apply finds the record (a contact by its email, or through the 409 its create gets; a product
    by the item it was made from) and links to it, an intent describing it telling its values for our write (see
    `contacts.adopted_intent`); after the last save: the fields sync over the link."""
    steps: list[Step] = []
    if holds is not None:
        steps.append(SaveLink({"hubspot_hash": _fields.content_hash(holds)}))
    steps.append(CreateHubSpot(spec.hubspot_type, properties))
    made = {"hubspot_id": Answered(Answer.HUBSPOT_ID), "hubspot_version": Answered(Answer.HUBSPOT_UPDATED_AT),
            **REVIEWED}  # fmt: skip
    steps.append(SaveLink(made))
    return Plan(link, tuple(steps), Action.CREATED, Direction.QBO_TO_HUBSPOT)


async def carry_out_qbo_create(ctx: SyncContext, plan: Plan, held: Mapping[str, Held]) -> tuple[Link, QboEntity]:
    """`plan_qbo_create`'s plan carried out: the link as its last step saved it, and the record made, as the
    create answered it (or as `lost_create` found it, adopted): no read back."""
    outcome, written = await carry_out_answered(ctx, plan)
    link = outcome.link
    made = written or next((h.entity for h in held.values() if h.ours), None)
    if link is None or link.qbo_id is None or made is None or str(made.get("Id")) != link.qbo_id:
        raise ValueError("a QBO create's plan saves the made record's id last")
    return link, made


async def carry_out_create(ctx: SyncContext, plan: Plan, made_on: Provider) -> tuple[Link, str]:
    """A create's plan (`plan_hubspot_create`; a QBO create's: `carry_out_qbo_create`) carried out: the link as its
    last step saved it, and the id of the record made on `made_on`."""
    link = (await carry_out(ctx, plan)).link
    made = None if link is None else link.qbo_id if made_on == Provider.QUICKBOOKS else link.hubspot_id
    if link is None or made is None:
        raise ValueError("a create's plan saves the made record's id last")
    return link, made


async def repoint_merged(ctx: SyncContext, kind: Kind, side: Provider, survivor: str, hints: Hints) -> bool:
    """`plan_repoint`, carried out; whether the hints named a merge."""
    plan = plan_repoint(kind, side, survivor, hints)
    await carry_out(ctx, plan)
    return bool(plan.steps)


def plan_repoint(kind: Kind, side: Provider, survivor: str, hints: Hints) -> Plan:
    """A merge moves each merged-away record's link to the survivor (or retires it, logged, if the survivor has one).
    A crash after any of them: the re-run (the merge's event again) finds the ones moved linked no more, and logs a
    retirement again."""
    losers = [str(loser) for loser in (hints.get("merged_ids") or {}) if str(loser) != survivor]
    steps = tuple(RepointLink(kind, side, loser, survivor) for loser in losers)
    return Plan(None, steps, Action.MERGED, direction_from(side))


async def deactivate_in_qbo(
    ctx: SyncContext, spec: PairSpec, kind: Kind, settings: ObjectSettings, hubspot_id: str
) -> Outcome:
    """The HubSpot record is gone: its QBO record is made inactive (`plan_deactivate`, carried out)."""
    link = await ctx.store.get_link(ctx.name, kind, hubspot_id=hubspot_id)
    if link is None or link.qbo_id is None or link.status == LinkStatus.DELETED:
        return Outcome(Action.SKIPPED, detail="deleted in HubSpot; nothing linked in QuickBooks")
    entity: QboEntity | None = None
    request_id = ""
    if settings.on_delete == "propagate":
        entity = await ctx.qbo.read(spec.qbo_entity, link.qbo_id)
        request_id = ctx.request_id(spec.qbo_entity, link.qbo_id, "deactivate", str(entity["SyncToken"]), link=link)
    return await carry_out(ctx, plan_deactivate(spec, link, entity, request_id))


def plan_deactivate(spec: PairSpec, link: Link, entity: QboEntity | None, request_id: str) -> Plan:
    """The plan making the linked QBO record inactive (accounting data is never deleted) and the link deleted;
    `entity`: the QBO record as read, None under on_delete=ignore (nothing written to QBO). A crash before the link
    save: the re-run reads the record inactive and only saves the link (the requestid replays a lost answer)."""
    steps: list[Step] = []
    written: str | Answered | None = link.qbo_written_sync_token
    if entity is not None:
        written = str(entity["SyncToken"])
        if entity.get("Active", True):
            body = {"Id": link.qbo_id, "SyncToken": entity["SyncToken"], "sparse": True, "Active": False}
            steps.append(UpdateQbo(spec.qbo_entity, body, request_id))
            written = Answered(Answer.QBO_SYNC_TOKEN)
    steps.append(SaveLink({"qbo_written_sync_token": written, "status": LinkStatus.DELETED}))
    detail = f"{spec.qbo_entity} made inactive" if entity is not None else "on_delete=ignore"
    return Plan(link, tuple(steps), Action.DELETED, Direction.HUBSPOT_TO_QBO, detail)


async def archive_in_hubspot(ctx: SyncContext, spec: PairSpec, settings: ObjectSettings, link: Link | None) -> Outcome:
    """The QBO record was made inactive: `plan_archive`, carried out."""
    if link is None:
        raise Excluded("inactive in QuickBooks", category="inactive")
    return await carry_out(ctx, plan_archive(spec, settings, link))


def plan_archive(spec: PairSpec, settings: ObjectSettings, link: Link) -> Plan:
    """The plan archiving the linked HubSpot record (restorable in HubSpot), once. Inactive and never paired:
    excluded. Already deleted (archived before, or gone in HubSpot): nothing more to do, the status stays — another
    apply of the same inactive record neither archives again nor flips it to excluded. A crash before the link save:
    the re-run archives again, which HubSpot answers as gone (counted archived)."""
    if link.status == LinkStatus.DELETED:
        detail = f"inactive in QuickBooks; the HubSpot {spec.hubspot_type} record was archived before"
        return Plan(link, (), Action.UNCHANGED, detail=detail)
    if link.hubspot_id is None:
        raise Excluded("inactive in QuickBooks", category="inactive")
    steps: list[Step] = []
    if settings.on_delete == "propagate":
        steps.append(ArchiveHubSpot(spec.hubspot_type, link.hubspot_id))
    steps.append(SaveLink({"status": LinkStatus.DELETED}))
    detail = f"HubSpot {spec.hubspot_type} record archived" if settings.on_delete == "propagate" else "on_delete=ignore"
    return Plan(link, tuple(steps), Action.DELETED, Direction.QBO_TO_HUBSPOT, detail)

"""Matching never guesses. A record with no link is matched to the other side by its natural key (a contact's email,
a product's SKU). `decide` says what to do with what the lookup found:

    nothing found, the key shared by no other record on our side    create the record on the other side
    exactly one found, free (or already ours), the key not shared   link to it
    anything else (several found, or the one found is taken by another record, or several records on our side
    share the key)                                                  needs_review: link to none, write nothing

Inactive records on the other side count (QBO queries name `Active`, see `ACTIVE_OR_NOT`): a match is never a
duplicate of an inactive record. A record needing review stays so, whatever its later changes (each refreshes its
candidates), until an operator decides with `hsqbo review resolve`: pick a candidate, create new, or exclude. The
decision is kept on the link (`review_decision`) and the record re-queued; `resolved` turns it into what the rule does.
Recording a review is a plan (`plan_review`), carried out by the executor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from services.worker._executor import carry_out
from services.worker._plan import Plan, SaveLink
from services.worker.rules import Excluded, Outcome, direction_from
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.domain import Action, Kind, Provider
from shared.store import Candidate, Link, LinkStatus, ReviewDecision, StaleLink

# In a QBO WHERE clause: inactive records too. QBO's name-list queries (Customer, Item...) return only active records
# unless the query filters on Active; `Active IN (true, false)` asks for both.
ACTIVE_OR_NOT = "Active IN (true, false)"
EXCLUDED_BY_OPERATOR = "excluded by an operator"


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    """A record on the other side whose key matches."""

    id: str
    label: str  # short, for the operator
    linked_to: str | None = None  # the record on our side it is already linked to, if any


@dataclasses.dataclass(frozen=True, slots=True)
class Create:
    """No match: create the record on the other side."""


@dataclasses.dataclass(frozen=True, slots=True)
class LinkTo:
    id: str
    label: str = dataclasses.field(default="", compare=False)  # the record linked to, for the first sync's plan


@dataclasses.dataclass(frozen=True, slots=True)
class Review:
    candidates: tuple[Candidate, ...]
    reason: str


Match = Create | LinkTo | Review


def decide(
    own_id: str,
    key: str,
    found: Sequence[Found],
    *,
    other_side: str,
    sharing: Sequence[str] = (),
    under_review: bool = False,
) -> Match:
    """What to do with record `own_id` whose key `key` matched `found` on the other side (`other_side` names them:
    "QuickBooks customers"). `sharing`: the records on our side with the same key, which could be the match just as
    well. `under_review`: the record already needs review, and keeps needing it (its candidates refreshed)."""
    rivals = sorted(set(sharing) - {own_id})
    if not under_review and any(f.linked_to == own_id for f in found):
        # Linked to us meanwhile (another apply, of the other side, created or linked the pair since we looked):
        # run again, on the link, rather than link the pair a second time over its fields.
        raise StaleLink(f"{key}: linked meanwhile")
    free = [f for f in found if f.linked_to is None]
    if not under_review and not found and not rivals:
        return Create()
    if not under_review and len(found) == 1 and len(free) == 1 and not rivals:
        return LinkTo(found[0].id, found[0].label)
    candidates = tuple(
        Candidate(f.id, f.label if f.linked_to in (None, own_id) else f"{f.label}, linked to {f.linked_to}")
        for f in found
    )
    if under_review:
        reason = f"{key} waits for an operator's decision"
    elif len(found) > 1:
        reason = f"{key} matches {len(found)} {other_side}"
    elif rivals:
        reason = f"{key} is shared with {', '.join(rivals)} on this side"
    else:
        reason = f"{key} matches {other_side} linked to other records"
    return Review(candidates, reason)


async def linked_to(ctx: SyncContext, kind: Kind, *, hubspot_id: str | None = None, qbo_id: str | None = None) -> (
    str | None
):  # fmt: skip
    """The id on the other side of the live link holding this id (give one), if any."""
    link = await ctx.store.get_link(ctx.name, kind, hubspot_id=hubspot_id, qbo_id=qbo_id)
    if link is None or link.status == LinkStatus.DELETED:
        return None
    return link.qbo_id if hubspot_id is not None else link.hubspot_id


async def found(ctx: SyncContext, kind: Kind, record_id: str, label: str, *, on: Provider) -> Found:
    """Record `record_id`, found on side `on`, with the record its live link joins it to."""
    ids = {"qbo_id": record_id} if on == Provider.QUICKBOOKS else {"hubspot_id": record_id}
    return Found(record_id, label, await linked_to(ctx, kind, **ids))


def resolved(link: Link | None) -> ReviewDecision | None:
    """The operator's decision for the record of `link`, if any; `exclude` is raised as `Excluded`."""
    if link is None or link.review_decision is None:
        return None
    if link.review_decision == ReviewDecision.EXCLUDE:
        raise Excluded(EXCLUDED_BY_OPERATOR, category="operator")
    return link.review_decision


def awaiting_review(link: Link | None) -> bool:
    """The record needs review and no operator decided yet: it writes nothing."""
    return link is not None and link.status == LinkStatus.NEEDS_REVIEW and link.review_decision is None


# A link's fields with its review done (the decision applied): `cleared`, or a plan's `SaveLink` of a record made.
REVIEWED: Mapping[str, Any] = {"candidates": (), "review_decision": None, "review_pick": None}


def cleared(link: Link) -> Link:
    """The link with its review done (the decision applied)."""
    return dataclasses.replace(link, **REVIEWED)


def version(record: HubSpotObject) -> str | None:
    return record.updated_at.isoformat() if record.updated_at else None


async def needs_review(
    ctx: SyncContext, kind: Kind, link: Link | None, side: Provider, own_id: str, review: Review, version: str | None
) -> Outcome:
    """`plan_review`, carried out."""
    return await carry_out(ctx, plan_review(ctx.name, kind, link, side, own_id, review, version))


def plan_review(
    connection: str, kind: Kind, link: Link | None, side: Provider, own_id: str, review: Review, version: str | None
) -> Plan:
    """The plan recording that `own_id` (on `side`, at `version`: its updatedAt or SyncToken; `link`: its link as
    read, if any) needs review with these candidates: one link save, nothing else written. The version saved lets
    the poller pass over a record it has seen. A crash before the save: the next apply decides again."""
    base = link or Link(
        connection=connection,
        kind=kind,
        origin=side,
        hubspot_id=own_id if side == Provider.HUBSPOT else None,
        qbo_id=own_id if side == Provider.QUICKBOOKS else None,
    )
    changes = {
        "status": LinkStatus.NEEDS_REVIEW,
        "error_category": "needs_review",
        "error_message": f"{review.reason}: resolve with hsqbo review"[:500],
        "candidates": review.candidates,
        "review_decision": None,
        "review_pick": None,
        "hubspot_version": version if side == Provider.HUBSPOT else base.hubspot_version,
        "qbo_version": version if side == Provider.QUICKBOOKS else base.qbo_version,
    }
    listed = ", ".join(f"{c.id} ({c.label})" for c in review.candidates) or "none"
    detail = f"{review.reason}; candidates: {listed}"
    return Plan(base, (SaveLink(changes),), Action.NEEDS_REVIEW, direction_from(side), detail)

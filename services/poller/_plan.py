"""The initial sync's plan, a value: per record not in sync, what the first sync will do with it, before anything is
written to either API (`_first_sync.py` makes it by reading both sides, the status page and `hsqbo poller --backfill
--plan FILE` show it, an operator resolves what needs review and confirms with `--apply FILE` or the page's Confirm).

    link      the record matched exactly one record on the other side (`matched`), free: the two are linked
    create    nothing matched: the record is made on the other side
    update    already linked (`matched`), changed since: brought up to date
    exclude   a filter or an operator leaves it out (`reason`)
    failing   it cannot sync until its data or the connection's settings change (`reason`)
    review    matching found several records, or one already linked (`candidates`, `reason`): an operator picks a
              candidate, "create new" or "exclude" (`decision`, `pick`) before the plan can be confirmed

The plan is what the sync rules decide (their filters and `rules._match.decide`, called by `_first_sync.py`), not a
second copy of them; the worker applies each record with the same rules once confirmed, so a record changed between
the plan and the confirmation is decided on what it is then. Every function here is pure.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any

from shared.domain import Kind, Provider
from shared.store import Candidate, ReviewDecision

FORMAT = 1  # the plan file's format version


class Action(enum.StrEnum):
    LINK = "link"
    CREATE = "create"
    UPDATE = "update"
    EXCLUDE = "exclude"
    FAILING = "failing"
    REVIEW = "review"


class PlanError(ValueError):
    """A plan file that is not one, or a decision that does not fit the plan."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One record not in sync and what the first sync will do with it."""

    kind: Kind
    side: Provider  # where the record lives
    id: str
    object_type: str  # its change envelope's object type ("contact", "customer"...)
    label: str  # what a person recognises it by: name and email, SKU, invoice number...
    action: Action
    matched: Candidate | None = None  # link / update: the record on the other side
    reason: str = ""  # exclude, failing, review: why
    candidates: tuple[Candidate, ...] = ()  # review: what it could be linked to
    decision: ReviewDecision | None = None  # review: the operator's
    pick: str | None = None  # decision pick: the candidate

    @property
    def key(self) -> str:
        """The entry's name in forms and on the command line: kind/side/id."""
        return f"{self.kind}/{self.side}/{self.id}"

    @property
    def resolved(self) -> bool:
        return self.action != Action.REVIEW or self.decision is not None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    connection: str
    planned_at: float  # epoch seconds
    since: float | None  # records changed since (None: all)
    entries: tuple[Entry, ...]
    in_sync: int = 0  # records found whose link already shows their version: nothing to do

    def counts(self) -> dict[Kind, dict[Action, int]]:
        """Entries per object and action, every action present."""
        counts: dict[Kind, dict[Action, int]] = {}
        for entry in self.entries:
            per_kind = counts.setdefault(entry.kind, dict.fromkeys(Action, 0))
            per_kind[entry.action] += 1
        return counts

    def unresolved(self) -> list[Entry]:
        return [entry for entry in self.entries if not entry.resolved]

    def entry(self, key: str) -> Entry:
        for entry in self.entries:
            if entry.key == key:
                return entry
        raise PlanError(f"no record {key} in the plan")


def resolve(plan: Plan, key: str, decision: ReviewDecision, pick: str | None = None) -> Plan:
    """The plan with the operator's decision for the review entry `key`; raises PlanError when it does not fit."""
    entry = plan.entry(key)
    if entry.action != Action.REVIEW:
        raise PlanError(f"{key} does not need review (it will {entry.action})")
    if decision == ReviewDecision.PICK and pick not in {candidate.id for candidate in entry.candidates}:
        listed = ", ".join(candidate.id for candidate in entry.candidates) or "none"
        raise PlanError(f"{pick} is not a candidate of {key} (candidates: {listed})")
    decided = dataclasses.replace(entry, decision=decision, pick=pick if decision == ReviewDecision.PICK else None)
    return dataclasses.replace(plan, entries=tuple(decided if e.key == key else e for e in plan.entries))


def without_mirrored_links(entries: Iterable[Entry]) -> list[Entry]:
    """A pair matched from both sides (a contact and the customer with its email, both unlinked) is one link: the
    HubSpot side's entry is kept, the QuickBooks side's that points back at it dropped."""
    kept = list(entries)
    from_hubspot = {
        (e.kind, e.id, e.matched.id)
        for e in kept
        if e.side == Provider.HUBSPOT and e.action == Action.LINK and e.matched
    }
    return [
        e for e in kept
        if not (e.side == Provider.QUICKBOOKS and e.action == Action.LINK and e.matched
                and (e.kind, e.matched.id, e.id) in from_hubspot)
    ]  # fmt: skip


def confirmable(plan: Plan) -> list[str]:
    """What stops the plan from being confirmed, one line each; none: go ahead."""
    return [f"{entry.key} ({entry.label}) needs a decision: {entry.reason}" for entry in plan.unresolved()]


# --- as JSON ---------------------------------------------------------------------------------------------------------


def _candidate(value: dict[str, Any] | None) -> Candidate | None:
    return None if value is None else Candidate(str(value["id"]), str(value["label"]))


def to_json(plan: Plan) -> dict[str, Any]:
    def entry(e: Entry) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": str(e.kind), "side": str(e.side), "id": e.id, "object_type": e.object_type, "label": e.label,
            "action": str(e.action),
        }  # fmt: skip
        if e.matched is not None:
            out["matched"] = {"id": e.matched.id, "label": e.matched.label}
        if e.reason:
            out["reason"] = e.reason
        if e.candidates:
            out["candidates"] = [{"id": c.id, "label": c.label} for c in e.candidates]
        if e.decision is not None:
            out["decision"] = str(e.decision)
        if e.pick is not None:
            out["pick"] = e.pick
        return out

    return {
        "format": FORMAT, "connection": plan.connection, "planned_at": plan.planned_at, "since": plan.since,
        "in_sync": plan.in_sync, "entries": [entry(e) for e in plan.entries],
    }  # fmt: skip


def from_json(data: Any) -> Plan:
    """The plan a file holds; raises PlanError naming what is wrong."""
    try:
        if data.get("format") != FORMAT:
            raise PlanError(f"not a plan of format {FORMAT}: make a new one with --plan")
        entries = tuple(
            Entry(
                kind=Kind(e["kind"]), side=Provider(e["side"]), id=str(e["id"]), object_type=str(e["object_type"]),
                label=str(e["label"]), action=Action(e["action"]), matched=_candidate(e.get("matched")),
                reason=str(e.get("reason", "")),
                candidates=tuple(c for c in map(_candidate, e.get("candidates", [])) if c is not None),
                decision=ReviewDecision(e["decision"]) if e.get("decision") else None,
                pick=str(e["pick"]) if e.get("pick") is not None else None,
            )
            for e in data["entries"]
        )  # fmt: skip
        since = data.get("since")
        return Plan(
            connection=str(data["connection"]), planned_at=float(data["planned_at"]),
            since=None if since is None else float(since), entries=entries, in_sync=int(data.get("in_sync", 0)),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, PlanError):
            raise
        raise PlanError(f"not a readable plan ({type(exc).__name__}: {exc})") from None


def report(plan: Plan) -> str:
    """The plan as text: counts per object, then every record to link, exclude, failing or to review."""
    lines = [f"{'object':<10}" + "".join(f"{action:>9}" for action in Action)]
    for kind, counts in plan.counts().items():
        lines.append(f"{kind:<10}" + "".join(f"{counts[action]:>9}" for action in Action))
    lines.append(f"in sync already: {plan.in_sync}")
    for entry in plan.entries:
        if entry.action in (Action.CREATE, Action.UPDATE):
            continue
        line = f"{entry.action:<8} {entry.key}  {entry.label}"
        if entry.matched is not None:
            line += f"  ->  {entry.matched.id} {entry.matched.label}"
        if entry.reason:
            line += f"  ({entry.reason})"
        if entry.action == Action.REVIEW:
            listed = "; ".join(f"{c.id} {c.label}" for c in entry.candidates) or "none"
            decided = (
                f"decided: {entry.decision}" + (f" {entry.pick}" if entry.pick else "")
                if entry.decision
                else ("undecided")
            )
            line += f"\n           candidates: {listed}; {decided}"
        lines.append(line)
    return "\n".join(lines)


# --- progress --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """How far a run is: `done` of `total` since `started_at` (epoch seconds), at `now`."""

    total: int
    done: int
    started_at: float
    now: float

    @property
    def per_minute(self) -> float:
        elapsed = self.now - self.started_at
        return self.done * 60 / elapsed if elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None before the first record is done."""
        if self.done >= self.total:
            return 0.0
        return (self.total - self.done) * 60 / self.per_minute if self.per_minute > 0 else None

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def duration(seconds: float | None) -> str:
    """A short human duration: "45 s", "12 min", "3.5 h"; "—" when unknown."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def progress_line(progress: Progress) -> str:
    return (
        f"{progress.done}/{progress.total} records synced, {progress.per_minute:.0f}/min, "
        f"ETA {duration(progress.eta_seconds)}"
    )

"""The store's records, backend-neutral. Timestamps are epoch seconds (float, UTC) throughout."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from shared.domain import Direction, Kind, PendingKey, Provider


class LinkStatus(enum.StrEnum):
    SYNCED = "synced"
    FAILING = "failing"
    EXCLUDED = "excluded"
    DELETED = "deleted"
    # Matched several records on the other side (or its match is shared): linked to none, nothing written on either
    # side until an operator decides (`hsqbo review`). The link lists the candidates.
    NEEDS_REVIEW = "needs_review"


class ReviewDecision(enum.StrEnum):
    """What an operator decided for a record that needed review (`hsqbo review resolve`)."""

    PICK = "pick"  # link to the candidate `Link.review_pick`
    CREATE_NEW = "create_new"  # create the record on the other side, no matching
    EXCLUDE = "exclude"  # leave the record out of the sync


class CredentialStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    PAUSED = "paused"  # by the operator (`hsqbo connections pause`); `resume` makes it active again


class RepointOutcome(enum.StrEnum):
    NOT_LINKED = "not_linked"  # no link holds from_id: nothing to do
    REPOINTED = "repointed"  # the loser's link now points at to_id
    LOSER_DELETED = "loser_deleted"  # to_id already had a link: the loser's link is marked deleted


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """A record on the other side a record needing review could be linked to."""

    id: str  # its id on the other side
    label: str  # a short description for the operator: name, email, "inactive", "linked to 12"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """One synced pair of records: the id map, plus what was last synced on each side."""

    connection: str
    kind: Kind
    origin: Provider  # the side that created the record first
    hubspot_id: str | None = None  # None until the HubSpot record exists
    qbo_id: str | None = None
    hubspot_version: str | None = None  # updatedAt / hs_lastmodifieddate as last synced
    qbo_version: str | None = None  # SyncToken as last synced
    hubspot_hash: str | None = None  # hash of the mapped fields as last synced, per side
    qbo_hash: str | None = None
    qbo_written_sync_token: str | None = None  # the SyncToken our own last write produced: its CDC/webhook is an echo
    last_synced_at: float | None = None
    status: LinkStatus = LinkStatus.SYNCED
    error_category: str | None = None
    error_message: str | None = None
    # The mapped fields' values both sides agreed on at the last sync (canonical strings): the base of the
    # worker's three-way merge.
    synced: dict[str, str | None] = dataclasses.field(default_factory=dict)
    # Review (status needs_review): the records on the other side it could be linked to, and once an operator
    # decided, the decision (kept while the worker applies it; `exclude` stays, so the record stays out).
    candidates: tuple[Candidate, ...] = ()
    review_decision: ReviewDecision | None = None
    review_pick: str | None = None  # the candidate picked (decision pick)
    # What a person recognises the record by (services/worker/_summary.py): one searchable line, and what each side
    # showed, what the last sync changed, what a failing record waits for. Written only by `Store.set_summary`
    # (save_link leaves both as they are), so a rule saving a link it read earlier never undoes them.
    label: str = ""
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: int | None = None  # set by the store on first save
    revision: int = 0  # optimistic lock: save_link refuses a link changed since it was read
    updated_at: float = 0.0  # set by the store on every write


@dataclasses.dataclass(frozen=True, slots=True)
class RepointResult:
    outcome: RepointOutcome
    survivor: Link | None  # the link that now holds to_id (None when NOT_LINKED and to_id has no link)
    loser: Link | None  # the link that held from_id (None when NOT_LINKED)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    """One line of a record's history. `detail` is short text, never a payload."""

    id: int
    at: float
    connection: str
    kind: Kind
    action: str  # created, updated, skipped, excluded, failed, linked, deleted, merged...
    link_id: int | None
    hubspot_id: str | None
    qbo_id: str | None
    direction: Direction | None
    detail: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    key: PendingKey
    generation: int  # bumped by every touch: finish_pending only removes the generation that was processed
    first_seen: float
    last_seen: float
    hints: dict[str, Any]
    owner: str | None
    lease_expires_at: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    """One reconciliation run of one connection (see services/poller/_reconcile.py): per object (kind) the counts
    {"checked", "agreed", "drifted", "missing"}, and the drifted records, each {"kind", "hubspot_id", "qbo_id",
    "fields": [{"field", "hubspot", "qbo"}]} with values cut short. Never a token or a whole record."""

    connection: str
    started_at: float
    finished_at: float
    dry_run: bool = False
    objects: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    drifted: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    id: int | None = None  # set by the store


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """OAuth tokens of one connection at one provider. Tokens are left out of repr so they never reach a log."""

    connection: str
    provider: Provider
    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_at: float | None = None
    refresh_expires_at: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. realm id, portal id; not secret
    status: CredentialStatus = CredentialStatus.ACTIVE
    updated_at: float = 0.0  # set by the store on every write


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """A worker's or poller's sign of life, written every few seconds. `detail` is what it saw last (a worker:
    {"webhooks": {"<connection>/<kind>": epoch}}; a poller: {"polls": {"<connection>": epoch}}), never a payload."""

    process: str  # host:pid:...: one row per process
    role: str  # worker | poller
    started_at: float
    beat_at: float
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class SyncedRecord:
    """One record a worker wrote to the other side: when, and its end-to-end lag (None: its change time unknown,
    such as an initial sync's)."""

    connection: str
    kind: Kind
    at: float
    lag_seconds: float | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FirstSync:
    """The initial sync's plan of one connection (services/poller/_plan.py, as JSON), and once confirmed when."""

    connection: str
    plan: dict[str, Any]
    planned_at: float
    applied_at: float | None = None
    updated_at: float = 0.0  # set by the store on every write

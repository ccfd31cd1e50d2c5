"""What the SQL backends share: the columns a caller sets, and records turned into column values and rows back into
records. JSON columns travel as text both ways (SQLite stores text; Postgres's jsonb is read as text, see
`_postgres`), so one set of readers serves both."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import orjson

from shared.domain import Direction, Kind, Part, PendingKey, Provider
from shared.store._crypto import TokenCipher
from shared.store._models import (
    Activity,
    Candidate,
    Credentials,
    CredentialStatus,
    FirstSync,
    Heartbeat,
    Link,
    LinkStatus,
    Pending,
    Reconciliation,
    ReviewDecision,
)

MAX_DETAIL_CHARS = 500  # activity detail is a short note, never a payload
DEFERRED = "deferred"  # the pending lease owner of work set aside until a time (see Store.defer_pending)

# Link columns the caller sets; id, revision and updated_at are the store's.
LINK_FIELDS = (
    "connection",
    "kind",
    "hubspot_id",
    "qbo_id",
    "origin",
    "hubspot_version",
    "qbo_version",
    "hubspot_hash",
    "qbo_hash",
    "qbo_written_sync_token",
    "last_synced_at",
    "status",
    "error_category",
    "error_message",
    "synced",
    "candidates",
    "review_decision",
    "review_pick",
)
# Per side of a merge: the id column, and the last-synced state that described the merged-away record.
SIDE_ID_COLUMN = {Provider.HUBSPOT: "hubspot_id", Provider.QUICKBOOKS: "qbo_id"}
SIDE_STATE_RESET = {
    Provider.HUBSPOT: "hubspot_version = NULL, hubspot_hash = NULL",
    Provider.QUICKBOOKS: "qbo_version = NULL, qbo_hash = NULL, qbo_written_sync_token = NULL",
}


class Row(Protocol):
    """A result row by column name: sqlite3.Row, or psycopg's dict row."""

    def __getitem__(self, column: str, /) -> Any: ...


def link_values(link: Link) -> list[Any]:
    """The values of LINK_FIELDS, in order (JSON columns as text)."""
    json_columns = {"synced": link.synced, "candidates": [dataclasses.asdict(c) for c in link.candidates]}
    return [
        orjson.dumps(json_columns[name]).decode() if name in json_columns else getattr(link, name)
        for name in LINK_FIELDS
    ]


def key_values(key: PendingKey) -> tuple[str, str, str, str, str]:
    """The pending key's columns, in order; a record's own key has part '' (key columns are never NULL)."""
    return (key.connection, key.kind, key.side, key.part or "", key.object_id)


def credential_values(credentials: Credentials, cipher: TokenCipher) -> tuple[Any, ...]:
    """The credentials columns after (connection, provider), tokens encrypted."""
    return (
        cipher.encrypt(credentials.access_token),
        cipher.encrypt(credentials.refresh_token),
        cipher.digest(credentials.refresh_token),
        credentials.expires_at,
        credentials.refresh_expires_at,
        orjson.dumps(credentials.extra).decode(),
        credentials.status,
        credentials.updated_at,
    )


def read_link(row: Row) -> Link:
    return Link(
        id=row["id"],
        connection=row["connection"],
        kind=Kind(row["kind"]),
        hubspot_id=row["hubspot_id"],
        qbo_id=row["qbo_id"],
        origin=Provider(row["origin"]),
        hubspot_version=row["hubspot_version"],
        qbo_version=row["qbo_version"],
        hubspot_hash=row["hubspot_hash"],
        qbo_hash=row["qbo_hash"],
        qbo_written_sync_token=row["qbo_written_sync_token"],
        last_synced_at=_real(row["last_synced_at"]),
        status=LinkStatus(row["status"]),
        error_category=row["error_category"],
        error_message=row["error_message"],
        synced=orjson.loads(row["synced"]),
        candidates=tuple(Candidate(str(c["id"]), str(c["label"])) for c in orjson.loads(row["candidates"])),
        review_decision=None if row["review_decision"] is None else ReviewDecision(row["review_decision"]),
        review_pick=row["review_pick"],
        label=row["label"],
        summary=orjson.loads(row["summary"]),
        revision=row["revision"],
        updated_at=float(row["updated_at"]),
    )


def read_pending(row: Row) -> Pending:
    return Pending(
        key=read_pending_key(row),
        generation=row["generation"],
        first_seen=float(row["first_seen"]),
        last_seen=float(row["last_seen"]),
        hints=orjson.loads(row["hints"]),
        owner=row["owner"],
        lease_expires_at=_real(row["lease_expires_at"]),
    )


def read_pending_key(row: Row) -> PendingKey:
    part = Part(row["part"]) if row["part"] else None
    return PendingKey(row["connection"], Kind(row["kind"]), Provider(row["side"]), row["object_id"], part)


def read_activity(row: Row) -> Activity:
    return Activity(
        id=row["id"],
        at=float(row["at"]),
        connection=row["connection"],
        kind=Kind(row["kind"]),
        action=row["action"],
        link_id=row["link_id"],
        hubspot_id=row["hubspot_id"],
        qbo_id=row["qbo_id"],
        direction=None if row["direction"] is None else Direction(row["direction"]),
        detail=row["detail"],
    )


def read_reconciliation(row: Row) -> Reconciliation:
    return Reconciliation(
        id=row["id"],
        connection=row["connection"],
        started_at=float(row["started_at"]),
        finished_at=float(row["finished_at"]),
        dry_run=bool(row["dry_run"]),
        objects=orjson.loads(row["objects"]),
        drifted=orjson.loads(row["drifted"]),
    )


def read_heartbeat(row: Row) -> Heartbeat:
    return Heartbeat(
        process=row["process"],
        role=row["role"],
        started_at=float(row["started_at"]),
        beat_at=float(row["beat_at"]),
        detail=orjson.loads(row["detail"]),
    )


def read_first_sync(row: Row) -> FirstSync:
    return FirstSync(
        connection=row["connection"],
        plan=orjson.loads(row["plan"]),
        planned_at=float(row["planned_at"]),
        applied_at=_real(row["applied_at"]),
        updated_at=float(row["updated_at"]),
    )


def read_credentials(row: Row, cipher: TokenCipher) -> Credentials:
    return Credentials(
        connection=row["connection"],
        provider=Provider(row["provider"]),
        access_token=cipher.decrypt(row["access_token"]),
        refresh_token=cipher.decrypt(row["refresh_token"]),
        expires_at=_real(row["expires_at"]),
        refresh_expires_at=_real(row["refresh_expires_at"]),
        extra=orjson.loads(row["extra"]),
        status=CredentialStatus(row["status"]),
        updated_at=float(row["updated_at"]),
    )


def _real(value: float | None) -> float | None:
    """SQLite's RETURNING hands back a whole REAL as an int (it stores it so); the models promise floats."""
    return None if value is None else float(value)

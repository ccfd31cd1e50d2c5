"""The store's interface: one protocol per role (links, activity, pending work, credentials, locks, cursors,
reconciliations, `shared.quotas.LimitBackend` for the rate limits and `shared.budget.UsageBackend` for the monthly
API usage), and `Store`, all of them. A caller types
against the role it needs. `SqlStore` (`_sql.py`) implements them once, in SQL both backends run: SQLite (`_sqlite.py`)
and Postgres (`_postgres.py`) add only connecting, transactions and a few dialect pieces. Each method is one short
transaction; every read-modify-write happens inside the store's SQL, so several processes can share one store.

The lease is a conditional `UPDATE ... RETURNING` (row-locked on Postgres), touch an `INSERT ... ON CONFLICT DO
UPDATE ... RETURNING`, compare-and-swap a conditional `UPDATE`, repoint a locked read then `UPDATE`s. Taking a
rate-limit quota counts rows under a lock of its keys: SQLite's database-wide `BEGIN IMMEDIATE`, on Postgres a
transaction-scoped advisory lock per key (`pg_advisory_xact_lock`, in one order); a lock is an `INSERT ... ON CONFLICT
DO UPDATE ... WHERE` on its lease.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from shared.budget import UsageBackend
from shared.domain import Awaited, Direction, Kind, PendingKey, Provider
from shared.quotas import LimitBackend
from shared.store._models import (
    Activity,
    Credentials,
    FirstSync,
    Heartbeat,
    Link,
    LinkStatus,
    Pending,
    Reconciliation,
    RepointResult,
    SyncedRecord,
)


class LinkStore(Protocol):
    """The id map: one link per synced pair of records, with what was last synced on each side (and, for a record
    needing review, its candidates and the operator's decision)."""

    async def get_link(
        self, connection: str, kind: Kind, *, hubspot_id: str | None = None, qbo_id: str | None = None
    ) -> Link | None:
        """The link holding this id; give exactly one of hubspot_id, qbo_id."""
        ...

    async def get_link_by_id(self, link_id: int) -> Link | None:
        """The link with this id (the id a record is shown under: status page, `hsqbo review`)."""
        ...

    async def creates_in_doubt(self, connection: str, kind: Kind, qbo_hash: str) -> list[Link]:
        """The links keeping the intent of a QBO create cut short (no QBO id, status synced) that records this
        content hash (`qbo_hash`), by id."""
        ...

    async def save_link(self, link: Link) -> Link:
        """Insert (id None) or update (by id, only if `revision` is still the stored one); returns the stored link.
        Raises DuplicateLink when another link holds one of its ids, StaleLink when it changed."""
        ...

    async def set_status(
        self, link_id: int, status: LinkStatus, category: str | None = None, message: str | None = None
    ) -> Link:
        """Set status and error fields (None clears them) whatever the revision; raises StaleLink if gone."""
        ...

    async def set_version(self, link_id: int, side: Provider, version: str) -> Link:
        """Record the version of `side`'s record an apply saw (`hubspot_version` / `qbo_version`), whatever the
        outcome; the revision is kept (nothing the merge reads changes); raises StaleLink if gone."""
        ...

    async def repoint_link(
        self, connection: str, kind: Kind, side: Provider, from_id: str, to_id: str
    ) -> RepointResult:
        """A merge on `side`: from_id was merged into to_id. The survivor takes over the loser's link, or, if
        to_id already has a link, the loser's link is marked deleted."""
        ...

    async def list_links(
        self,
        connection: str | None = None,
        kind: Kind | None = None,
        status: LinkStatus | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        search: str | None = None,
        recent: bool = False,
    ) -> list[Link]:
        """Links by id (`recent`: last changed first), optionally filtered; `search` keeps those whose label
        contains it (any case) or whose id on either side is it."""
        ...

    async def set_summary(self, link_id: int, label: str, summary: dict[str, Any]) -> None:
        """Replace what a person recognises the link's records by (`Link.label`, `Link.summary`). Leaves the
        revision and `updated_at` alone: no apply has to re-run for it, and a name read anew is no change of the
        sync (the apply that synced a renamed record moved `updated_at` itself)."""
        ...

    async def count_links_by_status(self, connection: str) -> dict[tuple[Kind, LinkStatus], int]: ...


class ActivityLog(Protocol):
    """Each record's history, newest first; bounded by `prune_activity` (see services/worker/_retention.py)."""

    async def log_activity(
        self,
        connection: str,
        kind: Kind,
        action: str,
        *,
        link_id: int | None = None,
        hubspot_id: str | None = None,
        qbo_id: str | None = None,
        direction: Direction | None = None,
        detail: str = "",
        at: float | None = None,
    ) -> int:
        """Append one line (at defaults to now; detail is cut to a short length); returns its id."""
        ...

    async def activity(
        self,
        connection: str,
        kind: Kind,
        *,
        hubspot_id: str | None = None,
        qbo_id: str | None = None,
        link_id: int | None = None,
        limit: int = 50,
    ) -> list[Activity]:
        """Newest first; lines matching any of the given ids (all lines of connection/kind when none given)."""
        ...

    async def prune_activity(self, older_than: float, keep: int) -> int:
        """Delete the lines with `at` before older_than, and all but the newest `keep` lines; returns how many."""
        ...

    async def count_activity_since(self, connection: str, since: float) -> int:
        """Activity lines of the connection at or after `since` (an initial sync's progress: one per record applied)."""
        ...


class PendingWork(Protocol):
    """Records with unprocessed changes: debounce, and a per-record lease so that one process applies a record at a
    time."""

    async def touch_pending(self, key: PendingKey, now: float, hints: dict[str, Any] | None = None) -> bool:
        """Record a change: first_seen kept, last_seen = max(last_seen, now), generation + 1, hints merged as a
        JSON merge patch (RFC 7396: objects merge recursively, other values replace, null removes a key).
        True when the row was newly created: the caller schedules it."""
        ...

    async def claim_pending(self, key: PendingKey, owner: str, now: float, lease_seconds: float) -> Pending | None:
        """Take (or renew, for the same owner) the lease until now + lease_seconds if it is free or expired.
        None when another owner holds a live lease or there is no such row."""
        ...

    async def finish_pending(self, key: PendingKey, owner: str, generation: int) -> bool:
        """Delete the row if `owner` holds it at `generation`. False when changes arrived meanwhile (the row
        stays, lease released: process it again) or the lease was lost."""
        ...

    async def release_pending(self, key: PendingKey, owner: str) -> None:
        """Give the lease back (if `owner` holds it), keeping the row."""
        ...

    async def due_pending(
        self,
        now: float,
        quiet_seconds: float,
        max_wait_seconds: float,
        limit: int = 100,
        *,
        still_queued: Collection[str] = (),
    ) -> list[PendingKey]:
        """Keys quiet for quiet_seconds or waiting longer than max_wait_seconds, with no live lease; oldest first.
        The unclaimed keys of the connections `still_queued` names are left out: their apply commands may still
        wait in the broker (deferred keys and expired leases are due whatever the queues hold)."""
        ...

    async def get_pending(self, key: PendingKey) -> Pending | None: ...

    async def set_waiting(self, link_id: int, side: Provider, awaited: Awaited | None) -> None:
        """Record what the link's (failing) record on `side` waits for, replacing what it waited for; None: nothing."""
        ...

    async def waiting_for(self, connection: str, awaited: Awaited) -> list[PendingKey]:
        """The failing records waiting for `awaited` (by index); a record no longer failing is not waiting."""
        ...

    async def count_pending(self) -> int:
        """Records waiting to be synced or being synced now (the backlog)."""
        ...

    async def count_pending_by_kind(self, connection: str) -> dict[Kind, int]:
        """The connection's backlog per object."""
        ...

    async def defer_pending(self, key: PendingKey, until: float) -> None:
        """Set the record aside until `until` whoever holds it: the lease passes to an owner no worker has, so
        nobody claims it, `finish_pending` keeps the row, and the sweep schedules it again once `until` passes."""
        ...

    async def release_deferred(self, connection: str) -> int:
        """Make the connection's deferred records due now (after a reconnect); returns how many."""
        ...


class CredentialStore(Protocol):
    """OAuth tokens per connection and provider, encrypted at rest."""

    async def get_credentials(self, connection: str, provider: Provider) -> Credentials | None: ...

    async def save_credentials(self, credentials: Credentials) -> Credentials:
        """Insert or replace, atomically; returns the stored credentials (updated_at set)."""
        ...

    async def compare_and_swap_refresh(
        self, connection: str, provider: Provider, expected_refresh_token: str, new: Credentials
    ) -> bool:
        """Replace the credentials only if the stored refresh token is still `expected_refresh_token`: of several
        processes refreshing at once, one wins; the others re-read and use the winner's tokens."""
        ...

    async def mark_revoked(self, connection: str, provider: Provider) -> None: ...


class Locks(Protocol):
    """Named leases across processes (one poller per connection, one token refresh at a time)."""

    async def acquire_lock(self, name: str, owner: str, now: float, lease_seconds: float) -> bool:
        """Take (or renew, for the same owner) the lease on `name` until now + lease_seconds if it is free or
        expired; False when another owner holds it."""
        ...

    async def release_lock(self, name: str, owner: str) -> None:
        """Give the lease back if `owner` holds it."""
        ...


class Cursors(Protocol):
    """Small per-connection values: the poller's watermarks."""

    async def get_cursor(self, connection: str, name: str) -> str | None: ...

    async def set_cursor(self, connection: str, name: str, value: str) -> None: ...


class Reconciliations(Protocol):
    """The last reports of the poller's reconciliation per connection."""

    async def save_reconciliation(self, report: Reconciliation, *, keep: int) -> Reconciliation:
        """Keep `report` (its id set) and delete the connection's older reports beyond the last `keep`."""
        ...

    async def reconciliations(self, connection: str | None = None, limit: int = 1) -> list[Reconciliation]:
        """The newest reports first (of one connection, or of all)."""
        ...


class ObjectSwitches(Protocol):
    """An operator's on/off per connection and object (the status page's overview): off, the worker defers the
    object's work."""

    async def object_switches(self, connection: str) -> dict[Kind, bool]:
        """The objects an operator switched (True: on, False: off); an object not in it is on."""
        ...

    async def set_object_switch(self, connection: str, kind: Kind, enabled: bool) -> None: ...


class Heartbeats(Protocol):
    """What workers and pollers tell the status page: their heartbeats, and the records they synced (for its charts);
    both pruned by their writers (shared/heartbeat.py)."""

    async def beat(self, heartbeat: Heartbeat) -> None:
        """Insert or replace the process's heartbeat (started_at kept from its first beat)."""
        ...

    async def heartbeats(self, *, since: float = 0.0) -> list[Heartbeat]:
        """Heartbeats written at or after `since`, newest first."""
        ...

    async def prune_heartbeats(self, older_than: float) -> int:
        """Forget processes silent since before older_than; returns how many."""
        ...

    async def add_synced(self, records: Sequence[SyncedRecord]) -> None:
        """Append records synced (one transaction)."""
        ...

    async def synced(self, connection: str, *, since: float) -> list[SyncedRecord]:
        """The connection's records synced at or after `since`, oldest first."""
        ...

    async def prune_synced(self, older_than: float) -> int:
        """Delete synced records before older_than; returns how many."""
        ...


class RateUses(Protocol):
    """The rate limits' budget in use, read (the status page); taking and finishing quotas is
    `shared.quotas.LimitBackend`."""

    async def count_rate_uses(self, keys: Sequence[str], now: float) -> dict[str, int]:
        """Calls counted now against each rate-limit window key (shared/clients/_limits.py): the budget in use."""
        ...


class FirstSyncs(Protocol):
    """The initial sync's plan per connection, reviewed and confirmed once (services/poller/_first_sync.py)."""

    async def save_first_sync(self, first_sync: FirstSync) -> FirstSync:
        """Insert or replace the connection's plan; returns it stored (updated_at set)."""
        ...

    async def first_sync(self, connection: str) -> FirstSync | None: ...


class Store(
    LinkStore,
    ActivityLog,
    PendingWork,
    CredentialStore,
    LimitBackend,
    UsageBackend,
    RateUses,
    Locks,
    Cursors,
    Reconciliations,
    ObjectSwitches,
    Heartbeats,
    FirstSyncs,
    Protocol,
):
    """The whole store, as `open_store` gives it: every role, and its lifetime. A caller needing one role types
    against that role; the rate limiter's role is `shared.quotas.LimitBackend`, the API usage counter's
    `shared.budget.UsageBackend` (provider calls per account, provider, kind and month: `api_usage` is what the status
    page reads)."""

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order, in one transaction; returns the versions applied (usually none)."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

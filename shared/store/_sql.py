"""`SqlStore`: every `Store` method, written once for both SQL backends over a few primitives each provides.

Here: the SQL of every method, in one text both dialects run; the transactions (which statements go together, what
is locked first); errors (a unique violation on a link is DuplicateLink, no row StaleLink); migrating; rows read back
into records (with `_rows`). A backend (`_sqlite.py`, `_postgres.py`) adds only what differs:

- connecting and closing;
- `_transaction()`: a write transaction yielding `Statements` (`fetch`, `execute`), committed at the block's end and
  rolled back if it raises. SQLite: BEGIN IMMEDIATE, the database's write lock up front; Postgres: a pooled
  connection at READ COMMITTED, whose statements lock the rows they change;
- optionally `_read`, for a read that needs no write transaction (SQLite: outside any), and `_transact`, for a whole
  transaction run cheaper than statement by statement (SQLite: in one hop to its connection's thread);
- `_hold_locks(tx, names)`: named locks to the transaction's end, taken by `migrate` and `take_quota` (Postgres:
  advisory locks; SQLite's transaction holds the whole database already);
- how a migration script splits into statements, and the dialect's pieces of SQL: the class constants of `SqlStore`.

SQL is written with psycopg's placeholders, `%s` a parameter and `%%` a percent sign; the SQLite backend turns them
into its own. A statement given no parameters runs as written.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar

import orjson

from shared.budget import ApiUsage, CallKind, UsageKey
from shared.domain import Awaited, Direction, Kind, PendingKey, Provider
from shared.quotas import Admission, Quota, refused
from shared.store._crypto import TokenCipher
from shared.store._errors import DuplicateLink, SchemaTooNew, StaleLink
from shared.store._migrations import Dialect, load_migrations
from shared.store._models import (
    Activity,
    Credentials,
    CredentialStatus,
    FirstSync,
    Heartbeat,
    Link,
    LinkStatus,
    Pending,
    Reconciliation,
    RepointOutcome,
    RepointResult,
    SyncedRecord,
)
from shared.store._rows import (
    DEFERRED,
    LINK_FIELDS,
    MAX_DETAIL_CHARS,
    SIDE_ID_COLUMN,
    SIDE_STATE_RESET,
    Row,
    credential_values,
    key_values,
    link_values,
    read_activity,
    read_credentials,
    read_first_sync,
    read_heartbeat,
    read_link,
    read_pending,
    read_pending_key,
    read_reconciliation,
)
from shared.store._store import Store

_T = TypeVar("_T")

_INSERT_LINK = (
    f"INSERT INTO links ({', '.join(LINK_FIELDS)}, revision, updated_at) "
    f"VALUES ({', '.join('%s' for _ in LINK_FIELDS)}, 1, %s) RETURNING *"
)
_UPDATE_LINK = (
    f"UPDATE links SET {', '.join(f'{name} = %s' for name in LINK_FIELDS)}, revision = revision + 1, "
    "updated_at = %s WHERE id = %s AND revision = %s RETURNING *"
)
_LINK_BY = "SELECT * FROM links WHERE connection = %s AND kind = %s AND {column} = %s"
_PENDING_KEY_MATCH = "connection = %s AND kind = %s AND side = %s AND part = %s AND object_id = %s"


class Statements(Protocol):
    """One statement at a time inside a transaction (placeholders: see the module docstring)."""

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        """Its rows."""
        ...

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """How many rows it changed."""
        ...


class SqlStore(Store):
    # The dialect's pieces, set by each backend.
    DIALECT: ClassVar[Dialect]  # its migrations
    UNIQUE_VIOLATION: ClassVar[type[Exception]]  # what a statement breaking a unique index raises
    GREATEST: ClassVar[str]  # the function giving the larger of two values
    MERGE_PATCH: ClassVar[str]  # the function applying an RFC 7396 merge patch (text) to a JSON column
    FOR_UPDATE: ClassVar[str]  # after a SELECT: its rows locked until the transaction ends
    SKIP_LOCKED: ClassVar[str]  # the same, passing over rows another transaction holds

    def __init__(self, cipher: TokenCipher, clock: Callable[[], float]) -> None:
        self._cipher = cipher
        self._clock = clock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # What a backend provides.

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Statements]:
        """A write transaction: committed when the block ends, rolled back when it raises."""

    @abc.abstractmethod
    async def _hold_locks(self, tx: Statements, names: Iterable[str]) -> None:
        """Lock each name until `tx` ends: whoever holds one of them makes this wait."""

    @abc.abstractmethod
    def _script_statements(self, script: str) -> Iterable[str]:
        """A migration's statements, to run in order inside the migrating transaction."""

    async def _read(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        """One statement that only reads: its rows. By default in a transaction of its own, as a write."""
        return await self._fetch(sql, params)

    async def _transact(self, body: Callable[[Statements], Coroutine[Any, Any, _T]]) -> _T:
        """`body(tx)` in a write transaction; a body awaits nothing but tx's statements (and `_hold_locks`), so a
        backend may run it whole in one go."""
        async with self._transaction() as tx:
            return await body(tx)

    async def _fetch(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        """One statement in a write transaction of its own: its rows."""
        async with self._transaction() as tx:
            return await tx.fetch(sql, params)

    async def _execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """One statement in a write transaction of its own: how many rows it changed."""
        async with self._transaction() as tx:
            return await tx.execute(sql, params)

    # Migrations.

    async def migrate(self) -> list[int]:
        migrations = load_migrations(self.DIALECT)
        async with self._transaction() as tx:
            # Processes opening a new store at once queue here: one migrates, the others then find it done.
            await self._hold_locks(tx, ["migrate"])
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = {row["version"] for row in await tx.fetch("SELECT version FROM schema_migrations")}
            unknown = applied - {migration.version for migration in migrations}
            if unknown:
                raise SchemaTooNew(f"store has schema version {max(unknown)}, newer than this code knows")
            done = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                for statement in self._script_statements(migration.sql):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, self._clock()),
                )
                done.append(migration.version)
        return done

    # Links.

    async def get_link(
        self, connection: str, kind: Kind, *, hubspot_id: str | None = None, qbo_id: str | None = None
    ) -> Link | None:
        if (hubspot_id is None) == (qbo_id is None):
            raise ValueError("give exactly one of hubspot_id, qbo_id")
        column, value = ("hubspot_id", hubspot_id) if hubspot_id is not None else ("qbo_id", qbo_id)
        rows = await self._read(_LINK_BY.format(column=column), (connection, kind, value))
        return read_link(rows[0]) if rows else None

    async def get_link_by_id(self, link_id: int) -> Link | None:
        rows = await self._read("SELECT * FROM links WHERE id = %s", (link_id,))
        return read_link(rows[0]) if rows else None

    async def creates_in_doubt(self, connection: str, kind: Kind, qbo_hash: str) -> list[Link]:
        rows = await self._read(
            "SELECT * FROM links WHERE connection = %s AND kind = %s AND status = %s AND qbo_id IS NULL "
            "AND qbo_hash = %s ORDER BY id",
            (connection, kind, LinkStatus.SYNCED, qbo_hash),
        )
        return [read_link(row) for row in rows]

    async def save_link(self, link: Link) -> Link:
        values = link_values(link)
        try:
            if link.id is None:
                rows = await self._fetch(_INSERT_LINK, (*values, self._clock()))
            else:
                rows = await self._fetch(_UPDATE_LINK, (*values, self._clock(), link.id, link.revision))
        except self.UNIQUE_VIOLATION as exc:
            raise DuplicateLink(
                f"another {link.kind} link of {link.connection!r} holds hubspot_id={link.hubspot_id!r} "
                f"or qbo_id={link.qbo_id!r}"
            ) from exc
        if not rows:
            raise StaleLink(f"link {link.id} changed or vanished since revision {link.revision}")
        return read_link(rows[0])

    async def set_status(
        self, link_id: int, status: LinkStatus, category: str | None = None, message: str | None = None
    ) -> Link:
        rows = await self._fetch(
            "UPDATE links SET status = %s, error_category = %s, error_message = %s, "
            "revision = revision + 1, updated_at = %s WHERE id = %s RETURNING *",
            (status, category, message, self._clock(), link_id),
        )
        if not rows:
            raise StaleLink(f"link {link_id} does not exist")
        return read_link(rows[0])

    async def set_version(self, link_id: int, side: Provider, version: str) -> Link:
        column = "hubspot_version" if side == Provider.HUBSPOT else "qbo_version"
        rows = await self._fetch(f"UPDATE links SET {column} = %s WHERE id = %s RETURNING *", (version, link_id))
        if not rows:
            raise StaleLink(f"link {link_id} does not exist")
        return read_link(rows[0])

    async def repoint_link(
        self, connection: str, kind: Kind, side: Provider, from_id: str, to_id: str
    ) -> RepointResult:
        if from_id == to_id:
            raise ValueError(f"cannot repoint {from_id!r} onto itself")
        column = SIDE_ID_COLUMN[side]
        select = _LINK_BY.format(column=column)
        async with self._transaction() as tx:
            # The loser's row locked (on SQLite, the whole database is): a concurrent repoint of it waits, then no
            # longer finds it at from_id.
            losers = await tx.fetch(f"{select} {self.FOR_UPDATE}", (connection, kind, from_id))
            survivors = await tx.fetch(select, (connection, kind, to_id))
            survivor = read_link(survivors[0]) if survivors else None
            if not losers:
                return RepointResult(RepointOutcome.NOT_LINKED, survivor, None)
            loser_id = losers[0]["id"]
            if survivor is None:
                await tx.execute("SAVEPOINT repoint")  # a failed UPDATE leaves the rest standing
                try:
                    # The stored version and hash described the merged-away record: the next sync starts afresh.
                    rows = await tx.fetch(
                        f"UPDATE links SET {column} = %s, {SIDE_STATE_RESET[side]}, revision = revision + 1, "
                        "updated_at = %s WHERE id = %s RETURNING *",
                        (to_id, self._clock(), loser_id),
                    )
                except self.UNIQUE_VIOLATION:
                    # Another process linked to_id after our look (only on Postgres: SQLite's write lock rules that
                    # out): it survives.
                    await tx.execute("ROLLBACK TO SAVEPOINT repoint")
                    survivor = read_link((await tx.fetch(select, (connection, kind, to_id)))[0])
                else:
                    repointed = read_link(rows[0])
                    return RepointResult(RepointOutcome.REPOINTED, repointed, repointed)
            rows = await tx.fetch(
                "UPDATE links SET status = %s, revision = revision + 1, updated_at = %s WHERE id = %s RETURNING *",
                (LinkStatus.DELETED, self._clock(), loser_id),
            )
            return RepointResult(RepointOutcome.LOSER_DELETED, survivor, read_link(rows[0]))

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
        filters = {"connection": connection, "kind": kind, "status": status}
        given = {column: value for column, value in filters.items() if value is not None}
        conditions = [f"{column} = %s" for column in given]
        params: list[Any] = list(given.values())
        if search:
            conditions.append("(label_key LIKE %s ESCAPE '!' OR hubspot_id = %s OR qbo_id = %s)")
            pattern = search.casefold().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params += [f"%{pattern}%", search, search]
        where = " AND ".join(conditions) or "TRUE"
        order = "updated_at DESC, id DESC" if recent else "id"
        rows = await self._read(
            f"SELECT * FROM links WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s", (*params, limit, offset)
        )
        return [read_link(row) for row in rows]

    async def set_summary(self, link_id: int, label: str, summary: dict[str, Any]) -> None:
        await self._execute(
            "UPDATE links SET label = %s, label_key = %s, summary = %s WHERE id = %s",
            (label, label.casefold(), orjson.dumps(summary).decode(), link_id),
        )

    async def count_links_by_status(self, connection: str) -> dict[tuple[Kind, LinkStatus], int]:
        rows = await self._read(
            "SELECT kind, status, COUNT(*) AS count FROM links WHERE connection = %s GROUP BY kind, status",
            (connection,),
        )
        return {(Kind(row["kind"]), LinkStatus(row["status"])): row["count"] for row in rows}

    # Activity.

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
        rows = await self._fetch(
            "INSERT INTO activity (at, connection, kind, link_id, hubspot_id, qbo_id, direction, action, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                self._clock() if at is None else at,
                connection,
                kind,
                link_id,
                hubspot_id,
                qbo_id,
                direction,
                action,
                detail[:MAX_DETAIL_CHARS],
            ),
        )
        return int(rows[0]["id"])

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
        ids = {"hubspot_id": hubspot_id, "qbo_id": qbo_id, "link_id": link_id}
        given = {column: value for column, value in ids.items() if value is not None}
        any_id = f" AND ({' OR '.join(f'{column} = %s' for column in given)})" if given else ""
        rows = await self._read(
            f"SELECT * FROM activity WHERE connection = %s AND kind = %s{any_id} ORDER BY at DESC, id DESC LIMIT %s",
            (connection, kind, *given.values(), limit),
        )
        return [read_activity(row) for row in rows]

    async def prune_activity(self, older_than: float, keep: int) -> int:
        async with self._transaction() as tx:
            aged = await tx.execute("DELETE FROM activity WHERE at < %s", (older_than,))
            # Ids grow with every line: the newest `keep` are the highest. Fewer lines than that: NULL, none go.
            return aged + await tx.execute(
                "DELETE FROM activity WHERE id <= (SELECT id FROM activity ORDER BY id DESC LIMIT 1 OFFSET %s)",
                (keep,),
            )

    # Pending work.

    async def touch_pending(self, key: PendingKey, now: float, hints: dict[str, Any] | None = None) -> bool:
        # The patch is bound twice: excluded.hints would be the patch already applied to {} (its nulls dropped).
        patch = orjson.dumps(hints or {}).decode()
        rows = await self._fetch(
            "INSERT INTO pending (connection, kind, side, part, object_id, first_seen, last_seen, generation, hints) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, 1, {self.MERGE_PATCH}('{{}}', %s)) "
            "ON CONFLICT (connection, kind, side, part, object_id) DO UPDATE SET "
            f"last_seen = {self.GREATEST}(pending.last_seen, excluded.last_seen), "
            f"generation = pending.generation + 1, hints = {self.MERGE_PATCH}(pending.hints, %s) "
            "RETURNING generation",
            (*key_values(key), now, now, patch, patch),
        )
        return bool(rows[0]["generation"] == 1)

    async def claim_pending(self, key: PendingKey, owner: str, now: float, lease_seconds: float) -> Pending | None:
        rows = await self._fetch(
            f"UPDATE pending SET owner = %s, lease_expires_at = %s WHERE {_PENDING_KEY_MATCH} "
            "AND (owner IS NULL OR owner = %s OR lease_expires_at <= %s) RETURNING *",
            (owner, now + lease_seconds, *key_values(key), owner, now),
        )
        return read_pending(rows[0]) if rows else None

    async def finish_pending(self, key: PendingKey, owner: str, generation: int) -> bool:
        async with self._transaction() as tx:
            deleted = await tx.execute(
                f"DELETE FROM pending WHERE {_PENDING_KEY_MATCH} AND owner = %s AND generation = %s",
                (*key_values(key), owner, generation),
            )
            if deleted == 1:
                return True
            await _release(tx, key, owner)
        return False

    async def release_pending(self, key: PendingKey, owner: str) -> None:
        async with self._transaction() as tx:
            await _release(tx, key, owner)

    async def due_pending(
        self,
        now: float,
        quiet_seconds: float,
        max_wait_seconds: float,
        limit: int = 100,
        *,
        still_queued: Collection[str] = (),
    ) -> list[PendingKey]:
        queued = sorted(set(still_queued))
        unqueued = f"AND NOT (owner IS NULL AND connection IN ({', '.join(['%s'] * len(queued))})) " if queued else ""
        rows = await self._read(
            "SELECT connection, kind, side, part, object_id FROM pending "
            "WHERE (last_seen <= %s OR first_seen <= %s) AND (owner IS NULL OR lease_expires_at <= %s) "
            f"{unqueued}ORDER BY first_seen, connection, kind, side, part, object_id LIMIT %s",
            (now - quiet_seconds, now - max_wait_seconds, now, *queued, limit),
        )
        return [read_pending_key(row) for row in rows]

    async def get_pending(self, key: PendingKey) -> Pending | None:
        rows = await self._read(f"SELECT * FROM pending WHERE {_PENDING_KEY_MATCH}", key_values(key))
        return read_pending(rows[0]) if rows else None

    async def set_waiting(self, link_id: int, side: Provider, awaited: Awaited | None) -> None:
        if awaited is None:
            await self._execute("DELETE FROM waits WHERE link_id = %s", (link_id,))
            return
        await self._execute(
            "INSERT INTO waits (link_id, side, connection, awaited_kind, awaited_side, awaited_id) "
            "SELECT id, %s, connection, %s, %s, %s FROM links WHERE id = %s "
            "ON CONFLICT (link_id) DO UPDATE SET side = excluded.side, awaited_kind = excluded.awaited_kind, "
            "awaited_side = excluded.awaited_side, awaited_id = excluded.awaited_id",
            (side, awaited.kind, awaited.side, awaited.object_id, link_id),
        )

    async def waiting_for(self, connection: str, awaited: Awaited) -> list[PendingKey]:
        rows = await self._read(
            "SELECT links.connection, links.kind, waits.side, links.hubspot_id, links.qbo_id FROM waits "
            "JOIN links ON links.id = waits.link_id WHERE waits.connection = %s AND waits.awaited_kind = %s "
            "AND waits.awaited_side = %s AND waits.awaited_id = %s AND links.status = %s ORDER BY links.id",
            (connection, awaited.kind, awaited.side, awaited.object_id, LinkStatus.FAILING),
        )
        keys = []
        for row in rows:
            side = Provider(row["side"])
            object_id = row[SIDE_ID_COLUMN[side]]
            if object_id is not None:
                keys.append(PendingKey(row["connection"], Kind(row["kind"]), side, object_id))
        return keys

    async def count_pending(self) -> int:
        rows = await self._read("SELECT COUNT(*) AS count FROM pending")
        return int(rows[0]["count"])

    async def defer_pending(self, key: PendingKey, until: float) -> None:
        await self._execute(
            f"UPDATE pending SET owner = %s, lease_expires_at = %s WHERE {_PENDING_KEY_MATCH}",
            (DEFERRED, until, *key_values(key)),
        )

    async def release_deferred(self, connection: str) -> int:
        return await self._execute(
            "UPDATE pending SET owner = NULL, lease_expires_at = NULL WHERE connection = %s AND owner = %s",
            (connection, DEFERRED),
        )

    # Credentials.

    async def get_credentials(self, connection: str, provider: Provider) -> Credentials | None:
        rows = await self._read(
            "SELECT * FROM credentials WHERE connection = %s AND provider = %s", (connection, provider)
        )
        return read_credentials(rows[0], self._cipher) if rows else None

    async def save_credentials(self, credentials: Credentials) -> Credentials:
        stored = dataclasses.replace(credentials, updated_at=self._clock())
        await self._execute(
            "INSERT INTO credentials (connection, provider, access_token, refresh_token, refresh_token_digest, "
            "expires_at, refresh_expires_at, extra, status, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (connection, provider) DO UPDATE SET access_token = excluded.access_token, "
            "refresh_token = excluded.refresh_token, refresh_token_digest = excluded.refresh_token_digest, "
            "expires_at = excluded.expires_at, refresh_expires_at = excluded.refresh_expires_at, "
            "extra = excluded.extra, status = excluded.status, updated_at = excluded.updated_at",
            (stored.connection, stored.provider, *credential_values(stored, self._cipher)),
        )
        return stored

    async def compare_and_swap_refresh(
        self, connection: str, provider: Provider, expected_refresh_token: str, new: Credentials
    ) -> bool:
        if (new.connection, new.provider) != (connection, provider):
            raise ValueError("new credentials belong to another connection or provider")
        values = credential_values(dataclasses.replace(new, updated_at=self._clock()), self._cipher)
        changed = await self._execute(
            "UPDATE credentials SET access_token = %s, refresh_token = %s, refresh_token_digest = %s, "
            "expires_at = %s, refresh_expires_at = %s, extra = %s, status = %s, updated_at = %s "
            "WHERE connection = %s AND provider = %s AND refresh_token_digest = %s",
            (*values, connection, provider, self._cipher.digest(expected_refresh_token)),
        )
        return changed == 1

    async def mark_revoked(self, connection: str, provider: Provider) -> None:
        await self._execute(
            # Only active credentials: a pause by the operator stays a pause (resume, not reconnect, ends it).
            "UPDATE credentials SET status = %s, updated_at = %s "
            "WHERE connection = %s AND provider = %s AND status = %s",
            (CredentialStatus.REVOKED, self._clock(), connection, provider, CredentialStatus.ACTIVE),
        )

    # Rate limits: every call of every client takes and finishes a quota, so each is one `_transact`.

    async def take_quota(self, quota: Quota, ticket: int, now: float, hold_seconds: float) -> Admission:
        return await self._transact(lambda tx: self._take_quota(tx, quota, ticket, now, hold_seconds))

    async def finish_quota(self, ticket: int, now: float) -> None:
        async def finish(tx: Statements) -> None:
            await tx.execute("UPDATE rate_uses SET until = %s + seconds WHERE ticket = %s", (now, ticket))
            await tx.execute("DELETE FROM rate_in_flight WHERE ticket = %s", (ticket,))

        await self._transact(finish)

    async def pause_quota(self, key: str, until: float) -> None:
        await self._execute(
            "INSERT INTO rate_pauses (key, until) VALUES (%s, %s) "
            f"ON CONFLICT (key) DO UPDATE SET until = {self.GREATEST}(rate_pauses.until, excluded.until)",
            (key, until),
        )

    async def _take_quota(
        self, tx: Statements, quota: Quota, ticket: int, now: float, hold_seconds: float
    ) -> Admission:
        window_keys = [window.key for window in quota.windows]
        slot_key = quota.in_flight_key or ""
        # Counting then inserting must not interleave with another take of a key.
        await self._hold_locks(tx, [f"quota:{key}" for key in quota.keys])
        # Rows that a finishing call holds are skipped, not waited for (no lock cycle with it): the counts below
        # leave out whatever has run out anyway.
        await tx.execute(
            "DELETE FROM rate_uses WHERE (key, ticket) IN (SELECT key, ticket FROM rate_uses "
            f"WHERE key IN ({_marks(window_keys)}) AND until <= %s {self.SKIP_LOCKED})",
            (*window_keys, now),
        )
        await tx.execute(
            "DELETE FROM rate_in_flight WHERE ticket IN "
            f"(SELECT ticket FROM rate_in_flight WHERE key = %s AND lease_until <= %s {self.SKIP_LOCKED})",
            (slot_key, now),
        )
        rows = await tx.fetch(
            "SELECT 'pause' AS what, key, 0 AS count, until AS at FROM rate_pauses "
            f"WHERE key IN ({_marks(quota.keys)}) AND until > %s "
            "UNION ALL SELECT 'use', key, COUNT(*), 0 FROM rate_uses "
            f"WHERE key IN ({_marks(window_keys)}) AND until > %s GROUP BY key "
            "UNION ALL SELECT 'slot', key, COUNT(*), MIN(lease_until) FROM rate_in_flight "
            "WHERE key = %s AND lease_until > %s GROUP BY key",
            (*quota.keys, now, *window_keys, now, slot_key, now),
        )
        used = {row["key"]: int(row["count"]) for row in rows if row["what"] == "use"}
        waits = [(float(row["at"]) - now, True) for row in rows if row["what"] == "pause"]
        waits += [
            (float(row["at"]) - now, False)
            for row in rows
            if row["what"] == "slot" and row["count"] >= quota.max_in_flight
        ]
        for window in quota.windows:
            if used.get(window.key, 0) >= window.limit:
                # Room comes when the oldest uses beyond the limit stop counting.
                blocking = await tx.fetch(
                    "SELECT until, seconds FROM rate_uses WHERE key = %s AND until > %s "
                    "ORDER BY until LIMIT 1 OFFSET %s",
                    (window.key, now, used[window.key] - window.limit),
                )
                until = blocking[0]["until"]
                waits.append((until - now, until <= now + blocking[0]["seconds"]))
        if waits:
            return refused(waits)
        uses = ["(%s, %s, %s, %s)" for _ in quota.windows]
        if uses:  # one statement for every window: one round trip
            await tx.execute(
                f"INSERT INTO rate_uses (key, ticket, until, seconds) VALUES {', '.join(uses)}",
                [
                    value
                    for window in quota.windows
                    for value in (window.key, ticket, now + hold_seconds + window.seconds, window.seconds)
                ],
            )
        if quota.in_flight_key is not None:
            await tx.execute(
                "INSERT INTO rate_in_flight (ticket, key, lease_until) VALUES (%s, %s, %s)",
                (ticket, slot_key, now + hold_seconds),
            )
        first = quota.windows[0] if quota.windows else None
        return Admission(True, room=first.limit - used.get(first.key, 0) - 1 if first else 0)

    # Locks.

    async def acquire_lock(self, name: str, owner: str, now: float, lease_seconds: float) -> bool:
        rows = await self._fetch(
            "INSERT INTO locks (name, owner, expires_at) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "owner = excluded.owner, expires_at = excluded.expires_at "
            "WHERE locks.owner = excluded.owner OR locks.expires_at <= %s RETURNING owner",
            (name, owner, now + lease_seconds, now),
        )
        return bool(rows)

    async def release_lock(self, name: str, owner: str) -> None:
        await self._execute("DELETE FROM locks WHERE name = %s AND owner = %s", (name, owner))

    # Cursors.

    async def get_cursor(self, connection: str, name: str) -> str | None:
        rows = await self._read("SELECT value FROM cursors WHERE connection = %s AND name = %s", (connection, name))
        return str(rows[0]["value"]) if rows else None

    async def set_cursor(self, connection: str, name: str, value: str) -> None:
        await self._execute(
            "INSERT INTO cursors (connection, name, value, updated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (connection, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (connection, name, value, self._clock()),
        )

    # Reconciliation reports.

    async def save_reconciliation(self, report: Reconciliation, *, keep: int) -> Reconciliation:
        async def save(tx: Statements) -> Reconciliation:
            rows = await tx.fetch(
                "INSERT INTO reconciliations (connection, started_at, finished_at, dry_run, objects, drifted) "
                "VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (
                    report.connection,
                    report.started_at,
                    report.finished_at,
                    report.dry_run,
                    orjson.dumps(report.objects).decode(),
                    orjson.dumps(report.drifted).decode(),
                ),
            )
            saved = read_reconciliation(rows[0])
            await tx.execute(
                "DELETE FROM reconciliations WHERE connection = %s AND id NOT IN "
                "(SELECT id FROM reconciliations WHERE connection = %s ORDER BY id DESC LIMIT %s)",
                (report.connection, report.connection, max(keep, 1)),
            )
            return saved

        return await self._transact(save)

    async def reconciliations(self, connection: str | None = None, limit: int = 1) -> list[Reconciliation]:
        where, params = ("WHERE connection = %s ", (connection,)) if connection is not None else ("", ())
        rows = await self._read(f"SELECT * FROM reconciliations {where}ORDER BY id DESC LIMIT %s", (*params, limit))
        return [read_reconciliation(row) for row in rows]

    # The console: object switches, heartbeats, synced records, the first sync's plan.

    async def object_switches(self, connection: str) -> dict[Kind, bool]:
        rows = await self._read("SELECT kind, enabled FROM object_switches WHERE connection = %s", (connection,))
        return {Kind(row["kind"]): bool(row["enabled"]) for row in rows}

    async def set_object_switch(self, connection: str, kind: Kind, enabled: bool) -> None:
        await self._execute(
            "INSERT INTO object_switches (connection, kind, enabled, changed_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (connection, kind) DO UPDATE SET enabled = excluded.enabled, changed_at = excluded.changed_at",
            (connection, str(kind), enabled, self._clock()),
        )

    async def count_pending_by_kind(self, connection: str) -> dict[Kind, int]:
        rows = await self._read(
            "SELECT kind, COUNT(*) AS count FROM pending WHERE connection = %s GROUP BY kind", (connection,)
        )
        return {Kind(row["kind"]): int(row["count"]) for row in rows}

    async def beat(self, heartbeat: Heartbeat) -> None:
        await self._execute(
            "INSERT INTO heartbeats (process, role, started_at, beat_at, detail) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (process) DO UPDATE SET role = excluded.role, beat_at = excluded.beat_at, "
            "detail = excluded.detail",
            (heartbeat.process, heartbeat.role, heartbeat.started_at, heartbeat.beat_at,
             orjson.dumps(heartbeat.detail).decode()),
        )  # fmt: skip

    async def heartbeats(self, *, since: float = 0.0) -> list[Heartbeat]:
        rows = await self._read("SELECT * FROM heartbeats WHERE beat_at >= %s ORDER BY beat_at DESC", (since,))
        return [read_heartbeat(row) for row in rows]

    async def prune_heartbeats(self, older_than: float) -> int:
        return await self._execute("DELETE FROM heartbeats WHERE beat_at < %s", (older_than,))

    async def add_synced(self, records: Sequence[SyncedRecord]) -> None:
        async def add(tx: Statements) -> None:
            for record in records:
                await tx.execute(
                    "INSERT INTO synced_records (connection, kind, at, lag_seconds) VALUES (%s, %s, %s, %s)",
                    (record.connection, str(record.kind), record.at, record.lag_seconds),
                )

        if records:
            await self._transact(add)

    async def synced(self, connection: str, *, since: float) -> list[SyncedRecord]:
        rows = await self._read(
            "SELECT connection, kind, at, lag_seconds FROM synced_records WHERE connection = %s AND at >= %s "
            "ORDER BY at",
            (connection, since),
        )
        return [
            SyncedRecord(row["connection"], Kind(row["kind"]), float(row["at"]),
                         None if row["lag_seconds"] is None else float(row["lag_seconds"]))
            for row in rows
        ]  # fmt: skip

    async def prune_synced(self, older_than: float) -> int:
        return await self._execute("DELETE FROM synced_records WHERE at < %s", (older_than,))

    async def count_rate_uses(self, keys: Sequence[str], now: float) -> dict[str, int]:
        rows = await self._read(
            f"SELECT key, COUNT(*) AS count FROM rate_uses WHERE key IN ({_marks(keys)}) AND until > %s GROUP BY key",
            (*keys, now),
        )
        return {str(row["key"]): int(row["count"]) for row in rows}

    async def count_activity_since(self, connection: str, since: float) -> int:
        rows = await self._read(
            "SELECT COUNT(*) AS count FROM activity WHERE connection = %s AND at >= %s", (connection, since)
        )
        return int(rows[0]["count"])

    async def save_first_sync(self, first_sync: FirstSync) -> FirstSync:
        rows = await self._fetch(
            "INSERT INTO first_syncs (connection, plan, planned_at, applied_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (connection) DO UPDATE SET plan = excluded.plan, planned_at = excluded.planned_at, "
            "applied_at = excluded.applied_at, updated_at = excluded.updated_at RETURNING *",
            (first_sync.connection, orjson.dumps(first_sync.plan).decode(), first_sync.planned_at,
             first_sync.applied_at, self._clock()),
        )  # fmt: skip
        return read_first_sync(rows[0])

    async def first_sync(self, connection: str) -> FirstSync | None:
        rows = await self._read("SELECT * FROM first_syncs WHERE connection = %s", (connection,))
        return read_first_sync(rows[0]) if rows else None

    # API usage.

    async def add_api_calls(self, counts: Mapping[UsageKey, int]) -> dict[UsageKey, int]:
        async def add(tx: Statements) -> dict[UsageKey, int]:
            totals = {}
            for key in sorted(counts, key=_usage_values):  # one order: two processes adding never deadlock
                rows = await tx.fetch(
                    "INSERT INTO api_usage (provider, account, kind, month, calls) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (provider, account, kind, month) DO UPDATE SET calls = api_usage.calls + "
                    "excluded.calls RETURNING calls",
                    (*_usage_values(key), counts[key]),
                )
                totals[key] = int(rows[0]["calls"])
            return totals

        return await self._transact(add)

    async def api_usage(
        self, month: str, *, provider: Provider | None = None, account: str | None = None
    ) -> list[ApiUsage]:
        where, params = ["month = %s"], [month]
        if provider is not None:
            where.append("provider = %s")
            params.append(str(provider))
        if account is not None:
            where.append("account = %s")
            params.append(account)
        rows = await self._read(
            f"SELECT * FROM api_usage WHERE {' AND '.join(where)} ORDER BY provider, account, kind", params
        )
        return [
            ApiUsage(UsageKey(Provider(row["provider"]), row["account"], CallKind(row["kind"]), row["month"]),
                     int(row["calls"]))
            for row in rows
        ]  # fmt: skip


def _usage_values(key: UsageKey) -> tuple[str, str, str, str]:
    return str(key.provider), key.account, str(key.kind), key.month


async def _release(tx: Statements, key: PendingKey, owner: str) -> None:
    await tx.execute(
        f"UPDATE pending SET owner = NULL, lease_expires_at = NULL WHERE {_PENDING_KEY_MATCH} AND owner = %s",
        (*key_values(key), owner),
    )


def _marks(values: Iterable[object]) -> str:
    """The placeholders of an `IN (...)` list of `values`; for none NULL, which matches nothing (`IN ()` is not SQL)."""
    return ", ".join("%s" for _ in values) or "NULL"

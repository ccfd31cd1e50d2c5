"""The SQLite backend: one file shared by every process on the host, in WAL mode.

Each method is one short transaction. A writing transaction starts with BEGIN IMMEDIATE, so it takes the
database's write lock up front (waiting up to busy_timeout) instead of failing on a read-to-write upgrade; every
read-modify-write is a single SQL statement or sits inside such a transaction. The asyncio lock only serializes
this process's coroutines on their one connection (SQLite allows one transaction per connection); correctness
across processes rests on SQLite's locking alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import aiosqlite
import orjson

from shared.clients import Admission, Quota, refused
from shared.envelope import Provider
from shared.store._crypto import TokenCipher
from shared.store._errors import DuplicateLink, SchemaTooNew, StaleLink
from shared.store._migrations import load_migrations
from shared.store._models import (
    Activity,
    Credentials,
    CredentialStatus,
    Direction,
    Kind,
    Link,
    LinkStatus,
    Pending,
    PendingKey,
    RepointOutcome,
    RepointResult,
)
from shared.store._rows import (
    DEFERRED,
    LINK_FIELDS,
    MAX_DETAIL_CHARS,
    SIDE_ID_COLUMN,
    SIDE_STATE_RESET,
    credential_values,
    key_values,
    link_values,
    read_activity,
    read_credentials,
    read_link,
    read_pending,
    read_pending_key,
)

BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's transaction before giving up

_INSERT_LINK = (
    f"INSERT INTO links ({', '.join(LINK_FIELDS)}, revision, updated_at) "
    f"VALUES ({', '.join('?' for _ in LINK_FIELDS)}, 1, ?) RETURNING *"
)
_UPDATE_LINK = (
    f"UPDATE links SET {', '.join(f'{name} = ?' for name in LINK_FIELDS)}, revision = revision + 1, "
    "updated_at = ? WHERE id = ? AND revision = ? RETURNING *"
)

_T = TypeVar("_T")

_PENDING_KEY_MATCH = "connection = ? AND kind = ? AND side = ? AND object_id = ?"


class SqliteStore:
    def __init__(self, db: aiosqlite.Connection, cipher: TokenCipher, clock: Callable[[], float]) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str, cipher: TokenCipher, clock: Callable[[], float]) -> SqliteStore:
        # isolation_level=None: no implicit transactions, this module issues BEGIN/COMMIT itself.
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await db.close()
            raise
        return cls(db, cipher, clock)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def migrate(self) -> list[int]:
        migrations = load_migrations("sqlite")
        async with self._write() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            applied = {row[0] for row in await db.execute_fetchall("SELECT version FROM schema_migrations")}
            unknown = applied - {migration.version for migration in migrations}
            if unknown:
                raise SchemaTooNew(f"store has schema version {max(unknown)}, newer than this code knows")
            done = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                for statement in _statements(migration.sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
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
        rows = await self._read(
            f"SELECT * FROM links WHERE connection = ? AND kind = ? AND {column} = ?", (connection, kind, value)
        )
        return read_link(rows[0]) if rows else None

    async def save_link(self, link: Link) -> Link:
        values = link_values(link)
        try:
            async with self._write() as db:
                if link.id is None:
                    rows = await db.execute_fetchall(_INSERT_LINK, (*values, self._clock()))
                else:
                    rows = await db.execute_fetchall(_UPDATE_LINK, (*values, self._clock(), link.id, link.revision))
        except sqlite3.IntegrityError as exc:
            raise DuplicateLink(
                f"another {link.kind} link of {link.connection!r} holds hubspot_id={link.hubspot_id!r} "
                f"or qbo_id={link.qbo_id!r}"
            ) from exc
        stored = list(rows)
        if not stored:
            raise StaleLink(f"link {link.id} changed or vanished since revision {link.revision}")
        return read_link(stored[0])

    async def set_status(
        self, link_id: int, status: LinkStatus, category: str | None = None, message: str | None = None
    ) -> Link:
        async with self._write() as db:
            rows = list(
                await db.execute_fetchall(
                    "UPDATE links SET status = ?, error_category = ?, error_message = ?, "
                    "revision = revision + 1, updated_at = ? WHERE id = ? RETURNING *",
                    (status, category, message, self._clock(), link_id),
                )
            )
        if not rows:
            raise StaleLink(f"link {link_id} does not exist")
        return read_link(rows[0])

    async def repoint_link(
        self, connection: str, kind: Kind, side: Provider, from_id: str, to_id: str
    ) -> RepointResult:
        if from_id == to_id:
            raise ValueError(f"cannot repoint {from_id!r} onto itself")
        column = SIDE_ID_COLUMN[side]
        select = f"SELECT * FROM links WHERE connection = ? AND kind = ? AND {column} = ?"
        async with self._write() as db:
            losers = list(await db.execute_fetchall(select, (connection, kind, from_id)))
            survivors = list(await db.execute_fetchall(select, (connection, kind, to_id)))
            survivor = read_link(survivors[0]) if survivors else None
            if not losers:
                return RepointResult(RepointOutcome.NOT_LINKED, survivor, None)
            loser_id = losers[0]["id"]
            if survivor is None:
                # The stored version and hash described the merged-away record: the next sync starts afresh.
                rows = await db.execute_fetchall(
                    f"UPDATE links SET {column} = ?, {SIDE_STATE_RESET[side]}, revision = revision + 1, "
                    "updated_at = ? WHERE id = ? RETURNING *",
                    (to_id, self._clock(), loser_id),
                )
                repointed = read_link(next(iter(rows)))
                return RepointResult(RepointOutcome.REPOINTED, repointed, repointed)
            rows = await db.execute_fetchall(
                "UPDATE links SET status = ?, revision = revision + 1, updated_at = ? WHERE id = ? RETURNING *",
                (LinkStatus.DELETED, self._clock(), loser_id),
            )
            return RepointResult(RepointOutcome.LOSER_DELETED, survivor, read_link(next(iter(rows))))

    async def list_links(
        self,
        connection: str | None = None,
        kind: Kind | None = None,
        status: LinkStatus | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Link]:
        filters = {"connection": connection, "kind": kind, "status": status}
        given = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given) or "1"
        rows = await self._read(
            f"SELECT * FROM links WHERE {where} ORDER BY id LIMIT ? OFFSET ?", (*given.values(), limit, offset)
        )
        return [read_link(row) for row in rows]

    async def count_links_by_status(self, connection: str) -> dict[tuple[Kind, LinkStatus], int]:
        rows = await self._read(
            "SELECT kind, status, COUNT(*) FROM links WHERE connection = ? GROUP BY kind, status", (connection,)
        )
        return {(Kind(row[0]), LinkStatus(row[1])): row[2] for row in rows}

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
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "INSERT INTO activity (at, connection, kind, link_id, hubspot_id, qbo_id, direction, action, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        return int(next(iter(rows))[0])

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
        any_id = f" AND ({' OR '.join(f'{column} = ?' for column in given)})" if given else ""
        rows = await self._read(
            f"SELECT * FROM activity WHERE connection = ? AND kind = ?{any_id} ORDER BY at DESC, id DESC LIMIT ?",
            (connection, kind, *given.values(), limit),
        )
        return [read_activity(row) for row in rows]

    async def prune_activity(self, older_than: float) -> int:
        async with self._write() as db:
            cursor = await db.execute("DELETE FROM activity WHERE at < ?", (older_than,))
            return cursor.rowcount

    # Pending work.

    async def touch_pending(self, key: PendingKey, now: float, hints: dict[str, Any] | None = None) -> bool:
        # The patch is bound twice: excluded.hints would be the patch already applied to {} (its nulls dropped).
        patch = orjson.dumps(hints or {}).decode()
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "INSERT INTO pending (connection, kind, side, object_id, first_seen, last_seen, generation, hints) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, json_patch('{}', ?)) "
                "ON CONFLICT (connection, kind, side, object_id) DO UPDATE SET "
                "last_seen = MAX(last_seen, excluded.last_seen), generation = generation + 1, "
                "hints = json_patch(hints, ?) "
                "RETURNING generation",
                (*key_values(key), now, now, patch, patch),
            )
        return bool(next(iter(rows))[0] == 1)

    async def claim_pending(self, key: PendingKey, owner: str, now: float, lease_seconds: float) -> Pending | None:
        async with self._write() as db:
            rows = list(
                await db.execute_fetchall(
                    f"UPDATE pending SET owner = ?, lease_expires_at = ? WHERE {_PENDING_KEY_MATCH} "
                    "AND (owner IS NULL OR owner = ? OR lease_expires_at <= ?) RETURNING *",
                    (owner, now + lease_seconds, *key_values(key), owner, now),
                )
            )
        return read_pending(rows[0]) if rows else None

    async def finish_pending(self, key: PendingKey, owner: str, generation: int) -> bool:
        async with self._write() as db:
            cursor = await db.execute(
                f"DELETE FROM pending WHERE {_PENDING_KEY_MATCH} AND owner = ? AND generation = ?",
                (*key_values(key), owner, generation),
            )
            if cursor.rowcount == 1:
                return True
            await self._release(db, key, owner)
        return False

    async def release_pending(self, key: PendingKey, owner: str) -> None:
        async with self._write() as db:
            await self._release(db, key, owner)

    async def due_pending(
        self, now: float, quiet_seconds: float, max_wait_seconds: float, limit: int = 100
    ) -> list[PendingKey]:
        rows = await self._read(
            "SELECT connection, kind, side, object_id FROM pending "
            "WHERE (last_seen <= ? OR first_seen <= ?) AND (owner IS NULL OR lease_expires_at <= ?) "
            "ORDER BY first_seen, connection, kind, side, object_id LIMIT ?",
            (now - quiet_seconds, now - max_wait_seconds, now, limit),
        )
        return [read_pending_key(row) for row in rows]

    async def get_pending(self, key: PendingKey) -> Pending | None:
        rows = await self._read(f"SELECT * FROM pending WHERE {_PENDING_KEY_MATCH}", key_values(key))
        return read_pending(rows[0]) if rows else None

    async def count_pending(self) -> int:
        rows = await self._read("SELECT COUNT(*) FROM pending", ())
        return int(rows[0][0])

    async def defer_pending(self, key: PendingKey, until: float) -> None:
        async with self._write() as db:
            await db.execute(
                f"UPDATE pending SET owner = ?, lease_expires_at = ? WHERE {_PENDING_KEY_MATCH}",
                (DEFERRED, until, *key_values(key)),
            )

    async def release_deferred(self, connection: str) -> int:
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE pending SET owner = NULL, lease_expires_at = NULL WHERE connection = ? AND owner = ?",
                (connection, DEFERRED),
            )
            return cursor.rowcount

    # Credentials.

    async def get_credentials(self, connection: str, provider: Provider) -> Credentials | None:
        rows = await self._read(
            "SELECT * FROM credentials WHERE connection = ? AND provider = ?", (connection, provider)
        )
        return read_credentials(rows[0], self._cipher) if rows else None

    async def save_credentials(self, credentials: Credentials) -> Credentials:
        stored = dataclasses.replace(credentials, updated_at=self._clock())
        values = credential_values(stored, self._cipher)
        async with self._write() as db:
            await db.execute(
                "INSERT INTO credentials (connection, provider, access_token, refresh_token, refresh_token_digest, "
                "expires_at, refresh_expires_at, extra, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (connection, provider) DO UPDATE SET access_token = excluded.access_token, "
                "refresh_token = excluded.refresh_token, refresh_token_digest = excluded.refresh_token_digest, "
                "expires_at = excluded.expires_at, refresh_expires_at = excluded.refresh_expires_at, "
                "extra = excluded.extra, status = excluded.status, updated_at = excluded.updated_at",
                (stored.connection, stored.provider, *values),
            )
        return stored

    async def compare_and_swap_refresh(
        self, connection: str, provider: Provider, expected_refresh_token: str, new: Credentials
    ) -> bool:
        if (new.connection, new.provider) != (connection, provider):
            raise ValueError("new credentials belong to another connection or provider")
        values = credential_values(dataclasses.replace(new, updated_at=self._clock()), self._cipher)
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE credentials SET access_token = ?, refresh_token = ?, refresh_token_digest = ?, "
                "expires_at = ?, refresh_expires_at = ?, extra = ?, status = ?, updated_at = ? "
                "WHERE connection = ? AND provider = ? AND refresh_token_digest = ?",
                (*values, connection, provider, self._cipher.digest(expected_refresh_token)),
            )
            return cursor.rowcount == 1

    async def mark_revoked(self, connection: str, provider: Provider) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE credentials SET status = ?, updated_at = ? WHERE connection = ? AND provider = ?",
                (CredentialStatus.REVOKED, self._clock(), connection, provider),
            )

    # Cursors.

    async def get_cursor(self, connection: str, name: str) -> str | None:
        rows = await self._read("SELECT value FROM cursors WHERE connection = ? AND name = ?", (connection, name))
        return str(rows[0][0]) if rows else None

    async def set_cursor(self, connection: str, name: str, value: str) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO cursors (connection, name, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (connection, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (connection, name, value, self._clock()),
            )

    # Rate limits: every call of every client takes and finishes a quota, so each is one hop to the connection's
    # thread (`_in_one_hop`) rather than one per statement.

    async def take_quota(self, quota: Quota, ticket: int, now: float, hold_seconds: float) -> Admission:
        return await self._in_one_hop(functools.partial(_take_quota, quota, ticket, now, hold_seconds))

    async def finish_quota(self, ticket: int, now: float) -> None:
        def finish(db: sqlite3.Connection) -> None:
            db.execute("UPDATE rate_uses SET until = ? + seconds WHERE ticket = ?", (now, ticket))
            db.execute("DELETE FROM rate_in_flight WHERE ticket = ?", (ticket,))

        await self._in_one_hop(finish)

    async def pause_quota(self, key: str, until: float) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO rate_pauses (key, until) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET until = MAX(until, excluded.until)",
                (key, until),
            )

    # Locks.

    async def acquire_lock(self, name: str, owner: str, now: float, lease_seconds: float) -> bool:
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "owner = excluded.owner, expires_at = excluded.expires_at "
                "WHERE locks.owner = excluded.owner OR locks.expires_at <= ? RETURNING owner",
                (name, owner, now + lease_seconds, now),
            )
            return bool(list(rows))

    async def release_lock(self, name: str, owner: str) -> None:
        async with self._write() as db:
            await db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    # Plumbing.

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
            except BaseException:
                # Queued behind whatever statement a cancellation interrupted (even a BEGIN still waiting for
                # the lock); sqlite3's rollback() does nothing when no transaction is open.
                await self._db.rollback()
                raise
            await self._db.execute("COMMIT")

    async def _in_one_hop(self, transaction: Callable[[sqlite3.Connection], _T]) -> _T:
        """`transaction(db)` inside BEGIN IMMEDIATE ... COMMIT, run whole on aiosqlite's connection thread (its
        `_execute`: aiosqlite has no public way to run a function there)."""

        def run(db: sqlite3.Connection) -> _T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = transaction(db)
            except BaseException:
                db.rollback()
                raise
            db.execute("COMMIT")
            return result

        async with self._lock:
            result: _T = await self._db._execute(run, self._db._conn)  # type: ignore[no-untyped-call]
            return result

    async def _read(self, sql: str, parameters: Iterable[Any]) -> list[sqlite3.Row]:
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, tuple(parameters)))

    async def _release(self, db: aiosqlite.Connection, key: PendingKey, owner: str) -> None:
        await db.execute(
            f"UPDATE pending SET owner = NULL, lease_expires_at = NULL WHERE {_PENDING_KEY_MATCH} AND owner = ?",
            (*key_values(key), owner),
        )


def _take_quota(quota: Quota, ticket: int, now: float, hold_seconds: float, db: sqlite3.Connection) -> Admission:
    window_keys = [window.key for window in quota.windows]
    windows = _marks(window_keys)
    slot_key = quota.in_flight_key or ""
    db.execute(f"DELETE FROM rate_uses WHERE key IN ({windows}) AND until <= ?", (*window_keys, now))
    db.execute("DELETE FROM rate_in_flight WHERE key = ? AND lease_until <= ?", (slot_key, now))
    rows = db.execute(
        f"SELECT 'pause', key, 0, until FROM rate_pauses WHERE key IN ({_marks(quota.keys)}) AND until > ? "
        f"UNION ALL SELECT 'use', key, COUNT(*), 0 FROM rate_uses WHERE key IN ({windows}) GROUP BY key "
        "UNION ALL SELECT 'slot', key, COUNT(*), MIN(lease_until) FROM rate_in_flight WHERE key = ? GROUP BY key",
        (*quota.keys, now, *window_keys, slot_key),
    ).fetchall()
    used = {row[1]: int(row[2]) for row in rows if row[0] == "use"}
    waits = [(float(row[3]) - now, True) for row in rows if row[0] == "pause"]
    waits += [(float(row[3]) - now, False) for row in rows if row[0] == "slot" and row[2] >= quota.max_in_flight]
    for window in quota.windows:
        if used.get(window.key, 0) >= window.limit:
            # Room comes when the oldest uses beyond the limit stop counting.
            until, seconds = db.execute(
                "SELECT until, seconds FROM rate_uses WHERE key = ? ORDER BY until LIMIT 1 OFFSET ?",
                (window.key, used[window.key] - window.limit),
            ).fetchone()
            waits.append((until - now, until <= now + seconds))
    if waits:
        return refused(waits)
    db.executemany(
        "INSERT INTO rate_uses (key, ticket, until, seconds) VALUES (?, ?, ?, ?)",
        [(window.key, ticket, now + hold_seconds + window.seconds, window.seconds) for window in quota.windows],
    )
    if quota.in_flight_key is not None:
        db.execute(
            "INSERT INTO rate_in_flight (ticket, key, lease_until) VALUES (?, ?, ?)",
            (ticket, slot_key, now + hold_seconds),
        )
    first = quota.windows[0] if quota.windows else None
    return Admission(True, room=first.limit - used.get(first.key, 0) - 1 if first else 0)


def _marks(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements, to run them inside our transaction (executescript would commit it)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    if any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines()):
        raise ValueError(f"migration ends with an incomplete statement: {statement.strip()[:80]!r}")

"""The Postgres backend: one database shared by every process on every host (psycopg 3, a connection pool each).

Each method is one short transaction, at READ COMMITTED, on a connection from the pool (committed when it goes back,
rolled back on an exception). Every read-modify-write is a single statement (a conditional `UPDATE ... RETURNING`,
`INSERT ... ON CONFLICT`), whose row lock makes a concurrent writer wait and then re-check its condition against the
committed row; or it locks first: repoint takes the loser's row `FOR UPDATE`, a quota take holds a
transaction-scoped advisory lock per key while it counts and inserts, migrate one for the whole database.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import orjson
from psycopg import AsyncConnection, AsyncCursor
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow, dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool

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

CONNECT_TIMEOUT_SECONDS = 10
# Connections per process, opened as needed: every process of every host shares the server's max_connections.
POOL_MAX_SIZE = 8

_INSERT_LINK = (
    f"INSERT INTO links ({', '.join(LINK_FIELDS)}, revision, updated_at) "
    f"VALUES ({', '.join('%s' for _ in LINK_FIELDS)}, 1, %s) RETURNING *"
)
_UPDATE_LINK = (
    f"UPDATE links SET {', '.join(f'{name} = %s' for name in LINK_FIELDS)}, revision = revision + 1, "
    "updated_at = %s WHERE id = %s AND revision = %s RETURNING *"
)
_PENDING_KEY_MATCH = "connection = %s AND kind = %s AND side = %s AND object_id = %s"

Connection = AsyncConnection[DictRow]


class PostgresStore:
    def __init__(self, pool: AsyncConnectionPool[Connection], cipher: TokenCipher, clock: Callable[[], float]) -> None:
        self._pool = pool
        self._cipher = cipher
        self._clock = clock

    @classmethod
    async def connect(cls, url: str, cipher: TokenCipher, clock: Callable[[], float]) -> PostgresStore:
        """Raises psycopg.OperationalError, with libpq's reason, when the server refuses or cannot be reached."""
        # One connection first: a wrong URL or a server that is down fails here with its reason, not as a pool
        # timeout.
        probe = await AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        await probe.close()
        pool = AsyncConnectionPool(
            url,
            connection_class=Connection,
            kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            min_size=1,
            max_size=POOL_MAX_SIZE,
            open=False,
            configure=_configure,
            check=AsyncConnectionPool.check_connection,  # a connection the server dropped is replaced, not used
            name="hsqbo-store",
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, cipher, clock)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def migrate(self) -> list[int]:
        migrations = load_migrations("postgres")
        async with self._pool.connection() as db:
            # Processes opening a new store at once queue here: one migrates, the others then find it done.
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id("migrate"),))
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            rows = await (await db.execute("SELECT version FROM schema_migrations")).fetchall()
            applied = {row["version"] for row in rows}
            unknown = applied - {migration.version for migration in migrations}
            if unknown:
                raise SchemaTooNew(f"store has schema version {max(unknown)}, newer than this code knows")
            done = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                await db.execute(migration.sql)  # without parameters, a script of several statements runs as one
                await db.execute(
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
        rows = await self._fetch(
            f"SELECT * FROM links WHERE connection = %s AND kind = %s AND {column} = %s", (connection, kind, value)
        )
        return read_link(rows[0]) if rows else None

    async def save_link(self, link: Link) -> Link:
        values = link_values(link)
        try:
            if link.id is None:
                rows = await self._fetch(_INSERT_LINK, (*values, self._clock()))
            else:
                rows = await self._fetch(_UPDATE_LINK, (*values, self._clock(), link.id, link.revision))
        except UniqueViolation as exc:
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

    async def repoint_link(
        self, connection: str, kind: Kind, side: Provider, from_id: str, to_id: str
    ) -> RepointResult:
        if from_id == to_id:
            raise ValueError(f"cannot repoint {from_id!r} onto itself")
        column = SIDE_ID_COLUMN[side]
        select = f"SELECT * FROM links WHERE connection = %s AND kind = %s AND {column} = %s"
        async with self._pool.connection() as db:
            # The loser's row locked: a concurrent repoint of it waits, then no longer finds it at from_id.
            losers = await (await db.execute(f"{select} FOR UPDATE", (connection, kind, from_id))).fetchall()
            survivors = await (await db.execute(select, (connection, kind, to_id))).fetchall()
            survivor = read_link(survivors[0]) if survivors else None
            if not losers:
                return RepointResult(RepointOutcome.NOT_LINKED, survivor, None)
            loser_id = losers[0]["id"]
            if survivor is None:
                try:
                    async with db.transaction():  # a savepoint: a failed UPDATE leaves the rest standing
                        # The stored version and hash described the merged-away record: the next sync starts afresh.
                        cursor = await db.execute(
                            f"UPDATE links SET {column} = %s, {SIDE_STATE_RESET[side]}, revision = revision + 1, "
                            "updated_at = %s WHERE id = %s RETURNING *",
                            (to_id, self._clock(), loser_id),
                        )
                        repointed = read_link(await _one(cursor))
                    return RepointResult(RepointOutcome.REPOINTED, repointed, repointed)
                except UniqueViolation:
                    # Another process linked to_id after our look (SQLite's write lock rules that out): it survives.
                    survivor = read_link(await _one(await db.execute(select, (connection, kind, to_id))))
            cursor = await db.execute(
                "UPDATE links SET status = %s, revision = revision + 1, updated_at = %s WHERE id = %s RETURNING *",
                (LinkStatus.DELETED, self._clock(), loser_id),
            )
            return RepointResult(RepointOutcome.LOSER_DELETED, survivor, read_link(await _one(cursor)))

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
        where = " AND ".join(f"{column} = %s" for column in given) or "TRUE"
        rows = await self._fetch(
            f"SELECT * FROM links WHERE {where} ORDER BY id LIMIT %s OFFSET %s", (*given.values(), limit, offset)
        )
        return [read_link(row) for row in rows]

    async def count_links_by_status(self, connection: str) -> dict[tuple[Kind, LinkStatus], int]:
        rows = await self._fetch(
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
        rows = await self._fetch(
            f"SELECT * FROM activity WHERE connection = %s AND kind = %s{any_id} ORDER BY at DESC, id DESC LIMIT %s",
            (connection, kind, *given.values(), limit),
        )
        return [read_activity(row) for row in rows]

    async def prune_activity(self, older_than: float) -> int:
        return await self._execute("DELETE FROM activity WHERE at < %s", (older_than,))

    # Pending work.

    async def touch_pending(self, key: PendingKey, now: float, hints: dict[str, Any] | None = None) -> bool:
        # The patch is bound twice: excluded.hints would be the patch already applied to {} (its nulls dropped).
        patch = orjson.dumps(hints or {}).decode()
        rows = await self._fetch(
            "INSERT INTO pending (connection, kind, side, object_id, first_seen, last_seen, generation, hints) "
            "VALUES (%s, %s, %s, %s, %s, %s, 1, hsqbo_merge_patch('{}', %s)) "
            "ON CONFLICT (connection, kind, side, object_id) DO UPDATE SET "
            "last_seen = GREATEST(pending.last_seen, excluded.last_seen), generation = pending.generation + 1, "
            "hints = hsqbo_merge_patch(pending.hints, %s) "
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
        async with self._pool.connection() as db:
            cursor = await db.execute(
                f"DELETE FROM pending WHERE {_PENDING_KEY_MATCH} AND owner = %s AND generation = %s",
                (*key_values(key), owner, generation),
            )
            if cursor.rowcount == 1:
                return True
            await _release(db, key, owner)
        return False

    async def release_pending(self, key: PendingKey, owner: str) -> None:
        async with self._pool.connection() as db:
            await _release(db, key, owner)

    async def due_pending(
        self, now: float, quiet_seconds: float, max_wait_seconds: float, limit: int = 100
    ) -> list[PendingKey]:
        rows = await self._fetch(
            "SELECT connection, kind, side, object_id FROM pending "
            "WHERE (last_seen <= %s OR first_seen <= %s) AND (owner IS NULL OR lease_expires_at <= %s) "
            "ORDER BY first_seen, connection, kind, side, object_id LIMIT %s",
            (now - quiet_seconds, now - max_wait_seconds, now, limit),
        )
        return [read_pending_key(row) for row in rows]

    async def get_pending(self, key: PendingKey) -> Pending | None:
        rows = await self._fetch(f"SELECT * FROM pending WHERE {_PENDING_KEY_MATCH}", key_values(key))
        return read_pending(rows[0]) if rows else None

    async def count_pending(self) -> int:
        rows = await self._fetch("SELECT COUNT(*) AS count FROM pending", ())
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
        rows = await self._fetch(
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
            "UPDATE credentials SET status = %s, updated_at = %s WHERE connection = %s AND provider = %s",
            (CredentialStatus.REVOKED, self._clock(), connection, provider),
        )

    # Cursors.

    async def get_cursor(self, connection: str, name: str) -> str | None:
        rows = await self._fetch("SELECT value FROM cursors WHERE connection = %s AND name = %s", (connection, name))
        return str(rows[0]["value"]) if rows else None

    async def set_cursor(self, connection: str, name: str, value: str) -> None:
        await self._execute(
            "INSERT INTO cursors (connection, name, value, updated_at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (connection, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (connection, name, value, self._clock()),
        )

    # Rate limits.

    async def take_quota(self, quota: Quota, ticket: int, now: float, hold_seconds: float) -> Admission:
        async with self._pool.connection() as db:
            return await _take_quota(db, quota, ticket, now, hold_seconds)

    async def finish_quota(self, ticket: int, now: float) -> None:
        async with self._pool.connection() as db:
            await db.execute("UPDATE rate_uses SET until = %s + seconds WHERE ticket = %s", (now, ticket))
            await db.execute("DELETE FROM rate_in_flight WHERE ticket = %s", (ticket,))

    async def pause_quota(self, key: str, until: float) -> None:
        await self._execute(
            "INSERT INTO rate_pauses (key, until) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET until = GREATEST(rate_pauses.until, excluded.until)",
            (key, until),
        )

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

    # Plumbing.

    async def _fetch(self, query: str, parameters: Sequence[Any]) -> list[DictRow]:
        """One statement in its own transaction: its rows."""
        async with self._pool.connection() as db:
            return await (await db.execute(query, parameters)).fetchall()

    async def _execute(self, query: str, parameters: Sequence[Any]) -> int:
        """One statement in its own transaction: how many rows it changed."""
        async with self._pool.connection() as db:
            return (await db.execute(query, parameters)).rowcount


async def _configure(db: Connection) -> None:
    # jsonb comes back as its text, as SQLite's JSON columns do, for the readers both backends share.
    db.adapters.register_loader("jsonb", TextLoader)


async def _release(db: Connection, key: PendingKey, owner: str) -> None:
    await db.execute(
        f"UPDATE pending SET owner = NULL, lease_expires_at = NULL WHERE {_PENDING_KEY_MATCH} AND owner = %s",
        (*key_values(key), owner),
    )


async def _take_quota(db: Connection, quota: Quota, ticket: int, now: float, hold_seconds: float) -> Admission:
    window_keys = [window.key for window in quota.windows]
    slot_key = quota.in_flight_key or ""
    # Counting then inserting must not interleave with another take of a key; the keys are locked in one order, so
    # two takes sharing keys never deadlock.
    locks = sorted({_lock_id(f"quota:{key}") for key in quota.keys})
    await db.execute("SELECT pg_advisory_xact_lock(id) FROM unnest(%s::bigint[]) AS id", (locks,))
    # Rows that a finishing call holds are skipped, not waited for (no lock cycle with it): the counts below leave out
    # whatever has run out anyway.
    await db.execute(
        "DELETE FROM rate_uses WHERE (key, ticket) IN "
        "(SELECT key, ticket FROM rate_uses WHERE key = ANY(%s) AND until <= %s FOR UPDATE SKIP LOCKED)",
        (window_keys, now),
    )
    await db.execute(
        "DELETE FROM rate_in_flight WHERE ticket IN "
        "(SELECT ticket FROM rate_in_flight WHERE key = %s AND lease_until <= %s FOR UPDATE SKIP LOCKED)",
        (slot_key, now),
    )
    cursor = await db.execute(
        "SELECT 'pause' AS what, key, 0 AS count, until AS at FROM rate_pauses WHERE key = ANY(%s) AND until > %s "
        "UNION ALL SELECT 'use', key, COUNT(*), 0 FROM rate_uses WHERE key = ANY(%s) AND until > %s GROUP BY key "
        "UNION ALL SELECT 'slot', key, COUNT(*), MIN(lease_until) FROM rate_in_flight "
        "WHERE key = %s AND lease_until > %s GROUP BY key",
        (list(quota.keys), now, window_keys, now, slot_key, now),
    )
    rows = await cursor.fetchall()
    used = {row["key"]: int(row["count"]) for row in rows if row["what"] == "use"}
    waits = [(row["at"] - now, True) for row in rows if row["what"] == "pause"]
    waits += [(row["at"] - now, False) for row in rows if row["what"] == "slot" and row["count"] >= quota.max_in_flight]
    for window in quota.windows:
        if used.get(window.key, 0) >= window.limit:
            # Room comes when the oldest uses beyond the limit stop counting.
            blocking = await _one(
                await db.execute(
                    "SELECT until, seconds FROM rate_uses WHERE key = %s AND until > %s "
                    "ORDER BY until LIMIT 1 OFFSET %s",
                    (window.key, now, used[window.key] - window.limit),
                )
            )
            waits.append((blocking["until"] - now, blocking["until"] <= now + blocking["seconds"]))
    if waits:
        return refused(waits)
    async with db.cursor() as insert:
        await insert.executemany(
            "INSERT INTO rate_uses (key, ticket, until, seconds) VALUES (%s, %s, %s, %s)",
            [(window.key, ticket, now + hold_seconds + window.seconds, window.seconds) for window in quota.windows],
        )
    if quota.in_flight_key is not None:
        await db.execute(
            "INSERT INTO rate_in_flight (ticket, key, lease_until) VALUES (%s, %s, %s)",
            (ticket, slot_key, now + hold_seconds),
        )
    first = quota.windows[0] if quota.windows else None
    return Admission(True, room=first.limit - used.get(first.key, 0) - 1 if first else 0)


async def _one(cursor: AsyncCursor[DictRow]) -> DictRow:
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def _lock_id(name: str) -> int:
    """A stable advisory lock key (signed 64 bits) for `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)

"""The Postgres backend: one database shared by every process on every host (psycopg 3, a connection pool each).
Every method and its SQL are `SqlStore`'s (`_sql.py`); this module connects and runs them.

Each transaction, at READ COMMITTED, is on a connection from the pool (committed when it goes back, rolled back on
an exception). A single-statement read-modify-write (a conditional `UPDATE ... RETURNING`, `INSERT ... ON
CONFLICT`) holds its row's lock, so a concurrent writer waits and then re-checks its condition against the committed
row; a longer one locks first: repoint takes the loser's row `FOR UPDATE`, a quota take holds a transaction-scoped
advisory lock per key while it counts and inserts, migrate one for the whole database.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow, dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool

from shared.store._crypto import TokenCipher
from shared.store._rows import Row
from shared.store._sql import SqlStore, Statements

CONNECT_TIMEOUT_SECONDS = 10
# Connections per process, opened as needed: every process of every host shares the server's max_connections.
POOL_MAX_SIZE = 8

Connection = AsyncConnection[DictRow]


class PostgresStore(SqlStore):
    DIALECT = "postgres"
    UNIQUE_VIOLATION = UniqueViolation
    GREATEST = "GREATEST"
    # Named for hsqbo (see migrations/postgres/0001_initial.sql): Postgres has no merge patch of its own.
    MERGE_PATCH = "hsqbo_merge_patch"
    FOR_UPDATE = "FOR UPDATE"
    SKIP_LOCKED = "FOR UPDATE SKIP LOCKED"

    def __init__(self, pool: AsyncConnectionPool[Connection], cipher: TokenCipher, clock: Callable[[], float]) -> None:
        super().__init__(cipher, clock)
        self._pool = pool

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

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Statements]:
        async with self._pool.connection() as db:
            yield _Transaction(db)

    async def _hold_locks(self, tx: Statements, names: Iterable[str]) -> None:
        # Transaction-scoped advisory locks, taken in one order: two transactions sharing names never deadlock.
        ids = sorted({_lock_id(name) for name in names})
        await tx.execute("SELECT pg_advisory_xact_lock(id) FROM unnest(%s::bigint[]) AS id", (ids,))

    def _script_statements(self, script: str) -> Iterable[str]:
        return (script,)  # without parameters, psycopg runs a script of several statements as one


class _Transaction:
    def __init__(self, db: Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        return await (await self._db.execute(sql, params)).fetchall()

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return (await self._db.execute(sql, params)).rowcount


async def _configure(db: Connection) -> None:
    # jsonb comes back as its text, as SQLite's JSON columns do, for the readers both backends share.
    db.adapters.register_loader("jsonb", TextLoader)


def _lock_id(name: str) -> int:
    """A stable advisory lock key (signed 64 bits) for `name`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)

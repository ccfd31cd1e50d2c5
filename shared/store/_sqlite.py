"""The SQLite backend: one file shared by every process on the host, in WAL mode. Every method and its SQL are
`SqlStore`'s (`_sql.py`); this module connects and runs them.

A writing transaction starts with BEGIN IMMEDIATE, so it takes the database's write lock up front (waiting up to
busy_timeout) instead of failing on a read-to-write upgrade; holding the whole database, it needs no row or named
locks. Reads run outside any transaction and never wait for a writer. The asyncio lock only serializes this
process's coroutines on their one connection (SQLite allows one transaction per connection); correctness across
processes rests on SQLite's locking alone. Statements reach aiosqlite's thread one hop each, except a `_transact`
body (the rate limiter's), which runs whole in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import aiosqlite

from shared.store._crypto import TokenCipher
from shared.store._rows import Row
from shared.store._sql import SqlStore, Statements

BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's transaction before giving up

_T = TypeVar("_T")


class SqliteStore(SqlStore):
    DIALECT = "sqlite"
    UNIQUE_VIOLATION = sqlite3.IntegrityError
    GREATEST = "MAX"
    MERGE_PATCH = "json_patch"
    FOR_UPDATE = SKIP_LOCKED = ""  # the transaction holds the whole database

    def __init__(self, db: aiosqlite.Connection, cipher: TokenCipher, clock: Callable[[], float]) -> None:
        super().__init__(cipher, clock)
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str, cipher: TokenCipher, clock: Callable[[], float]) -> SqliteStore:
        # isolation_level=None: no implicit transactions, this module issues BEGIN/COMMIT itself.
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await _set_wal(db)
            await db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await db.close()
            raise
        return cls(db, cipher, clock)

    async def close(self) -> None:
        await self._db.close()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Statements]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield _Hops(self._db)
            except BaseException:
                # Queued behind whatever statement a cancellation interrupted (even a BEGIN still waiting for
                # the lock); sqlite3's rollback() does nothing when no transaction is open.
                await self._db.rollback()
                raise
            await self._db.execute("COMMIT")

    async def _read(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        async with self._lock:
            return await _Hops(self._db).fetch(sql, params)

    async def _transact(self, body: Callable[[Statements], Coroutine[Any, Any, _T]]) -> _T:
        """`body` inside BEGIN IMMEDIATE ... COMMIT, run whole on aiosqlite's connection thread (its `_execute`:
        aiosqlite has no public way to run a function there)."""

        def run(db: sqlite3.Connection) -> _T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = _to_the_end(body(_InPlace(db)))
            except BaseException:
                db.rollback()
                raise
            db.execute("COMMIT")
            return result

        async with self._lock:
            result: _T = await self._db._execute(run, self._db._conn)  # type: ignore[no-untyped-call]
            return result

    async def _hold_locks(self, tx: Statements, names: Iterable[str]) -> None:
        """Nothing to take: BEGIN IMMEDIATE holds the database's write lock until the transaction ends."""

    def _script_statements(self, script: str) -> Iterable[str]:
        return _statements(script)


class _Hops:
    """Statements on the store's connection, from the event loop: each one hop to aiosqlite's thread."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        return list(await self._db.execute_fetchall(*_native(sql, params)))

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return (await self._db.execute(*_native(sql, params))).rowcount


class _InPlace:
    """Statements on aiosqlite's thread itself, inside a `_transact` body: each runs when called, never waiting."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> Sequence[Row]:
        return self._db.execute(*_native(sql, params)).fetchall()

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return self._db.execute(*_native(sql, params)).rowcount


def _to_the_end(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """The result of a coroutine that never waits (its statements are `_InPlace`), run without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as end:
        result: _T = end.value
        return result
    coroutine.close()
    raise RuntimeError("a _transact body waited on something other than its statements")


def _native(sql: str, params: Sequence[Any] | None) -> tuple[str, Sequence[Any]]:
    """A statement and its parameters as sqlite3 takes them: `?` placeholders. Without parameters, as written."""
    return (sql, ()) if params is None else (_qmarks(sql), params)


_PSYCOPG_MARK = re.compile(r"%(.?)", re.DOTALL)


@functools.lru_cache(maxsize=256)
def _qmarks(sql: str) -> str:
    """psycopg's placeholders, which `SqlStore` writes, as SQLite's: `%s` is `?`, `%%` a percent sign."""

    def native(mark: re.Match[str]) -> str:
        if mark[1] not in ("s", "%"):
            raise ValueError(f"only %s and %% may follow a percent sign in SQL: {sql!r}")
        return "?" if mark[1] == "s" else "%"

    return _PSYCOPG_MARK.sub(native, sql)


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


async def _set_wal(db: aiosqlite.Connection) -> None:
    """WAL mode (kept in the file: only a new database changes). Switching needs the database to itself, and SQLite
    answers "locked" at once rather than waiting busy_timeout when another process is migrating the same new file,
    so the switch is retried for as long as busy_timeout would have waited."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import pytest

from shared.store import SchemaTooNew, Store
from shared.store._crypto import TokenCipher
from shared.store._migrations import load_migrations
from shared.store._sqlite import SqliteStore, _statements


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [migration.version for migration in load_migrations()]

    assert versions == list(range(1, len(versions) + 1))


async def test_an_opened_store_has_every_migration_and_migrating_again_does_nothing(store: Store) -> None:
    assert await store.migrate() == []
    assert await store.migrate() == []


async def test_two_processes_migrating_a_new_file_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    first, second = [await SqliteStore.connect(path, TokenCipher(None), time.time) for _ in range(2)]
    try:
        applied = await asyncio.gather(first.migrate(), second.migrate())
    finally:
        await first.close()
        await second.close()

    every = [migration.version for migration in load_migrations()]
    assert sorted(applied) == [[], every]
    async with aiosqlite.connect(path) as db:
        assert [row[0] for row in await db.execute_fetchall("SELECT version FROM schema_migrations")] == every


async def test_a_store_migrated_by_newer_code_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "newer.db")
    store = await SqliteStore.connect(path, TokenCipher(None), time.time)
    try:
        await store.migrate()
        async with aiosqlite.connect(path) as db:
            await db.execute("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
            await db.commit()
        with pytest.raises(SchemaTooNew, match="9999"):
            await store.migrate()
    finally:
        await store.close()


def test_statements_split_on_complete_statements_only() -> None:
    script = (
        "-- a comment; not a statement end\nCREATE TABLE t (a TEXT DEFAULT ';');\n\n"
        "INSERT INTO t VALUES ('x');\n-- end\n"
    )

    assert list(_statements(script)) == [
        "-- a comment; not a statement end\nCREATE TABLE t (a TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('x');",
    ]


def test_a_migration_ending_mid_statement_is_refused() -> None:
    with pytest.raises(ValueError, match="incomplete statement"):
        list(_statements("CREATE TABLE t (a TEXT);\nCREATE TABLE u (a TEXT)\n"))

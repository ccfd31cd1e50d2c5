from __future__ import annotations

import asyncio
import time
from typing import get_args

import pytest

from shared.domain import Kind, Part, PendingKey, Provider
from shared.store import SchemaTooNew, Store
from shared.store._crypto import TokenCipher
from shared.store._migrations import Dialect, load_migrations
from shared.store._open import connect_backend
from shared.store._sqlite import _statements
from tests.store.conftest import query


@pytest.mark.parametrize("dialect", get_args(Dialect))
def test_migrations_are_numbered_from_one_without_gaps(dialect: Dialect) -> None:
    versions = [migration.version for migration in load_migrations(dialect)]

    assert versions == list(range(1, len(versions) + 1))


def test_every_dialect_has_the_same_versions_so_they_compare_across_backends() -> None:
    sqlite, postgres = ([(m.version, m.name) for m in load_migrations(dialect)] for dialect in ("sqlite", "postgres"))

    assert sqlite == postgres


async def test_an_opened_store_has_every_migration_and_migrating_again_does_nothing(store: Store) -> None:
    assert await store.migrate() == []
    assert await store.migrate() == []


async def test_two_processes_migrating_a_new_store_at_once_apply_each_migration_once(shared_url: str) -> None:
    first, second = [await connect_backend(shared_url, TokenCipher(None), time.time) for _ in range(2)]
    try:
        applied = await asyncio.gather(first.migrate(), second.migrate())
    finally:
        await first.close()
        await second.close()

    every = [migration.version for migration in load_migrations("sqlite")]
    assert sorted(applied) == [[], every]
    versions = await query(shared_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in versions] == every


async def test_a_store_migrated_by_newer_code_is_refused(shared_url: str) -> None:
    store = await connect_backend(shared_url, TokenCipher(None), time.time)
    try:
        await store.migrate()
        await query(shared_url, "INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
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


async def test_a_part_key_kept_in_its_object_id_moves_to_its_own_column(
    shared_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending work of a store before migration 7 keyed a line item's change "line_item:7": after it, the key has
    part line_item and object id 7, and only HubSpot keys of a known part were touched."""
    store = await connect_backend(shared_url, TokenCipher(None), time.time)
    try:
        with monkeypatch.context() as before:
            before.setattr("shared.store._sql.load_migrations", lambda dialect: load_migrations(dialect)[:6])
            await store.migrate()
        for side, object_id in (("hubspot", "line_item:7"), ("hubspot", "invoice:8"), ("hubspot", "9"),
                                ("quickbooks", "line_item:10")):  # fmt: skip
            values = f"'acme', 'invoice', '{side}', '{object_id}', 1, 1, 1, '{{}}'"
            await query(shared_url, "INSERT INTO pending (connection, kind, side, object_id, first_seen, last_seen, "
                        f"generation, hints) VALUES ({values})")  # fmt: skip
        assert (await store.migrate())[0] == 7  # and any later ones
        found = await store.due_pending(now=100.0, quiet_seconds=0.0, max_wait_seconds=0.0)
    finally:
        await store.close()

    assert sorted(found, key=str) == sorted([
        PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "7", Part.LINE_ITEM),
        PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "8", Part.INVOICE),
        PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "9"),
        PendingKey("acme", Kind.INVOICE, Provider.QUICKBOOKS, "line_item:10"),
    ], key=str)  # fmt: skip

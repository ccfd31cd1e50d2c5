"""What only the Postgres store meets: writers that wait on each other's row locks instead of one database-wide
lock, and a pool of connections the server may drop."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from shared.domain import Kind, Provider
from shared.store import LinkStatus, RepointOutcome, open_store
from tests.store.conftest import contact_link, query


async def _until_a_session_waits_for_a_lock(url: str) -> None:
    for _ in range(500):
        waiting = await query(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        if waiting[0][0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no session waited for a lock")


async def test_a_survivor_linked_by_another_process_during_a_repoint_makes_the_loser_deleted(postgres_url: str) -> None:
    async with open_store(postgres_url) as store:
        loser = await store.save_link(contact_link(hubspot_id="hs-1", qbo_id="qb-1"))
        async with await psycopg.AsyncConnection.connect(postgres_url) as other:
            # Not committed yet: the repoint finds no link at hs-2, then its UPDATE waits on the unique index.
            await other.execute(
                "INSERT INTO links (connection, kind, hubspot_id, qbo_id, origin, status, revision, updated_at) "
                "VALUES ('acme', 'contact', 'hs-2', 'qb-2', 'hubspot', 'synced', 1, 0)"
            )
            repoint = asyncio.create_task(store.repoint_link("acme", Kind.CONTACT, Provider.HUBSPOT, "hs-1", "hs-2"))
            await _until_a_session_waits_for_a_lock(postgres_url)
            await other.commit()
        result = await repoint

        assert result.outcome is RepointOutcome.LOSER_DELETED
        assert result.survivor is not None
        assert result.survivor.qbo_id == "qb-2"
        assert result.loser is not None
        assert (result.loser.id, result.loser.status, result.loser.hubspot_id) == (loser.id, LinkStatus.DELETED, "hs-1")
        assert await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-2") == result.survivor


async def test_a_write_cancelled_while_waiting_for_a_row_lock_never_lands_and_the_store_goes_on(
    postgres_url: str,
) -> None:
    async with open_store(postgres_url) as store:
        await store.set_cursor("acme", "x", "0")
        async with await psycopg.AsyncConnection.connect(postgres_url) as other:
            await other.execute("SELECT * FROM cursors FOR UPDATE")  # holds the row
            blocked = asyncio.create_task(store.set_cursor("acme", "x", "1"))
            await _until_a_session_waits_for_a_lock(postgres_url)
            blocked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await blocked
            await other.commit()

        assert await store.get_cursor("acme", "x") == "0"
        await store.set_cursor("acme", "x", "2")
        assert await store.get_cursor("acme", "x") == "2"


async def test_connections_the_server_dropped_are_replaced_before_use(postgres_url: str) -> None:
    async with open_store(postgres_url) as store:
        await store.set_cursor("acme", "x", "1")
        await query(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )

        assert await store.get_cursor("acme", "x") == "1"

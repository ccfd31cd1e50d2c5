from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest

from shared.config import Settings
from shared.domain import Kind, Provider
from shared.errors import ConfigError
from shared.store import Link, open_store
from tests.store.conftest import query


async def test_the_default_url_makes_var_hsqbo_db_under_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HSQBO_STORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    async with open_store(Settings().store_url) as store:
        await store.set_cursor("acme", "x", "1")

    assert (tmp_path / "var" / "hsqbo.db").is_file()


def test_the_url_comes_from_hsqbo_store_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSQBO_STORE_URL", "sqlite:////srv/hsqbo/store.db")

    assert Settings().store_url == "sqlite:////srv/hsqbo/store.db"


async def test_an_absolute_path_has_four_slashes_and_its_directories_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"

    store = await open_store(f"sqlite:///{path}")
    await store.close()

    assert path.is_file()


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:"])
async def test_memory_stores_are_private_to_their_opener(url: str) -> None:
    link = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1")
    async with open_store(url) as first, open_store(url) as second:
        await first.save_link(link)

        assert await second.get_link("acme", Kind.CONTACT, hubspot_id="1") is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/hsqbo", "HSQBO_STORE_URL is invalid"),
        ("sqlite://relative.db", "HSQBO_STORE_URL is invalid"),
        ("sqlite:///", "no file name"),
        ("/var/hsqbo.db", "HSQBO_STORE_URL is invalid"),
        ("postgresql://db/hsqbo?no_such_parameter=1", "HSQBO_STORE_URL is invalid"),
        ("postgresql://127.0.0.1:1/hsqbo", "HSQBO_STORE_URL: cannot connect to the Postgres store: .*port 1 failed"),
    ],
)
async def test_unusable_urls_name_the_variable(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresq://hsqbo:s3cret@db/hsqbo",  # an unknown scheme
        "postgresql://hsqbo:s3cret@[db/hsqbo",  # libpq quotes a URL it cannot parse
        "postgresql://hsqbo:s3cret@127.0.0.1:1/hsqbo",  # nobody listens
    ],
)
async def test_an_unusable_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError, match="HSQBO_STORE_URL") as refused:
        await open_store(url)

    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_a_postgres_url_opens_the_postgres_store(postgres_url: str, scheme: str) -> None:
    url = f"{scheme}://{postgres_url.split('://', 1)[1]}"
    async with open_store(url) as store:
        await store.set_cursor("acme", "x", "1")

    assert await query(postgres_url, "SELECT value FROM cursors") == [("1",)]


async def test_a_file_store_is_in_wal_mode_so_readers_do_not_block_the_writer(file_url: str) -> None:
    async with open_store(file_url), aiosqlite.connect(file_url.removeprefix("sqlite:///")) as db:
        assert list(await db.execute_fetchall("PRAGMA journal_mode")) == [("wal",)]


async def test_a_write_cancelled_while_waiting_for_the_lock_leaves_the_store_usable(file_url: str) -> None:
    async with (
        open_store(file_url) as store,
        aiosqlite.connect(file_url.removeprefix("sqlite:///"), isolation_level=None) as other_process,
    ):
        await other_process.execute("BEGIN IMMEDIATE")  # holds the write lock
        blocked = asyncio.create_task(store.set_cursor("acme", "x", "1"))
        for _ in range(10):  # let the write reach BEGIN IMMEDIATE, where it waits for the lock
            await asyncio.sleep(0)
        blocked.cancel()
        await other_process.execute("COMMIT")

        await store.set_cursor("acme", "x", "2")

        assert await store.get_cursor("acme", "x") == "2"

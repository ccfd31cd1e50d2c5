"""Fixtures for the store tests: a store on a temp file, in memory and in a Postgres database (each test runs on all
three), a settable clock, an encryption key, and processes racing on one store.

Postgres tests use the private server that `make test` starts and names in HSQBO_POSTGRES_URL (deploy/postgres/node),
each in a database of its own. Outside `make test` they are skipped with the reason; under `make test`
(HSQBO_REQUIRE_POSTGRES=1) an unreachable server fails them instead, as tests/conftest.py does for RabbitMQ.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiosqlite
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql
from pydantic import SecretStr

from shared.domain import Kind, Provider
from shared.store import Link, Store, open_store


class FakeClock:
    """Stamps updated_at and activity times; tests move it by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def encryption_key() -> SecretStr:
    return SecretStr(Fernet.generate_key().decode())


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """HSQBO_POSTGRES_URL: a superuser's URL on the server, to make databases with."""
    url = os.environ.get("HSQBO_POSTGRES_URL", "")
    problem = "HSQBO_POSTGRES_URL unset"
    if url:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return url
        except psycopg.OperationalError as exc:
            problem = " ".join(str(exc).split())
    message = f"Postgres server not reachable ({problem}); run `make test`"
    if os.environ.get("HSQBO_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A new database of this test's own, dropped after it."""
    name = f"hsqbo_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_server_url, autocommit=True) as server:
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(postgres_server_url)._replace(path=f"/{name}").geturl()
    with psycopg.connect(postgres_server_url, autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["file", "memory", "postgres"])
def store_url(request: pytest.FixtureRequest, file_url: str) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return file_url if request.param == "file" else "sqlite://:memory:"


@pytest.fixture(params=["file", "postgres"])
def shared_url(request: pytest.FixtureRequest, file_url: str) -> str:
    """A store that several connections and processes can open at once."""
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else file_url


@pytest.fixture
async def store(store_url: str, clock: FakeClock, encryption_key: SecretStr) -> AsyncIterator[Store]:
    async with open_store(store_url, encryption_key=encryption_key, clock=clock) as opened:
        yield opened


async def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one SQL statement on a store behind its back (committed); its rows, if any."""
    if url.startswith("sqlite:///"):
        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as db:
            rows = list(await db.execute_fetchall(statement))
            await db.commit()
            return [tuple(row) for row in rows]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        cursor = await db.execute(statement)
        return await cursor.fetchall() if cursor.description else []


def contact_link(hubspot_id: str | None = "hs-1", qbo_id: str | None = "qb-1", connection: str = "acme") -> Link:
    return Link(connection=connection, kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id=hubspot_id, qbo_id=qbo_id)


async def race_processes(target: Callable[..., None], each: list[tuple[Any, ...]]) -> list[int | None]:
    """Spawn one process per argument tuple, each given a start event as its last argument and released together
    (so they race), wait up to a minute for all; their exit codes."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=target, args=(*args, start)) for args in each]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        await asyncio.to_thread(process.join, 60)
    return [process.exitcode for process in processes]

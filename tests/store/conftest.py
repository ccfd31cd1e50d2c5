"""Fixtures for the store tests: a store on a temp file and in memory (each test runs on both), a settable clock,
an encryption key, and processes racing on one store file."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.envelope import Provider
from shared.store import Kind, Link, Store, open_store


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


@pytest.fixture(params=["file", "memory"])
def store_url(request: pytest.FixtureRequest, file_url: str) -> str:
    return file_url if request.param == "file" else "sqlite://:memory:"


@pytest.fixture
async def store(store_url: str, clock: FakeClock, encryption_key: SecretStr) -> AsyncIterator[Store]:
    async with open_store(store_url, encryption_key=encryption_key, clock=clock) as opened:
        yield opened


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

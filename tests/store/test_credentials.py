from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from shared.domain import Provider
from shared.errors import ConfigError
from shared.store import Credentials, CredentialStatus, Store, open_store
from tests.store.conftest import FakeClock, query

ACCESS = "access-token-0f3c9a7e"
REFRESH = "refresh-token-5b21d4c8"


def qbo_credentials(access: str = ACCESS, refresh: str = REFRESH) -> Credentials:
    return Credentials(
        connection="acme",
        provider=Provider.QUICKBOOKS,
        access_token=access,
        refresh_token=refresh,
        expires_at=4_600.0,
        refresh_expires_at=8_640_000.0,
        extra={"realm_id": "9130"},
    )


async def test_credentials_round_trip(store: Store, clock: FakeClock) -> None:
    saved = await store.save_credentials(qbo_credentials())

    assert saved == dataclasses.replace(qbo_credentials(), updated_at=clock.now)
    assert await store.get_credentials("acme", Provider.QUICKBOOKS) == saved
    assert await store.get_credentials("acme", Provider.HUBSPOT) is None


async def test_saving_again_replaces_the_tokens(store: Store) -> None:
    await store.save_credentials(qbo_credentials())
    await store.save_credentials(qbo_credentials(access="access-2", refresh="refresh-2"))

    stored = await store.get_credentials("acme", Provider.QUICKBOOKS)

    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == ("access-2", "refresh-2")


async def test_tokens_are_encrypted_at_rest(file_url: str, tmp_path: Path, encryption_key: SecretStr) -> None:
    async with open_store(file_url, encryption_key=encryption_key) as store:
        await store.save_credentials(qbo_credentials())
        raw = _file_bytes(tmp_path, "store.db*")

    assert b"9130" in raw  # the file was really read, WAL included
    assert ACCESS.encode() not in raw
    assert REFRESH.encode() not in raw


def _file_bytes(directory: Path, pattern: str) -> bytes:
    return b"".join(path.read_bytes() for path in directory.glob(pattern))


async def test_tokens_are_encrypted_in_the_postgres_table(postgres_url: str, encryption_key: SecretStr) -> None:
    async with open_store(postgres_url, encryption_key=encryption_key) as store:
        await store.save_credentials(qbo_credentials())

    (row,) = await query(postgres_url, "SELECT credentials::text FROM credentials")
    assert "9130" in row[0]  # the whole row, as text
    assert ACCESS not in row[0]
    assert REFRESH not in row[0]


def test_tokens_stay_out_of_repr() -> None:
    assert ACCESS not in repr(qbo_credentials())
    assert REFRESH not in repr(qbo_credentials())


async def test_storing_credentials_without_a_key_names_the_variable(store_url: str) -> None:
    async with open_store(store_url) as store:
        with pytest.raises(ConfigError, match="HSQBO_ENCRYPTION_KEY"):
            await store.save_credentials(qbo_credentials())


async def test_an_invalid_key_is_refused_at_open(store_url: str) -> None:
    with pytest.raises(ConfigError, match="HSQBO_ENCRYPTION_KEY is invalid"):
        await open_store(store_url, encryption_key=SecretStr("not-a-key"))


async def test_reading_with_another_key_names_the_variable(shared_url: str, encryption_key: SecretStr) -> None:
    async with open_store(shared_url, encryption_key=encryption_key) as store:
        await store.save_credentials(qbo_credentials())
    async with open_store(shared_url, encryption_key=SecretStr(Fernet.generate_key().decode())) as store:
        with pytest.raises(ConfigError, match="HSQBO_ENCRYPTION_KEY does not decrypt"):
            await store.get_credentials("acme", Provider.QUICKBOOKS)


async def test_compare_and_swap_replaces_only_the_expected_refresh_token(store: Store) -> None:
    await store.save_credentials(qbo_credentials())
    rotated = qbo_credentials(access="access-2", refresh="refresh-2")

    assert await store.compare_and_swap_refresh("acme", Provider.QUICKBOOKS, REFRESH, rotated) is True
    assert (
        await store.compare_and_swap_refresh("acme", Provider.QUICKBOOKS, REFRESH, qbo_credentials("x", "y")) is False
    )

    stored = await store.get_credentials("acme", Provider.QUICKBOOKS)
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == ("access-2", "refresh-2")


async def test_compare_and_swap_without_stored_credentials_fails(store: Store) -> None:
    assert await store.compare_and_swap_refresh("acme", Provider.QUICKBOOKS, REFRESH, qbo_credentials()) is False


async def test_compare_and_swap_refuses_credentials_of_another_connection(store: Store) -> None:
    with pytest.raises(ValueError, match="another connection"):
        await store.compare_and_swap_refresh("other", Provider.QUICKBOOKS, REFRESH, qbo_credentials())


async def test_of_processes_refreshing_at_once_one_wins(shared_url: str, encryption_key: SecretStr) -> None:
    async with (
        open_store(shared_url, encryption_key=encryption_key) as first,
        open_store(shared_url, encryption_key=encryption_key) as second,
    ):
        await first.save_credentials(qbo_credentials())

        results = await asyncio.gather(
            *(
                store.compare_and_swap_refresh(
                    "acme", Provider.QUICKBOOKS, REFRESH, qbo_credentials(f"access-{n}", f"refresh-{n}")
                )
                for n, store in enumerate([first, second] * 3)
            )
        )
        stored = await second.get_credentials("acme", Provider.QUICKBOOKS)

    assert results.count(True) == 1
    assert stored is not None
    assert stored.refresh_token == f"refresh-{results.index(True)}"


async def test_mark_revoked_keeps_the_row(store: Store, clock: FakeClock) -> None:
    await store.save_credentials(qbo_credentials())
    clock.now += 10

    await store.mark_revoked("acme", Provider.QUICKBOOKS)

    stored = await store.get_credentials("acme", Provider.QUICKBOOKS)
    assert stored is not None
    assert (stored.status, stored.updated_at, stored.refresh_token) == (CredentialStatus.REVOKED, clock.now, REFRESH)

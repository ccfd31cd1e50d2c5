"""How a connection is made from the OAuth answers (`services/connect/_flow.py`): each half stored with its account,
the connection added to the sync rules once both are there, tokens of another account refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.connect._flow import (
    Authorization,
    ConnectError,
    add_connection,
    check_state,
    connection_block,
    read_redirect,
    record,
    signed_state,
)
from shared.config import Settings
from shared.domain import Provider
from shared.store import CredentialStatus, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings, load_sync_settings

TODAY = dt.date(2026, 12, 7)
HUBSPOT = Authorization(Provider.HUBSPOT, "62515", "hs-access", "hs-refresh", 1.0e10, None, "EUR")
QBO = Authorization(Provider.QUICKBOOKS, "9130357992", "qbo-access", "qbo-refresh", 1.0e10, 2.0e10)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with open_store("sqlite://:memory:", encryption_key=SecretStr(Fernet.generate_key().decode())) as opened:
        yield opened


def _settings(config: Path) -> Settings:
    return Settings(config=config)


async def test_the_second_half_adds_the_connection_with_the_recommended_defaults(store: Store, tmp_path: Path) -> None:
    config = tmp_path / "hsqbo.toml"
    config.write_text('# our sync rules\n[[connection]]\nname = "old"\nhubspot_portal_id = "1"\nqbo_realm_id = "2"\n'
                      "setup_date = 2026-01-01\n")  # fmt: skip
    first = await record(_settings(config), store, load_sync_settings(config), "acme", HUBSPOT, today=TODAY)
    assert (first.waiting_for, first.added) == (Provider.QUICKBOOKS, None)
    assert load_sync_settings(config).named("acme") is None

    second = await record(_settings(config), store, load_sync_settings(config), "acme", QBO, today=TODAY)
    added = load_sync_settings(config).named("acme")
    assert second.added == added
    assert added == ConnectionSettings(name="acme", hubspot_portal_id="62515", qbo_realm_id="9130357992",
                                       setup_date=TODAY)  # fmt: skip
    # the portal's currency is read from HubSpot at run time: shown, not asserted
    assert '# hubspot_currency = "EUR"' in config.read_text()
    assert config.read_text().startswith("# our sync rules\n")  # the rest of the file is left as it was
    credentials = await store.get_credentials("acme", Provider.QUICKBOOKS)
    assert credentials is not None
    assert (credentials.extra, credentials.status) == ({"account_id": "9130357992"}, CredentialStatus.ACTIVE)


async def test_a_configured_connection_refuses_another_account_and_stores_nothing(store: Store, tmp_path: Path) -> None:
    config = tmp_path / "hsqbo.toml"
    acme = ConnectionSettings(name="acme", hubspot_portal_id="1", qbo_realm_id="2", setup_date=TODAY)
    sync = SyncSettings(connection=[acme])
    with pytest.raises(ConnectError, match="that is HubSpot portal 62515; acme syncs 1"):
        await record(_settings(config), store, sync, "acme", HUBSPOT)
    assert await store.get_credentials("acme", Provider.HUBSPOT) is None
    assert not config.exists()


async def test_a_new_connection_needs_the_sync_rules_file(store: Store) -> None:
    with pytest.raises(ConnectError, match="HSQBO_CONFIG is not set"):
        await record(Settings(), store, SyncSettings(), "acme", HUBSPOT)


def test_a_block_that_would_break_the_file_is_not_written(tmp_path: Path) -> None:
    config = tmp_path / "hsqbo.toml"
    acme = ConnectionSettings(name="acme", hubspot_portal_id="1", qbo_realm_id="2", setup_date=TODAY)
    add_connection(config, acme)
    before = config.read_text()
    with pytest.raises(Exception, match="unique"):
        add_connection(config, acme)  # a second "acme": the file would not load
    assert config.read_text() == before
    assert list(tmp_path.iterdir()) == [config]
    assert 'name = "acme"' in connection_block(acme)


def test_the_state_is_signed_for_one_connection_and_provider_for_ten_minutes() -> None:
    state = signed_state("secret", "acme", Provider.HUBSPOT, 1000.0)
    check_state("secret", state, "acme", Provider.HUBSPOT, 1500.0)
    for key, name, provider, now in (
        ("other", "acme", Provider.HUBSPOT, 1500.0),
        ("secret", "beta", Provider.HUBSPOT, 1500.0),
        ("secret", "acme", Provider.QUICKBOOKS, 1500.0),
        ("secret", "acme", Provider.HUBSPOT, 1601.0),
    ):
        with pytest.raises(ConnectError, match="start again"):
            check_state(key, state, name, provider, now)


def test_the_redirect_gives_the_code_state_and_realm() -> None:
    redirect = read_redirect("http://localhost:8081/oauth/callback/quickbooks?code=c1&state=s1&realmId=9130\n")
    assert (redirect.code, redirect.state, redirect.realm_id) == ("c1", "s1", "9130")
    with pytest.raises(ConnectError, match="did not authorize: access_denied"):
        read_redirect("http://localhost/cb?error=access_denied&state=s1")
    with pytest.raises(ConnectError, match="no authorization code"):
        read_redirect("http://localhost/cb")

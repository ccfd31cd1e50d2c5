"""The TOML sync settings: defaults are the incumbent's recommended filters; errors name the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.syncconfig import load_sync_settings

TOML = """
[[connection]]
name = "acme"
hubspot_portal_id = "62515"
qbo_realm_id = "9130"
setup_date = 2026-11-01

[connection.contacts]
conflict_winner = "quickbooks"
mappings = { phone = false }
"""


def test_defaults_follow_the_incumbents_recommended_filters(tmp_path: Path) -> None:
    path = tmp_path / "hsqbo.toml"
    path.write_text(TOML)
    [connection] = load_sync_settings(path).connection
    assert connection.contacts.direction == "two_way"
    assert connection.contacts.hubspot_to_qbo.require_hubspot_invoice
    assert connection.contacts.hubspot_to_qbo.created_after == "setup_date"
    assert connection.products.direction == "qbo_to_hubspot"
    assert connection.products.require_sku
    assert connection.invoices.direction == "qbo_to_hubspot"
    assert connection.invoices.qbo_to_hubspot.created_after == "setup_date"
    assert connection.payments.direction == "qbo_to_hubspot"
    assert connection.contacts.display_name_strategy == "disambiguate"
    assert connection.contacts.on_delete == "propagate"


def test_settings_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "hsqbo.toml"
    path.write_text(TOML)
    [connection] = load_sync_settings(path).connection
    assert connection.contacts.conflict_winner == "quickbooks"
    assert connection.contacts.mappings == {"phone": False}
    assert connection.created_after(connection.contacts.hubspot_to_qbo) == dt.date(2026, 11, 1)


def test_an_invalid_value_stops_with_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hsqbo.toml"
    path.write_text(TOML.replace('conflict_winner = "quickbooks"', 'direction = "sideways"'))
    with pytest.raises(ConfigError, match=r"connection\.0\.contacts\.direction"):
        load_sync_settings(path)


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "hsqbo.toml"
    path.write_text(TOML + 'colour = "blue"\n')
    with pytest.raises(ConfigError, match="colour"):
        load_sync_settings(path)


def test_no_file_means_no_connections() -> None:
    assert load_sync_settings(None).connection == []

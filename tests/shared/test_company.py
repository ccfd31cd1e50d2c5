"""Both accounts' settings against the connection's configuration, and their cache (`shared/company.py`)."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.company import Company, CompanyCache, CompanySettingsError, HubSpotAccount, QboCompany
from shared.syncconfig import ConnectionSettings

QBO = QboCompany("USD", False, None)
HUBSPOT = HubSpotAccount("USD", ("EUR",), "US/Eastern")


def connection(**fields: str) -> ConnectionSettings:
    return ConnectionSettings.model_validate(
        {"name": "acme", "hubspot_portal_id": "1", "qbo_realm_id": "9", "setup_date": dt.date(2026, 1, 1), **fields}
    )


def test_hubspot_currency_is_read_from_the_portal_and_a_configured_one_must_match() -> None:
    assert Company.resolve(connection(), QBO, HUBSPOT).hubspot.currencies == {"USD", "EUR"}
    assert Company.resolve(connection(hubspot_currency="usd"), QBO, HUBSPOT).hubspot.company_currency == "USD"
    with pytest.raises(CompanySettingsError, match=r"hubspot_currency = 'EUR'.*company currency is USD"):
        Company.resolve(connection(hubspot_currency="EUR"), QBO, HUBSPOT)


def test_the_qbo_zone_is_the_configured_one_else_the_reported_one_else_a_clear_error() -> None:
    reported = QboCompany("USD", False, "America/Chicago")
    assert Company.resolve(connection(qbo_timezone="America/Los_Angeles"), reported, HUBSPOT).qbo_zone.key == (
        "America/Los_Angeles"
    )
    assert Company.resolve(connection(), reported, HUBSPOT).qbo_zone.key == "America/Chicago"
    with pytest.raises(CompanySettingsError, match="set qbo_timezone"):
        _ = Company.resolve(connection(), QBO, HUBSPOT).qbo_zone
    with pytest.raises(CompanySettingsError, match="reports 'Pacific Standard Time'"):
        _ = Company.resolve(connection(), QboCompany("USD", False, "Pacific Standard Time"), HUBSPOT).qbo_zone


def test_the_portal_zone_is_the_one_hubspot_reports() -> None:
    assert Company.resolve(connection(), QBO, HUBSPOT).hubspot_zone.key == "US/Eastern"


def test_a_configured_zone_or_currency_that_is_not_one_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="IANA"):
        connection(qbo_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="ISO 4217"):
        connection(hubspot_currency="dollars")


async def test_settings_are_read_once_per_ttl_and_again_after_it() -> None:
    now = [0.0]
    reads: list[str] = []

    async def read_qbo() -> QboCompany:
        reads.append("qbo")
        return QBO

    async def read_hubspot() -> HubSpotAccount:
        reads.append("hubspot")
        return HUBSPOT

    cache = CompanyCache(clock=lambda: now[0], ttl_seconds=300)
    for _ in range(3):
        await cache.get(connection(), read_qbo, read_hubspot)
    assert reads == ["qbo", "hubspot"]
    now[0] = 301
    await cache.get(connection(), read_qbo, read_hubspot)
    assert reads == ["qbo", "hubspot"] * 2
    cache.forget()
    await cache.get(connection(), read_qbo, read_hubspot)
    assert len(reads) == 6

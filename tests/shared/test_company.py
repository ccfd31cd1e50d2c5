"""Both accounts' settings against the connection's configuration, and their cache (`shared/company.py`)."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.company import (
    Company,
    CompanyCache,
    CompanySettingsError,
    HubSpotAccount,
    QboCompany,
    clock_offset_name,
)
from shared.syncconfig import ConnectionSettings

QBO = QboCompany("USD", False, None)
HUBSPOT = HubSpotAccount("USD", ("EUR",), "US/Eastern", "1")
PACIFIC_CLOCK = dt.timedelta(hours=-7)  # a `time` stamp such as "2015-07-24T10:48:27.082-07:00"


def connection(**fields: str) -> ConnectionSettings:
    return ConnectionSettings.model_validate(
        {"name": "acme", "hubspot_portal_id": "1", "qbo_realm_id": "9", "setup_date": dt.date(2026, 1, 1), **fields}
    )


def test_hubspot_currency_is_read_from_the_portal_and_a_configured_one_must_match() -> None:
    assert Company.resolve(connection(), QBO, HUBSPOT).hubspot.currencies == {"USD", "EUR"}
    assert Company.resolve(connection(hubspot_currency="usd"), QBO, HUBSPOT).hubspot.company_currency == "USD"
    with pytest.raises(CompanySettingsError, match=r"hubspot_currency = 'EUR'.*company currency is USD"):
        Company.resolve(connection(hubspot_currency="EUR"), QBO, HUBSPOT)


def test_the_qbo_zone_is_the_configured_one_else_the_reported_one_else_the_clock_offset_else_a_clear_error() -> None:
    reported = QboCompany("USD", False, "America/Chicago", PACIFIC_CLOCK)
    assert str(Company.resolve(connection(qbo_timezone="America/Los_Angeles"), reported, HUBSPOT).qbo_zone) == (
        "America/Los_Angeles"
    )
    assert str(Company.resolve(connection(), reported, HUBSPOT).qbo_zone) == "America/Chicago"
    clock_only = Company.resolve(connection(), QboCompany("USD", False, None, PACIFIC_CLOCK), HUBSPOT).qbo_zone
    assert clock_only == dt.timezone(PACIFIC_CLOCK)
    assert str(clock_only) == "UTC-07:00 (QuickBooks' clock)"
    not_iana = QboCompany("USD", False, "Pacific Standard Time", PACIFIC_CLOCK)  # a name no zone database knows
    assert Company.resolve(connection(), not_iana, HUBSPOT).qbo_zone == dt.timezone(PACIFIC_CLOCK)
    with pytest.raises(CompanySettingsError, match="set qbo_timezone"):
        _ = Company.resolve(connection(), QBO, HUBSPOT).qbo_zone
    with pytest.raises(CompanySettingsError, match="reports 'Pacific Standard Time'"):
        _ = Company.resolve(connection(), QboCompany("USD", False, "Pacific Standard Time"), HUBSPOT).qbo_zone


def test_the_clock_offset_names_itself_to_the_minute() -> None:
    assert clock_offset_name(dt.timedelta(hours=5, minutes=30)) == "UTC+05:30"
    assert clock_offset_name(dt.timedelta(hours=-3, minutes=-30)) == "UTC-03:30"
    assert clock_offset_name(dt.timedelta(0)) == "UTC+00:00"


async def test_a_daylight_saving_change_in_the_clock_offset_is_seen_at_the_next_settings_read() -> None:
    now = [0.0]
    offsets = [dt.timedelta(hours=-8)]

    async def read_qbo() -> QboCompany:
        return QboCompany("USD", False, None, offsets[0])

    async def read_hubspot() -> HubSpotAccount:
        return HUBSPOT

    cache = CompanyCache(clock=lambda: now[0], ttl_seconds=300)
    assert (await cache.get(connection(), read_qbo, read_hubspot)).qbo_zone == dt.timezone(dt.timedelta(hours=-8))
    offsets[0] = PACIFIC_CLOCK  # daylight saving starts
    now[0] = 299
    assert (await cache.get(connection(), read_qbo, read_hubspot)).qbo_zone == dt.timezone(dt.timedelta(hours=-8))
    now[0] = 300
    assert (await cache.get(connection(), read_qbo, read_hubspot)).qbo_zone == dt.timezone(PACIFIC_CLOCK)


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

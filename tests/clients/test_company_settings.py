"""The company-settings readers over loopback HTTP against the sandbox emulators: QBO Preferences, CompanyInfo and
ExchangeRate, HubSpot account-info; and the currency refusals both emulators answer as their APIs do."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from hsqbo_sandbox.hubspot import HubSpotSandbox
from hsqbo_sandbox.hubspot._accounts import Account
from hsqbo_sandbox.qbo import QboSandbox
from hsqbo_sandbox.qbo._store import Realm
from shared.asgi import serving
from shared.clients import AiohttpTransport, HubSpotClient, QboClient, StaticToken
from shared.company import HubSpotAccount, QboCompany
from shared.errors import ValidationFailed


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    async with AiohttpTransport(timeout_seconds=10, connect_timeout_seconds=5, max_connections=10) as transport:
        yield transport


@pytest.fixture
async def qbo(transport: AiohttpTransport) -> AsyncIterator[tuple[QboClient, Realm]]:
    sandbox = QboSandbox()
    realm = sandbox.create_realm()
    token = sandbox.issue_token(realm.realm_id)["access_token"]
    async with serving(sandbox.app) as server:
        yield QboClient(server.url, realm.realm_id, StaticToken(token), transport), realm


@pytest.fixture
async def hubspot(transport: AiohttpTransport) -> AsyncIterator[tuple[HubSpotClient, Account]]:
    sandbox = HubSpotSandbox()
    portal_id = sandbox.create_portal()
    token = sandbox.private_app_token(portal_id)
    async with serving(sandbox.app) as server:
        yield HubSpotClient(server.url, StaticToken(token), transport), sandbox.accounts.get(portal_id)


def offset_in(zone: str, epoch: float) -> dt.timedelta | None:
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(zone)).utcoffset()


async def test_qbo_home_currency_multicurrency_time_zone_and_clock_offset(qbo: tuple[QboClient, Realm]) -> None:
    client, realm = qbo
    clock = offset_in("America/Los_Angeles", time.time())  # -08:00 in winter, -07:00 in summer
    assert await client.company_settings() == QboCompany("USD", False, "America/Los_Angeles", clock)
    realm.company.configure({"home_currency": "CAD", "multicurrency": True, "time_zone": "Asia/Kolkata",
                             "reports_time_zone": False})  # fmt: skip
    assert await client.company_settings() == QboCompany("CAD", True, None, dt.timedelta(hours=5, minutes=30))


async def test_qbo_exchange_rate_is_read_as_a_decimal(qbo: tuple[QboClient, Realm]) -> None:
    client, realm = qbo
    with pytest.raises(ValidationFailed, match="Multicurrency is not enabled"):
        await client.exchange_rate("EUR", dt.date(2026, 1, 5))
    realm.company.configure({"multicurrency": True, "exchange_rates": {"EUR": "1.0825"}})
    assert await client.exchange_rate("EUR", dt.date(2026, 1, 5)) == Decimal("1.0825")


async def test_qbo_refuses_a_foreign_currency_while_multicurrency_is_off(qbo: tuple[QboClient, Realm]) -> None:
    client, realm = qbo
    with pytest.raises(ValidationFailed, match="Multicurrency is not enabled"):
        await client.create("Customer", {"DisplayName": "Euro GmbH", "CurrencyRef": {"value": "EUR"}},
                            request_id=str(uuid.uuid4()))  # fmt: skip
    realm.company.configure({"multicurrency": True, "exchange_rates": {"EUR": "1.1"}})
    customer = await client.create("Customer", {"DisplayName": "Euro GmbH", "CurrencyRef": {"value": "EUR"}},
                                   request_id=str(uuid.uuid4()))  # fmt: skip
    assert customer["CurrencyRef"]["value"] == "EUR"


async def test_hubspot_account_currencies_and_time_zone(hubspot: tuple[HubSpotClient, Account]) -> None:
    client, account = hubspot
    assert await client.account_settings() == HubSpotAccount("USD", (), "US/Eastern", str(account.portal_id))
    account.configure(company_currency="EUR", additional_currencies=["USD", "GBP"],
                      time_zone="Europe/Berlin")  # fmt: skip
    assert await client.account_settings() == HubSpotAccount("EUR", ("USD", "GBP"), "Europe/Berlin",
                                                             str(account.portal_id))  # fmt: skip


async def test_hubspot_refuses_a_currency_the_account_does_not_have(hubspot: tuple[HubSpotClient, Account]) -> None:
    client, account = hubspot
    with pytest.raises(ValidationFailed, match="allowed options"):
        await client.create("invoices", {"hs_currency": "EUR"})
    account.configure(additional_currencies=["EUR"])
    created = await client.create("invoices", {"hs_currency": "EUR"})
    assert created.properties.get("hs_currency") in ("EUR", None)

"""`hsqbo config check`'s parts that need no network (`services/connect/_checks.py`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
from pydantic import SecretStr

from services.connect import _subscriptions
from services.connect._checks import (
    connection_problems,
    settings_problems,
    subscription_problems,
    without_password,
)
from services.run import local_connection, with_local_app
from shared.clients import MockTransport, Request, Response
from shared.config import Settings
from shared.credentials import MISSING_SCOPES
from shared.domain import Provider
from shared.store import Credentials, CredentialStatus, open_store
from shared.syncconfig import SyncSettings

KEY = "dev-key-123"


def test_missing_settings_are_named_one_per_line() -> None:
    problems = settings_problems(Settings(public_url="http://hsqbo.example.com"))
    assert "HSQBO_HUBSPOT_CLIENT_SECRET is not set" in problems
    assert "HSQBO_ENCRYPTION_KEY is not set" in problems
    assert any("HSQBO_PUBLIC_URL" in problem and "not https" in problem for problem in problems)


def test_urls_are_shown_without_their_password() -> None:
    assert without_password("amqp://guest:s3cret@rabbit:5672/vhost") == "amqp://rabbit:5672/vhost"
    assert "pw" not in without_password("postgresql://hsqbo:pw@db/hsqbo?sslmode=require")


def _app(results: list[dict[str, object]], status: int = 200) -> MockTransport:
    def answer(request: Request) -> Response:
        return Response(status, {"Content-Type": "application/json"}, orjson.dumps({"results": results}))

    return MockTransport(answer)


async def test_each_missing_subscription_is_named() -> None:
    settings = Settings(hubspot_app_id="515", hubspot_developer_api_key=SecretStr(KEY))
    wanted = _subscriptions.required()
    present = [
        {"id": str(n), "eventType": f"object.{s.action}", "objectTypeId": _subscriptions.object_type_id(s.object_type),
         **({"propertyName": s.property_name} if s.property_name else {}), "active": True}
        for n, s in enumerate(wanted) if str(s) != "invoice.propertyChange (hs_number)"
    ]  # fmt: skip
    transport = _app(present)
    problems = await subscription_problems(settings, SyncSettings(), transport)
    assert problems == ["missing HubSpot webhook subscription: invoice.propertyChange (hs_number)"]
    [request] = transport.requests
    assert request.url.endswith(f"/webhooks/v3/515/subscriptions?hapikey={KEY}")


async def test_a_refused_developer_key_or_unset_app_is_one_problem_without_the_key() -> None:
    settings = Settings(hubspot_app_id="515", hubspot_developer_api_key=SecretStr(KEY))
    [problem] = await subscription_problems(settings, SyncSettings(), _app([], status=401))
    assert "refused HSQBO_HUBSPOT_DEVELOPER_API_KEY" in problem
    assert KEY not in problem
    [problem] = await subscription_problems(Settings(hubspot_app_id="515"), SyncSettings(), _app([]))
    assert "HSQBO_HUBSPOT_DEVELOPER_API_KEY is required but not set" in problem


async def test_a_connection_paused_for_scopes_or_by_the_operator_is_named_with_what_to_do(tmp_path: Path) -> None:
    settings = with_local_app(Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}", api_rate_limits=False))
    connection = local_connection("acme", 101, "9130")

    def refuse(request: Request) -> Response:  # HubSpot refuses the token's search for a scope it lacks
        body = {"status": "error", "category": "MISSING_SCOPES", "message": "no scope", "errors": [
            {"message": "One or more of the following scopes are required.",
             "context": {"requiredGranularScopes": ["crm.objects.contacts.read"]}}]}  # fmt: skip
        return Response(403, {"Content-Type": "application/json"}, orjson.dumps(body))

    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        hubspot = Credentials(connection="acme", provider=Provider.HUBSPOT, access_token="pat-na1-x", refresh_token="")
        await store.save_credentials(hubspot)
        await store.save_credentials(Credentials(connection="acme", provider=Provider.QUICKBOOKS, access_token="a",
                                                 refresh_token="r", status=CredentialStatus.PAUSED))  # fmt: skip
        problems = await connection_problems(settings, store, connection, MockTransport(refuse))
        assert problems == [
            "acme: HubSpot token lacks scopes (account 101): reconnect to grant crm.objects.contacts.read "
            "(hsqbo connect hubspot --name acme)",
            "acme: QuickBooks credentials paused",
        ]
        await store.save_credentials(dataclasses.replace(
            hubspot, status=CredentialStatus.REVOKED, extra={MISSING_SCOPES: ["crm.objects.deals.read"]}
        ))  # fmt: skip
        problems = await connection_problems(settings, store, connection, MockTransport(refuse))
        assert problems[0] == (
            "acme: HubSpot paused: reconnect to grant crm.objects.deals.read (hsqbo connect hubspot --name acme)"
        )


async def test_the_accounts_company_settings_are_checked_as_the_worker_uses_them(tmp_path: Path) -> None:
    settings = with_local_app(Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}", api_rate_limits=False))
    connection = local_connection("acme", 101, "9130", hubspot_currency="EUR")

    clock = ["2026-07-24T10:48:27.082-07:00"]  # QBO's `time`: the company's local offset

    def answer(request: Request) -> Response:  # a USD portal; a QBO company that reports no time zone
        path = request.url.split("?")[0]
        body: dict[str, object] = {"results": [], "total": 0}
        if path.endswith("/account-info/v3/details"):
            body = {"portalId": 101, "companyCurrency": "USD", "additionalCurrencies": [], "timeZone": "US/Eastern"}
        elif path.endswith("/query"):
            body = {"QueryResponse": {"totalCount": 0}}
        elif path.endswith("/preferences"):
            body = {"Preferences": {"CurrencyPrefs": {"HomeCurrency": {"value": "USD"}}}, "time": clock[0]}
        elif "/companyinfo/" in path:
            body = {"CompanyInfo": {"CompanyName": "Acme"}}
        return Response(200, {"Content-Type": "application/json"}, orjson.dumps(body))

    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        for provider in Provider:
            await store.save_credentials(Credentials(connection="acme", provider=provider, access_token="a",
                                                     refresh_token="r", expires_at=4e9))  # fmt: skip
        [problem] = await connection_problems(settings, store, connection, MockTransport(answer))
        assert "hubspot_currency = 'EUR', but the HubSpot portal's company currency is USD" in problem
        fixed = connection.model_copy(update={"hubspot_currency": None})
        notes: list[str] = []
        assert await connection_problems(settings, store, fixed, MockTransport(answer), notes) == []
        assert notes == ["acme: dates use QuickBooks' clock offset UTC-07:00 (QuickBooks reports no time zone); set "
                         "qbo_timezone to follow daylight saving exactly"]  # fmt: skip
        zoned = connection.model_copy(update={"hubspot_currency": None, "qbo_timezone": "America/Chicago"})
        notes.clear()
        assert await connection_problems(settings, store, zoned, MockTransport(answer), notes) == []
        assert notes == []
        clock[0] = "not a time"  # no zone, no clock: nothing to date transactions by
        [problem] = await connection_problems(settings, store, fixed, MockTransport(answer))
        assert problem.startswith("acme: the QuickBooks company's time zone is unknown: set qbo_timezone")

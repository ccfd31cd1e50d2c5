"""The account information API (`GET /account-info/v3/details`): each portal's company currency, additional
currencies and time zone, set through the control surface; records hold only the account's currencies."""

from __future__ import annotations

from hsqbo_sandbox.hubspot._scopes import EVERY_SCOPE
from tests.sandbox.hubspot.conftest import Hub


async def test_account_details_show_the_portals_currencies_and_time_zone(hub: Hub) -> None:
    status, details = await hub.call("GET", "/account-info/v3/details")
    assert status == 200
    assert (details["portalId"], details["companyCurrency"], details["additionalCurrencies"]) == (
        hub.portal_id, "USD", [])  # fmt: skip
    assert details["timeZone"] == "US/Eastern"
    assert details["utcOffset"] in ("-05:00", "-04:00")
    assert details["utcOffsetMilliseconds"] in (-18_000_000, -14_400_000)

    await hub.control("PATCH", f"accounts/{hub.portal_id}", json={
        "company_currency": "EUR", "additional_currencies": ["USD"], "time_zone": "Asia/Kolkata"})  # fmt: skip
    status, details = await hub.call("GET", "/account-info/2026-03/details")
    assert (details["companyCurrency"], details["additionalCurrencies"], details["timeZone"]) == (
        "EUR", ["USD"], "Asia/Kolkata")  # fmt: skip
    assert (details["utcOffset"], details["utcOffsetMilliseconds"]) == ("+05:30", 19_800_000)


async def test_account_details_need_a_token(hub: Hub) -> None:
    status, _ = await hub.call("GET", "/account-info/v3/details", token="not-a-token")
    assert status == 401


async def test_account_details_need_the_oauth_scope(hub: Hub) -> None:
    token = hub.sandbox.private_app_token(hub.portal_id, scopes=[s for s in EVERY_SCOPE if s != "oauth"])
    status, body = await hub.call("GET", "/account-info/v3/details", token=token)
    assert (status, body["category"]) == (403, "MISSING_SCOPES")
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["oauth"]


async def test_a_currency_the_account_does_not_have_is_refused(hub: Hub) -> None:
    status, body = await hub.call("POST", "/crm/v3/objects/invoices", json={"properties": {"hs_currency": "EUR"}})
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    assert "INVALID_OPTION" in body["message"]
    payment = {"hs_initial_amount": "10", "hs_initiated_date": "2026-01-05T12:00:00Z", "hs_currency_code": "GBP"}
    status, body = await hub.call("POST", "/crm/v3/objects/commerce_payments", json={"properties": payment})
    assert status == 400
    await hub.control("PATCH", f"accounts/{hub.portal_id}", json={"additional_currencies": ["EUR"]})
    created = await hub.create("invoices", {"hs_currency": "EUR"})
    assert created["properties"]["hs_currency"] == "EUR"

"""A realm's company settings: the Preferences, CompanyInfo and ExchangeRate reads (Intuit's XSD field names and
types), the control surface that sets them, and the currency rules QBO enforces with them."""

from __future__ import annotations

import datetime as dt

from tests.sandbox.qbo.conftest import REALM_ID, QboHttp, sales_line


async def test_preferences_and_company_info_show_the_settings_set_through_the_control_surface(qbo: QboHttp) -> None:
    preferences = (await qbo.ok("GET", "preferences"))["Preferences"]
    assert preferences["CurrencyPrefs"] == {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}}
    info = (await qbo.ok("GET", f"companyinfo/{REALM_ID}"))["CompanyInfo"]
    assert info["DefaultTimeZone"] == "America/Los_Angeles"

    settings = await qbo.control("PUT", "company", {"realm_id": REALM_ID, "home_currency": "GBP",
                                                     "multicurrency": True, "reports_time_zone": False})  # fmt: skip
    assert settings == {"home_currency": "GBP", "multicurrency": True, "time_zone": "America/Los_Angeles",
                        "reports_time_zone": False, "exchange_rates": {}}  # fmt: skip
    preferences = (await qbo.ok("GET", "preferences"))["Preferences"]
    assert preferences["CurrencyPrefs"] == {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": "GBP"}}
    assert "DefaultTimeZone" not in (await qbo.ok("GET", f"companyinfo/{REALM_ID}"))["CompanyInfo"]
    status, _ = await qbo.get("companyinfo/999")
    assert status in (400, 404)  # another company's info is not this realm's to read


async def test_every_answers_time_is_the_clock_in_the_realms_zone(qbo: QboHttp) -> None:
    # QBO stamps `time` in the company's local offset, e.g. "2015-07-24T10:48:27.082-07:00"
    await qbo.control("PUT", "company", {"realm_id": REALM_ID, "time_zone": "Asia/Kolkata", "reports_time_zone": False})
    answers = [await qbo.get("preferences"), await qbo.get(f"companyinfo/{REALM_ID}"),
               await qbo.get("query", query="SELECT * FROM Customer"), await qbo.get("customer/404")]  # fmt: skip
    assert [status for status, _ in answers] == [200, 200, 200, 400]
    for _, answer in answers:
        assert dt.datetime.fromisoformat(answer["time"]).utcoffset() == dt.timedelta(hours=5, minutes=30)


async def test_the_realms_zone_must_be_a_zone(qbo: QboHttp) -> None:
    for zone in (None, "Mars/Olympus"):
        async with qbo.http.put(
            f"{qbo.base_url}/_sandbox/company", json={"realm_id": REALM_ID, "time_zone": zone}
        ) as r:
            assert r.status == 400


async def test_multicurrency_cannot_be_turned_off_once_on(qbo: QboHttp) -> None:
    await qbo.control("PUT", "company", {"realm_id": REALM_ID, "multicurrency": True})
    async with qbo.http.put(
        f"{qbo.base_url}/_sandbox/company", json={"realm_id": REALM_ID, "multicurrency": False}
    ) as r:
        assert r.status == 400


async def test_exchange_rates_are_read_per_currency_and_day(qbo: QboHttp) -> None:
    status, body = await qbo.get("exchangerate", sourcecurrencycode="EUR", asofdate="2026-01-05")
    assert (status, body["Fault"]["Error"][0]["code"]) == (400, "6000")  # multicurrency off
    await qbo.control(
        "PUT", "company", {"realm_id": REALM_ID, "multicurrency": True, "exchange_rates": {"EUR": "1.0825"}}
    )
    rate = (await qbo.ok("GET", "exchangerate", sourcecurrencycode="EUR", asofdate="2026-01-05"))["ExchangeRate"]
    assert (rate["SourceCurrencyCode"], rate["TargetCurrencyCode"], rate["Rate"], rate["AsOfDate"]) == (
        "EUR", "USD", 1.0825, "2026-01-05")  # fmt: skip


async def test_a_foreign_currency_is_refused_while_multicurrency_is_off(qbo: QboHttp) -> None:
    customer = await qbo.customer("Home Co")
    item = await qbo.item("Design")
    status, body = await qbo.post("invoice", {"CustomerRef": {"value": customer["Id"]}, "CurrencyRef": {"value": "EUR"},
                                              "Line": [sales_line(item["Id"], 1, 10)]})  # fmt: skip
    assert status == 400
    assert "Multicurrency is not enabled" in body["Fault"]["Error"][0]["Detail"]
    status, _ = await qbo.post("customer", {"DisplayName": "Euro GmbH", "CurrencyRef": {"value": "EUR"}})
    assert status == 400


async def test_with_multicurrency_a_transaction_names_its_currency_which_is_its_customers(qbo: QboHttp) -> None:
    await qbo.control("PUT", "company", {"realm_id": REALM_ID, "multicurrency": True, "exchange_rates": {"EUR": "1.1"}})
    euro = await qbo.customer("Euro GmbH", CurrencyRef={"value": "EUR"})
    item = await qbo.item("Design")
    line = sales_line(item["Id"], 1, 10)
    status, _ = await qbo.post("invoice", {"CustomerRef": {"value": euro["Id"]}, "Line": [line]})
    assert status == 400  # CurrencyRef is required when multicurrency is on
    status, _ = await qbo.post("invoice", {"CustomerRef": {"value": euro["Id"]}, "CurrencyRef": {"value": "USD"},
                                           "Line": [line]})  # fmt: skip
    assert status == 400  # not the customer's currency
    invoice = await qbo.invoice(euro["Id"], (item["Id"], 1, 10, "NON"), CurrencyRef={"value": "EUR"})
    assert (invoice["CurrencyRef"]["value"], invoice["ExchangeRate"]) == ("EUR", 1.1)  # the realm's rate by default
    given = await qbo.invoice(euro["Id"], (item["Id"], 1, 10, "NON"), CurrencyRef={"value": "EUR"}, ExchangeRate=1.2)
    assert given["ExchangeRate"] == 1.2

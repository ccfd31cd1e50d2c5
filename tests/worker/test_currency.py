"""Which currencies each side can hold, and what a QBO transaction carries (`rules/_currency.py`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.worker.rules import Excluded
from services.worker.rules import _currency as currency
from shared.company import Company, HubSpotAccount, QboCompany


def company(
    *, home: str = "USD", multicurrency: bool = False, portal: str = "USD", extra: tuple[str, ...] = ()
) -> Company:
    return Company(QboCompany(home, multicurrency, "America/Los_Angeles"),
                   HubSpotAccount(portal, extra, "US/Eastern", "1"), "America/Los_Angeles")  # fmt: skip


def test_qbo_holds_its_home_currency_and_others_only_with_multicurrency() -> None:
    currency.check_qbo_holds("USD", company(), "invoice")
    currency.check_qbo_holds("EUR", company(multicurrency=True), "invoice")
    with pytest.raises(Excluded, match="works in USD only") as caught:
        currency.check_qbo_holds("EUR", company(), "invoice")
    assert caught.value.category == "other_currency"


def test_hubspot_holds_its_company_and_additional_currencies() -> None:
    currency.check_hubspot_holds("EUR", company(extra=("EUR",)), "invoice")
    with pytest.raises(Excluded, match="has only USD") as caught:
        currency.check_hubspot_holds("EUR", company(), "invoice")
    assert caught.value.category == "other_currency"


def test_a_qbo_customer_keeps_one_currency() -> None:
    eur_customer = {"Id": "7", "DisplayName": "Euro GmbH", "CurrencyRef": {"value": "EUR"}}
    currency.check_customer_currency("EUR", eur_customer, company(multicurrency=True), "invoice")
    with pytest.raises(Excluded, match="is in EUR"):
        currency.check_customer_currency("USD", eur_customer, company(multicurrency=True), "invoice")
    currency.check_customer_currency("USD", {"Id": "8"}, company(), "invoice")  # no CurrencyRef: the home currency


def test_a_foreign_transaction_carries_its_currency_and_qbos_rate() -> None:
    mc = company(multicurrency=True)
    assert currency.qbo_currency_fields("USD", mc, None) == {"CurrencyRef": {"value": "USD"}}
    fields = currency.qbo_currency_fields("EUR", mc, Decimal("1.0825"))
    assert fields == {"CurrencyRef": {"value": "EUR"}, "ExchangeRate": Decimal("1.0825")}
    with pytest.raises(ValueError, match="exchange rate"):
        currency.qbo_currency_fields("EUR", mc, None)


def test_each_sides_currency_defaults_to_its_own_account() -> None:
    assert currency.qbo_currency({"CurrencyRef": {"value": "eur"}}, company()) == "EUR"
    assert currency.qbo_currency({}, company(home="CAD")) == "CAD"
    assert currency.hubspot_currency(None, company(portal="GBP")) == "GBP"
    assert currency.hubspot_currency("eur", company()) == "EUR"


def test_prices_sync_only_when_hubspots_company_currency_is_qbos_home_currency() -> None:
    assert currency.prices_sync(company())
    assert not currency.prices_sync(company(portal="EUR"))

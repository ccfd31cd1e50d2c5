"""Currencies between the two sides: what each account can hold, read through the APIs (`shared/company.py`).

- QBO holds a transaction in its home currency always, and in another currency only when multicurrency is on (and
  then only for a customer in that currency: QBO gives each customer one currency for good). A transaction in a
  foreign currency carries `CurrencyRef` and the `ExchangeRate` (home-currency units per unit of it; QBO's own rate
  for the transaction date, read from QBO), since QBO's documented default rate is 1.
- HubSpot holds a record in its company currency or one of its additional currencies (`hs_currency` on invoices,
  `hs_currency_code` on payments).
- A record the other side cannot hold in its currency is excluded, category `other_currency`, saying why.
- Item prices sync in the QBO home currency only: QBO's `UnitPrice` is in the home currency, HubSpot's `price` in
  the portal's company currency; when the two differ, prices are not synced at all (neither is written from the
  other). HubSpot's per-currency prices (`hs_price_<currency>`, e.g. `hs_price_eur`, on multicurrency portals) are
  not used: QBO has one price per item.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.worker import _fields
from services.worker.rules import Excluded
from shared.company import Company

OTHER_CURRENCY = "other_currency"


def qbo_currency(entity: Mapping[str, Any], company: Company) -> str:
    """A QBO transaction's (or customer's) currency: `CurrencyRef`, else the home currency."""
    return str(_fields.get_path(entity, "CurrencyRef.value") or company.home_currency).upper()


def hubspot_currency(value: Any, company: Company) -> str:
    """A HubSpot record's currency property, else the portal's company currency."""
    return (_fields.text(value) or company.hubspot.company_currency).upper()


def check_hubspot_holds(currency: str, company: Company, what: str) -> None:
    """Excluded unless the HubSpot portal has `currency`."""
    if currency not in company.hubspot.currencies:
        held = ", ".join(sorted(company.hubspot.currencies))
        raise Excluded(f"{what} in {currency}: the HubSpot portal has only {held}", category=OTHER_CURRENCY)


def check_qbo_holds(currency: str, company: Company, what: str) -> None:
    """Excluded unless the QBO company can hold a transaction in `currency`."""
    if currency != company.home_currency and not company.qbo.multicurrency:
        raise Excluded(
            f"{what} in {currency}: the QuickBooks company works in {company.home_currency} only (multicurrency is "
            "off)",
            category=OTHER_CURRENCY,
        )


def check_customer_currency(currency: str, customer: Mapping[str, Any], company: Company, what: str) -> None:
    """Excluded unless the QBO customer is in `currency` (QBO refuses a transaction in another one)."""
    customer_currency = qbo_currency(customer, company)
    if customer_currency != currency:
        raise Excluded(
            f"{what} in {currency}: its QuickBooks customer {customer.get('DisplayName', customer.get('Id'))!r} is "
            f"in {customer_currency} (QuickBooks keeps one currency per customer)",
            category=OTHER_CURRENCY,
        )


def qbo_currency_fields(currency: str, company: Company, exchange_rate: Decimal | None) -> dict[str, Any]:
    """`CurrencyRef` (always: QBO requires it in a multicurrency company, and it names the currency in any) and, for a
    foreign currency, `ExchangeRate`."""
    fields: dict[str, Any] = {"CurrencyRef": {"value": currency}}
    if currency != company.home_currency:
        if exchange_rate is None:
            raise ValueError(f"a transaction in {currency} needs an exchange rate")
        fields["ExchangeRate"] = exchange_rate
    return fields


def prices_sync(company: Company) -> bool:
    """Item prices sync only when HubSpot's `price` (the company currency) is in QBO's home currency."""
    return company.hubspot.company_currency == company.home_currency

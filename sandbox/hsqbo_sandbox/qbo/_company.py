"""A realm's company settings: home currency, multicurrency, exchange rates and time zone, and the reads that show
them (`GET preferences`, `GET companyinfo/{realmId}`, `GET exchangerate?sourcecurrencycode=&asofdate=`).

From Intuit's reference and its "Manage multiple currencies" guide:
- Every company has a home currency; multicurrency is off by default, switched on in the UI only (never through the
  API) and never off again. Without it every transaction and customer is in the home currency.
- With it, a customer has one currency for good and its transactions are in that currency; `CurrencyRef` names a
  transaction's currency, `ExchangeRate` is home-currency units per unit of it (documented default: 1).
- `Preferences.CurrencyPrefs` holds `HomeCurrency` and `MultiCurrencyEnabled`; `ExchangeRate` is read per currency
  and date (`Rate`, `SourceCurrencyCode`, `TargetCurrencyCode`, `AsOfDate`).

Stricter readings (where the docs are silent or unclear):
- A transaction or customer in a foreign currency while multicurrency is off is refused (6000, business
  validation) instead of being stored in the home currency.
- With multicurrency on, `CurrencyRef` is required on Invoice and Payment (the reference: "required when
  multicurrency is on"); a transaction in another currency than its customer's is refused.
- `CompanyInfo.DefaultTimeZone` (an IANA name) is served: it is in Intuit's XSD though not in the web reference; a
  realm set up with `reports_time_zone: false` leaves it out, as a company that reports none (what a real company
  most likely does). Either way every answer's `time` carries the offset of the realm's `time_zone` at that moment.
- A currency with no rate set through the control surface has rate 1 (the documented default).
"""

from __future__ import annotations

import dataclasses
import datetime
import zoneinfo
from decimal import Decimal
from typing import Any

from hsqbo_sandbox.qbo import _errors as errors
from hsqbo_sandbox.qbo._timestamps import company_time

CURRENCY_NAMES = {"USD": "United States Dollar", "EUR": "Euro", "GBP": "British Pound Sterling",
                  "CAD": "Canadian Dollar", "AUD": "Australian Dollar", "JPY": "Japanese Yen"}  # fmt: skip


@dataclasses.dataclass(slots=True)
class CompanySettings:
    home_currency: str = "USD"
    multicurrency: bool = False
    time_zone: str = "America/Los_Angeles"  # the company's zone: its clock (`time`) and DefaultTimeZone
    reports_time_zone: bool = True  # CompanyInfo carries DefaultTimeZone
    exchange_rates: dict[str, str] = dataclasses.field(default_factory=dict)  # currency -> home units per unit

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def configure(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown company settings: {', '.join(sorted(unknown))}")
        if "home_currency" in changes:
            self.home_currency = _code(changes["home_currency"])
        if "multicurrency" in changes:
            if self.multicurrency and not changes["multicurrency"]:
                raise ValueError("multicurrency cannot be turned off once on")
            self.multicurrency = bool(changes["multicurrency"])
        if "time_zone" in changes:
            try:
                zoneinfo.ZoneInfo(str(changes["time_zone"]))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{changes['time_zone']!r} is not a time zone") from None
            self.time_zone = str(changes["time_zone"])
        if "reports_time_zone" in changes:
            self.reports_time_zone = bool(changes["reports_time_zone"])
        if "exchange_rates" in changes:
            self.exchange_rates.update({_code(code): str(rate) for code, rate in changes["exchange_rates"].items()})

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def currency_ref(self, code: str | None = None) -> dict[str, str]:
        code = code or self.home_currency
        return {"value": code, "name": CURRENCY_NAMES.get(code, code)}

    def rate(self, code: str) -> str:
        return "1" if code == self.home_currency else self.exchange_rates.get(code, "1")


def _code(value: Any) -> str:
    code = str(value).upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


def preferences(settings: CompanySettings, created: float) -> dict[str, Any]:
    return {
        "Id": "1",
        "SyncToken": "0",
        "domain": "QBO",
        "sparse": False,
        "CurrencyPrefs": {
            "MultiCurrencyEnabled": settings.multicurrency,
            "HomeCurrency": {"value": settings.home_currency},
        },
        "SalesFormsPrefs": {"CustomTxnNumbers": True, "AllowShipping": False},
        "MetaData": {
            "CreateTime": company_time(created, settings.zone),
            "LastUpdatedTime": company_time(created, settings.zone),
        },
    }


def company_info(settings: CompanySettings, realm_id: str, company_name: str, created: float) -> dict[str, Any]:
    info: dict[str, Any] = {
        "Id": "1",
        "SyncToken": "0",
        "domain": "QBO",
        "sparse": False,
        "CompanyName": company_name,
        "LegalName": company_name,
        "Country": "US" if settings.home_currency == "USD" else "",
        "SupportedLanguages": "en",
        "MetaData": {
            "CreateTime": company_time(created, settings.zone),
            "LastUpdatedTime": company_time(created, settings.zone),
        },
    }
    if settings.reports_time_zone:
        info["DefaultTimeZone"] = settings.time_zone
    return info


def exchange_rate(settings: CompanySettings, code: str | None, as_of: str | None, today: str) -> dict[str, Any]:
    if not code:
        raise errors.required("sourcecurrencycode")
    if not settings.multicurrency:
        raise errors.business_rule("Multicurrency is not enabled for this company.")
    day = as_of or today
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        raise errors.invalid("asofdate", "must be a date YYYY-MM-DD") from None
    return {
        "SourceCurrencyCode": code.upper(),
        "TargetCurrencyCode": settings.home_currency,
        "Rate": Decimal(settings.rate(code.upper())),
        "AsOfDate": day,
        "domain": "QBO",
        "sparse": False,
        "SyncToken": "0",
    }


def transaction_currency(
    settings: CompanySettings, entity: str, data: dict[str, Any], customer: dict[str, Any] | None
) -> dict[str, Any]:
    """`CurrencyRef` and `ExchangeRate` of a transaction being written, or the Fault QBO answers."""
    given = data.get("CurrencyRef")
    if given is None and settings.multicurrency:
        raise errors.required("CurrencyRef")
    code = _ref_code(given) or settings.home_currency
    check_currency(settings, code)
    customer_code = ((customer or {}).get("CurrencyRef") or {}).get("value") or settings.home_currency
    if code != customer_code:
        raise errors.business_rule(
            f"The currency of the {entity.lower()} ({code}) must be the customer's currency ({customer_code})."
        )
    fields: dict[str, Any] = {"CurrencyRef": settings.currency_ref(code)}
    if code != settings.home_currency:
        fields["ExchangeRate"] = data.get("ExchangeRate", Decimal(settings.rate(code)))
    return fields


def check_currency(settings: CompanySettings, code: str) -> None:
    if code != settings.home_currency and not settings.multicurrency:
        raise errors.business_rule(
            f"Multicurrency is not enabled: this company works in {settings.home_currency} only, not {code}."
        )


def _ref_code(ref: Any) -> str | None:
    if ref is None:
        return None
    if not isinstance(ref, dict) or not ref.get("value"):
        raise errors.invalid("CurrencyRef", "must be an object with a value")
    return str(ref["value"]).upper()

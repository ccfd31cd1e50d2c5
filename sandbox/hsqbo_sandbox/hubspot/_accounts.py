"""The portals (HubSpot accounts) a sandbox serves, each with its store, rate limits and search result cap, and
the account settings `GET /account-info/v3/details` shows (company currency, additional currencies, time zone)."""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Callable, Iterator, Sequence

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox.hubspot._errors import not_found
from hsqbo_sandbox.hubspot._ratelimit import PortalLimits
from hsqbo_sandbox.hubspot._store import Change, Portal

DEFAULT_SEARCH_RESULT_CAP = 10_000


@dataclasses.dataclass(slots=True)
class Account:
    portal: Portal
    limits: PortalLimits
    search_result_cap: int = DEFAULT_SEARCH_RESULT_CAP

    @property
    def portal_id(self) -> int:
        return self.portal.portal_id

    def settings(self) -> dict[str, int | bool | str | list[str]]:
        return {
            "portal_id": self.portal_id,
            "burst_limit": self.limits.burst_max,
            "daily_limit": self.limits.daily_max,
            "search_per_second": self.limits.search_per_second,
            "search_result_cap": self.search_result_cap,
            "allow_open_invoice_delete": self.portal.allow_open_invoice_delete,
            "company_currency": self.portal.company_currency,
            "additional_currencies": list(self.portal.additional_currencies),
            "time_zone": self.portal.time_zone,
        }

    def configure(
        self,
        *,
        burst_limit: int | None = None,
        daily_limit: int | None = None,
        search_per_second: int | None = None,
        search_result_cap: int | None = None,
        allow_open_invoice_delete: bool | None = None,
        company_currency: str | None = None,
        additional_currencies: Sequence[str] | None = None,
        time_zone: str | None = None,
    ) -> None:
        for value in (burst_limit, daily_limit, search_per_second, search_result_cap):
            if value is not None and value < 1:
                raise ValueError("limits must be positive integers")
        if burst_limit is not None:
            self.limits.burst_max = burst_limit
        if daily_limit is not None:
            self.limits.daily_max = daily_limit
        if search_per_second is not None:
            self.limits.search_per_second = search_per_second
        if search_result_cap is not None:
            self.search_result_cap = search_result_cap
        if allow_open_invoice_delete is not None:
            self.portal.allow_open_invoice_delete = allow_open_invoice_delete
        if company_currency is not None:
            self.portal.company_currency = _currency_code(company_currency)
        if additional_currencies is not None:
            self.portal.additional_currencies = tuple(_currency_code(code) for code in additional_currencies)
        if time_zone is not None:
            try:
                zoneinfo.ZoneInfo(time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{time_zone!r} is not a time zone") from None
            self.portal.time_zone = time_zone

    def details(self) -> dict[str, object]:
        """`GET /account-info/v3/details` (the 2026-03 reference's fields; offsets at the current instant)."""
        offset = self.portal.clock_utc_offset()
        sign = "-" if offset < 0 else "+"
        minutes = abs(offset) // 60_000
        return {
            "portalId": self.portal_id,
            "accountType": "STANDARD",
            "timeZone": self.portal.time_zone,
            "companyCurrency": self.portal.company_currency,
            "additionalCurrencies": list(self.portal.additional_currencies),
            "utcOffset": f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
            "utcOffsetMilliseconds": offset,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }


def _currency_code(value: str) -> str:
    code = str(value).upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


class Accounts:
    def __init__(self, clock: SandboxClock, listener: Callable[[int, Change], None], *, first_portal_id: int = 2001):
        self.clock = clock
        self.listener = listener
        self._accounts: dict[int, Account] = {}
        self._next_portal_id = first_portal_id

    def create(self, portal_id: int | None = None) -> Account:
        if portal_id is None:
            portal_id = self._next_portal_id
        if portal_id in self._accounts:
            raise ValueError(f"portal {portal_id} already exists")
        self._next_portal_id = max(self._next_portal_id, portal_id + 1)
        portal = Portal(portal_id, self.clock, lambda change: self.listener(portal_id, change))
        account = Account(portal, PortalLimits())
        self._accounts[portal_id] = account
        return account

    def get(self, portal_id: int) -> Account:
        account = self._accounts.get(portal_id)
        if account is None:
            raise not_found(f"portal {portal_id} does not exist")
        return account

    def clear(self) -> None:
        """Forget every portal (a state load replaces them)."""
        self._accounts.clear()

    def find(self, portal_id: int) -> Account | None:
        return self._accounts.get(portal_id)

    def first(self) -> Account:
        """The first portal, created when there is none (a bare sandbox still answers OAuth installs)."""
        return next(iter(self._accounts.values())) if self._accounts else self.create()

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))

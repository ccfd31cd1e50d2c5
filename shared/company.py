"""What each side's account says about money and time, read through the APIs and cached per connection.

- QBO (`QboClient.company_settings`): the home currency and whether multicurrency is on (`Preferences` →
  `CurrencyPrefs.HomeCurrency` / `MultiCurrencyEnabled`), and the company's time zone if QBO reports one
  (`CompanyInfo.DefaultTimeZone`: in Intuit's XSD, not in the web reference; the offsets in `time` and `MetaData` are
  offsets, not a zone). A company that reports none needs `qbo_timezone` in the connection's settings.
- HubSpot (`HubSpotClient.account_settings`, `GET /account-info/v3/details`, scope `oauth`): the company currency,
  the additional currencies and the portal's time zone.

`CompanyCache` keeps both for `TTL_SECONDS` per connection: a change in either account's settings (a new currency,
multicurrency switched on) is seen within that time. Neither API sends an event hsqbo subscribes to for them.

`Company.resolve` checks them against the connection's settings: `hubspot_currency`, when set, must be the portal's
company currency — a mismatch is a `CompanySettingsError`, never a silent default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.errors import HsqboError

if TYPE_CHECKING:
    from shared.syncconfig import ConnectionSettings

TTL_SECONDS = 300.0


class CompanySettingsError(HsqboError):
    """The accounts' settings and the connection's configuration disagree, or a needed setting is unknown."""


@dataclasses.dataclass(frozen=True, slots=True)
class QboCompany:
    home_currency: str
    multicurrency: bool
    time_zone: str | None = None  # CompanyInfo.DefaultTimeZone, when QBO reports one


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotAccount:
    company_currency: str
    additional_currencies: tuple[str, ...]
    time_zone: str

    @property
    def currencies(self) -> frozenset[str]:
        """Every currency the portal can hold a record in."""
        return frozenset((self.company_currency, *self.additional_currencies))


def zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The IANA zone named `name`; None when there is no name or it is not a zone this machine knows."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Company:
    """Both accounts' settings as one connection syncs with them."""

    qbo: QboCompany
    hubspot: HubSpotAccount
    qbo_zone_name: str | None  # the configured qbo_timezone, else the zone QBO reports

    @classmethod
    def resolve(cls, connection: ConnectionSettings, qbo: QboCompany, hubspot: HubSpotAccount) -> Company:
        configured = connection.hubspot_currency
        if configured is not None and configured != hubspot.company_currency:
            raise CompanySettingsError(
                f"connection {connection.name!r}: hubspot_currency = {configured!r}, but the HubSpot portal's "
                f"company currency is {hubspot.company_currency}: remove hubspot_currency or correct it"
            )
        return cls(qbo, hubspot, connection.qbo_timezone or qbo.time_zone)

    @property
    def home_currency(self) -> str:
        return self.qbo.home_currency

    @property
    def hubspot_zone(self) -> zoneinfo.ZoneInfo:
        """The portal's zone (HubSpot always reports one; UTC if this machine does not know its name)."""
        return zone(self.hubspot.time_zone) or zoneinfo.ZoneInfo("UTC")

    @property
    def qbo_zone(self) -> zoneinfo.ZoneInfo:
        """The QBO company's zone; a `CompanySettingsError` saying what to configure when it is unknown."""
        found = zone(self.qbo_zone_name)
        if found is None:
            reported = f" (it reports {self.qbo_zone_name!r})" if self.qbo_zone_name else ""
            raise CompanySettingsError(
                f"the QuickBooks company's time zone is unknown{reported}: set qbo_timezone (an IANA zone such as "
                '"America/Los_Angeles") on the connection, so transaction dates fall on the right day'
            )
        return found


class CompanyCache:
    """One connection's `Company`, read at first use and again once `TTL_SECONDS` old; concurrent readers share one
    read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl_seconds: float = TTL_SECONDS) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._value: tuple[float, QboCompany, HubSpotAccount] | None = None
        self._lock = asyncio.Lock()

    async def get(
        self,
        connection: ConnectionSettings,
        read_qbo: Callable[[], Awaitable[QboCompany]],
        read_hubspot: Callable[[], Awaitable[HubSpotAccount]],
    ) -> Company:
        async with self._lock:
            if self._value is None or self._clock() - self._value[0] >= self._ttl:
                qbo, hubspot = await read_qbo(), await read_hubspot()
                self._value = (self._clock(), qbo, hubspot)
            _, qbo, hubspot = self._value
        return Company.resolve(connection, qbo, hubspot)

    def forget(self) -> None:
        """Read again at the next use (e.g. after an answer showing the settings changed)."""
        self._value = None

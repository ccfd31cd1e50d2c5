"""What each side's account says about money and time, read through the APIs and cached per connection.

- QBO (`QboClient.company_settings`): the home currency and whether multicurrency is on (`Preferences` →
  `CurrencyPrefs.HomeCurrency` / `MultiCurrencyEnabled`), the company's time zone if QBO reports one
  (`CompanyInfo.DefaultTimeZone`: in Intuit's XSD, not in the web reference), and the UTC offset of QBO's clock: the
  `time` of the preferences answer, which QBO stamps in the company's local offset (`...T10:48:27.082-07:00`).
- HubSpot (`HubSpotClient.account_settings`, `GET /account-info/v3/details`, scope `oauth`): the portal id, the company
  currency, the additional currencies and the portal's time zone.

The QBO company's zone (`Company.qbo_zone`), in this order: the connection's `qbo_timezone` (exact), else
`DefaultTimeZone`, else QuickBooks' clock offset as a fixed-offset zone. An offset is not a zone: it follows a
daylight-saving change only when the settings are read again, so for up to `TTL_SECONDS` after a change dates near
midnight may fall on the neighbouring day; `qbo_timezone` makes them exact. With none of the three (no `time` in the
answer) it is a `CompanySettingsError` saying to set `qbo_timezone`.

`CompanyCache` keeps both for `TTL_SECONDS` per connection: a change in either account's settings (a new currency,
multicurrency switched on) is seen within that time. Neither API sends an event hsqbo subscribes to for them.

`Company.resolve` checks them against the connection's settings: `hubspot_currency`, when set, must be the portal's
company currency — a mismatch is a `CompanySettingsError`, never a silent default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
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
    clock_offset: dt.timedelta | None = None  # UTC offset of the answer's `time` (QBO's clock, company offset)


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotAccount:
    company_currency: str
    additional_currencies: tuple[str, ...]
    time_zone: str
    portal_id: str  # the portal the token belongs to (`hsqbo connect` with a private-app token)

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
    def qbo_zone(self) -> dt.tzinfo:
        """The QBO company's zone: `qbo_timezone`, else the zone QBO reports, else QuickBooks' clock offset (see the
        module docstring); a `CompanySettingsError` saying what to configure when none is known."""
        found = zone(self.qbo_zone_name)
        if found is not None:
            return found
        clock = self.qbo_clock_zone
        if clock is None:
            reported = f" (it reports {self.qbo_zone_name!r})" if self.qbo_zone_name else ""
            raise CompanySettingsError(
                f"the QuickBooks company's time zone is unknown{reported}: set qbo_timezone (an IANA zone such as "
                '"America/Los_Angeles") on the connection, so transaction dates fall on the right day'
            )
        return clock

    @property
    def qbo_clock_zone(self) -> dt.timezone | None:
        """QuickBooks' clock offset as a fixed-offset zone named after it; None when the answer carried no `time`."""
        offset = self.qbo.clock_offset
        if offset is None:
            return None
        return dt.timezone(offset, name=f"{clock_offset_name(offset)} (QuickBooks' clock)")


def clock_offset_name(offset: dt.timedelta) -> str:
    """`UTC-07:00` for an offset of -7 hours."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


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

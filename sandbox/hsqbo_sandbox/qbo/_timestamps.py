"""The emulator's timestamps look like a US company's QBO: whole seconds with a fixed Pacific offset
(`2015-01-16T15:08:12-08:00`), response `time` with milliseconds; webhooks use UTC (`...Z`). Stored times are
whole epoch seconds, so what a client reads is exactly what queries and CDC compare against.

A response's `time` (and the company-settings reads' `MetaData`) is stamped in the realm's own zone, as QBO stamps
it in the company's local offset (`2015-07-24T10:48:27.082-07:00` in July, `-08:00` in winter): pass `zone`. Record
`MetaData` and default dates still use the fixed Pacific offset."""

from __future__ import annotations

import datetime

COMPANY_TZ = datetime.timezone(datetime.timedelta(hours=-8))


def whole_seconds(epoch: float) -> float:
    return float(int(epoch))


def company_time(epoch: float, zone: datetime.tzinfo = COMPANY_TZ) -> str:
    return datetime.datetime.fromtimestamp(int(epoch), zone).isoformat()


def company_time_ms(epoch: float, zone: datetime.tzinfo = COMPANY_TZ) -> str:
    return datetime.datetime.fromtimestamp(epoch, zone).isoformat(timespec="milliseconds")


def company_date(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, COMPANY_TZ).date().isoformat()


def utc_time(epoch: float) -> str:
    return (
        datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_time(text: str) -> float:
    """Epoch seconds from a date or date-time literal; without an offset it is company time. ValueError if not."""
    parsed = datetime.datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=COMPANY_TZ)
    return parsed.timestamp()

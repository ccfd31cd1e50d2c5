"""Dates between the two sides; every conversion names its zone.

- A QBO transaction date (`TxnDate`, `DueDate`) is a day, in the QBO company's time zone.
- A HubSpot `date` property holds a day as midnight UTC of that day (epoch ms, or "YYYY-MM-DD" in some answers).
  hsqbo writes the invoice dates `hs_invoice_date` and `hs_due_date` that way: it is valid for both property types
  (HubSpot's sandbox schema types them `datetime` with a date picker), and reads any value that is exactly midnight
  UTC as that day. Any other value is an instant (set through a datetime picker or another integration): its day is
  the day it falls on in the HubSpot portal's time zone, where a HubSpot user sees it.
- A HubSpot `datetime` property is an instant: a payment's `hs_initiated_date` → its day in the QBO company's zone
  becomes the QBO TxnDate (21:30 in San Francisco on 5 January is TxnDate 2026-01-05, not the UTC day, the 6th), and a
  TxnDate becomes the start of that day in the QBO company's zone.
- `created_after` filters: a record passes when it was created at or after 00:00 of the filter's day in the zone of
  the account it lives in (the QBO company's for QBO records, the portal's for HubSpot records). A record created
  more than a day away from that midnight is decided the same in every zone, so it needs no zone at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")


def parse_hubspot_value(value: Any) -> dt.datetime | dt.date | None:
    """A HubSpot date or datetime value: epoch ms or ISO 8601 → an aware instant; "YYYY-MM-DD" → a day."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, UTC)
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def hubspot_day(value: Any, portal_zone: ZoneInfo) -> dt.date | None:
    """The day a HubSpot date-like value means: midnight UTC → that day (a `date` value); any other instant → its day
    in the portal's zone."""
    parsed = parse_hubspot_value(value)
    if parsed is None or not isinstance(parsed, dt.datetime):
        return parsed
    in_utc = parsed.astimezone(UTC)
    if in_utc.time() == dt.time():
        return in_utc.date()
    return parsed.astimezone(portal_zone).date()


def hubspot_date(day: dt.date) -> str:
    """A day as a HubSpot `date` value: epoch ms of midnight UTC of that day."""
    return str(int(dt.datetime.combine(day, dt.time(), UTC).timestamp()) * 1000)


def day_in(instant: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The day `instant` falls on in `zone`; a naive instant is refused (it names no zone)."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime names no zone")
    return instant.astimezone(zone).date()


def start_of_day(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """00:00 of `day` in `zone`, as an aware instant."""
    return dt.datetime.combine(day, dt.time(), zone)


def hubspot_datetime(instant: dt.datetime) -> str:
    """An instant as HubSpot writes datetimes: ISO 8601 UTC with milliseconds."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def qbo_txn_date(hubspot_instant: Any, company_zone: dt.tzinfo) -> str | None:
    """A HubSpot datetime value (e.g. a payment's `hs_initiated_date`) as a QBO TxnDate: its day in the company's
    zone."""
    parsed = parse_hubspot_value(hubspot_instant)
    if parsed is None:
        return None
    if not isinstance(parsed, dt.datetime):
        return parsed.isoformat()
    return day_in(parsed, company_zone).isoformat()


def created_on_or_after(created: dt.datetime | None, day: dt.date, zone: dt.tzinfo) -> bool:
    """Whether a record created at `created` passes a `created_after` filter of `day`, counted in `zone`."""
    return created is not None and created >= start_of_day(day, zone)


EARLIEST_UTC_OFFSET = dt.timedelta(hours=-12)  # the zones' offsets range from UTC-12 to UTC+14
LATEST_UTC_OFFSET = dt.timedelta(hours=14)


def created_on_or_after_in_any_zone(created: dt.datetime | None, day: dt.date) -> bool | None:
    """`created_on_or_after` when the zone is unknown: True or False if every zone gives that answer, None if the
    answer depends on the zone."""
    if created is None:
        return False
    midnight_utc = dt.datetime.combine(day, dt.time(), UTC)
    if created >= midnight_utc - EARLIEST_UTC_OFFSET:  # on or after 00:00 of the day even in UTC-12
        return True
    if created < midnight_utc - LATEST_UTC_OFFSET:  # before 00:00 of the day even in UTC+14
        return False
    return None

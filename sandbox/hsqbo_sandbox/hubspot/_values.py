"""Property values: HubSpot stores and returns every value as a string, normalised by the property's type.

- number: any JSON number (read as an exact Decimal) or numeric string; returned in canonical decimal form
  ("6000.00" -> "6000", "1.50" -> "1.5"), so clients must compare numerically, never as strings (stricter than
  echoing the input).
- datetime: epoch milliseconds (number or digit string) or ISO 8601; returned as ISO 8601 UTC with milliseconds.
- date: "YYYY-MM-DD" or epoch milliseconds at midnight UTC; returned as "YYYY-MM-DD".
- bool: true/false (JSON or string, any case); returned "true"/"false".
- enumeration: one of the property's option values, case-sensitive.
- "" (or null) clears a value.
Invalid values raise `InvalidValue` with HubSpot's error code (INVALID_INTEGER, INVALID_DATE, INVALID_OPTION, ...).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re

from hsqbo_sandbox.hubspot._schema import PropertyDef

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_MS = 86_400_000


class InvalidValue(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.lru_cache(maxsize=65_536)  # the same timestamps are rendered over and over
def iso_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO 8601 form, e.g. 2026-01-05T10:00:00.000Z."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_epoch_ms(text: str) -> int | None:
    """Epoch ms from digits or an ISO 8601 date/datetime; None when it is neither."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def canonical_number(text: str) -> str | None:
    try:
        number = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if number == number.to_integral_value():
        return str(number.quantize(decimal.Decimal(1)))
    return format(number.normalize(), "f")


def normalize(prop: PropertyDef, raw: object) -> str | None:
    """The stored string for a written value; None clears the property."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, decimal.Decimal):
        text = format(raw, "f")  # plain notation, never 1E+2
    elif isinstance(raw, (int, float, str)):
        text = str(raw)
    else:
        raise InvalidValue("INVALID_TYPE", f"{raw!r} is not a valid value for {prop.name}")
    if text == "":
        return None
    if prop.type == "string":
        return text
    if prop.type == "number":
        number = canonical_number(text)
        if number is None:
            raise InvalidValue("INVALID_INTEGER", f"{text} was not a valid number.")
        return number
    if prop.type == "bool":
        if text.lower() not in ("true", "false"):
            raise InvalidValue("INVALID_BOOLEAN", f"{text} was not a valid boolean.")
        return text.lower()
    if prop.type == "enumeration":
        if text not in prop.options:
            raise InvalidValue(
                "INVALID_OPTION", f"{text} was not one of the allowed options: [{', '.join(prop.options)}]"
            )
        return text
    if prop.type == "date":
        if _ISO_DATE.match(text):
            epoch_ms = parse_epoch_ms(text)
        elif text.lstrip("-").isdigit():
            epoch_ms = int(text)
            if epoch_ms % _DAY_MS:
                raise InvalidValue("INVALID_DATE", f"{text} is not at midnight UTC, as date properties require.")
        else:
            epoch_ms = None
        if epoch_ms is None:
            raise InvalidValue("INVALID_DATE", f"{text} was not a valid date.")
        return iso_ms(epoch_ms)[:10]
    epoch_ms = parse_epoch_ms(text)
    if epoch_ms is None:
        raise InvalidValue("INVALID_DATETIME", f"{text} was not a valid datetime.")
    return iso_ms(epoch_ms)


def sort_key(prop: PropertyDef | None, value: str) -> tuple[int, decimal.Decimal | str]:
    """Comparable form of a stored value (numbers and dates numerically, strings case-insensitively)."""
    if prop is not None and prop.type == "number":
        return (0, decimal.Decimal(value))  # exact: 0.1 + 0.2 sorts as 0.3
    if prop is not None and prop.type in ("date", "datetime"):
        return (0, decimal.Decimal(parse_epoch_ms(value) or 0))
    return (1, value.lower())


def filter_operand(prop: PropertyDef | None, text: str) -> tuple[int, decimal.Decimal | str] | None:
    """Comparable form of a search filter value; None when it cannot be compared with this property."""
    if prop is not None and prop.type == "number":
        number = canonical_number(text)
        return (0, decimal.Decimal(number)) if number is not None else None
    if prop is not None and prop.type in ("date", "datetime"):
        epoch_ms = parse_epoch_ms(text)
        return (0, decimal.Decimal(epoch_ms)) if epoch_ms is not None else None
    return (1, text.lower())

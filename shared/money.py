"""Money, exactly: every amount, quantity, price, rate and balance is a `Decimal` from the moment an API answer is
parsed to the moment a request is sent. This module is the one place that says how.

- Reading: `loads` parses JSON with every non-integer number as a `Decimal` (orjson would make it a float, and
  0.1 + 0.2 would no longer be 0.3); `decimal` turns a HubSpot property string or a QBO number into one.
- Writing: `dumps` writes a `Decimal` as the exact JSON number it holds ("2.50" stays 2.50, never 2.5000000001),
  in plain notation (never 1E+2, which some parsers read as a float).
- Rounding is explicit: `round_money` rounds to the currency's minor unit (ISO 4217: JPY 0 decimals, KWD 3, most
  2), half away from zero (ROUND_HALF_UP): commercial rounding, what an accountant expects (Python's default, half
  to even, makes 3 x 0.835 = 2.505 into 2.50 instead of 2.51). Neither Intuit nor HubSpot documents its rounding
  mode: the stricter reading is to send each side only amounts already rounded to the minor unit, so neither has
  anything left to round, and to compare totals to the cent.
- A float on a money path is a bug: `decimal` refuses one instead of carrying its binary error along.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson

# ISO 4217 minor units that are not 2 (the currencies QuickBooks Online and HubSpot list).
_MINOR_UNITS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
ZERO = Decimal(0)


def minor_unit(currency: str | None) -> int:
    """Decimal places of `currency`'s minor unit (2 when unknown or not given)."""
    return _MINOR_UNITS.get((currency or "").upper(), 2)


def round_money(amount: Decimal, currency: str | None = None) -> Decimal:
    """`amount` rounded half away from zero to `currency`'s minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def decimal(value: Any) -> Decimal | None:
    """An exact Decimal of an API value (a Decimal, an int, or a string such as HubSpot's "9.50"); None for empty.
    Raises ValueError for a float (already inexact) or text that is no number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        raise ValueError(f"a float on a money path: {value!r}")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    cleaned = str(value).strip()
    if not cleaned:
        return None
    try:
        parsed = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a number: {cleaned!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a finite number: {cleaned!r}")
    return parsed


def plain(amount: Decimal) -> str:
    """A Decimal as a plain number string, trailing zeros kept ("2.50"), never in exponent form."""
    return format(amount, "f")


def loads(data: bytes | str) -> Any:
    """JSON with every non-integer number as a Decimal (integers stay int)."""
    return json.loads(data, parse_float=Decimal)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(plain(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any, *, option: int | None = None) -> bytes:
    """JSON bytes (orjson) with every Decimal written as the exact number it holds."""
    return orjson.dumps(value, default=_default, option=option)

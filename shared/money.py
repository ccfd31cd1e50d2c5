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
- Unit prices and quantities (`round_price`): at most 5 decimals (PRICE_PLACES), half away from zero. Intuit
  documents a line Amount as at most 15 digits, 10 before and 5 after the point ("10.5"); the XSDs type UnitPrice
  and Qty as plain xs:decimal. The stricter reading takes 5 decimals for UnitPrice and Qty as well, and the same
  limit for HubSpot's `price` and `quantity` (number properties with no documented precision), so a derived price
  (an amount divided by a quantity) is never sent with 27 digits. Amounts (line Amount, TotalAmt, payments,
  balances, HubSpot `amount`, `hs_initial_amount`) are sent rounded to the currency's minor unit.
- Splitting an amount (`allocate`) rounds the running total, not each part, so the parts always add up to the
  rounded whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
PRICE_PLACES = 5  # unit prices and quantities, both APIs (see the module docstring)


def minor_unit(currency: str | None) -> int:
    """Decimal places of `currency`'s minor unit (2 when unknown or not given)."""
    return _MINOR_UNITS.get((currency or "").upper(), 2)


def round_money(amount: Decimal, currency: str | None = None) -> Decimal:
    """`amount` rounded half away from zero to `currency`'s minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def round_price(value: Decimal) -> Decimal:
    """A unit price or quantity rounded half away from zero to PRICE_PLACES decimals, trailing zeros dropped."""
    rounded = value.quantize(Decimal(1).scaleb(-PRICE_PLACES), rounding=ROUND_HALF_UP)
    return rounded.normalize() if rounded else ZERO


def decimal_places(value: Decimal) -> int:
    """How many decimals `value` needs (trailing zeros do not count): 2.50 -> 1, 100 -> 0."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def allocate(parts: Mapping[str, Decimal], currency: str | None = None) -> dict[str, Decimal]:
    """`parts` each rounded to the currency's minor unit so that together they make exactly the rounded sum of the
    parts: each is the rounded running total minus the previous one (in the mapping's order)."""
    allocated: dict[str, Decimal] = {}
    running = previous = ZERO
    for key, part in parts.items():
        running += part
        rounded = round_money(running, currency)
        allocated[key] = rounded - previous
        previous = rounded
    return allocated


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

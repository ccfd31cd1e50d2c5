from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import money


def test_round_money_is_half_away_from_zero_per_minor_unit() -> None:
    assert money.round_money(Decimal(3) * Decimal("0.835")) == Decimal("2.51")
    assert money.round_money(Decimal("-2.505")) == Decimal("-2.51")
    assert money.round_money(Decimal("1234.5"), "JPY") == Decimal(1235)
    assert money.round_money(Decimal("1.2345"), "KWD") == Decimal("1.235")


def test_loads_reads_non_integers_as_decimal_and_dumps_writes_them_exactly() -> None:
    parsed = money.loads(b'{"Amount": 0.1, "Qty": 3, "UnitPrice": 2.50}')
    assert parsed == {"Amount": Decimal("0.1"), "Qty": 3, "UnitPrice": Decimal("2.50")}
    assert money.dumps(parsed) == b'{"Amount":0.1,"Qty":3,"UnitPrice":2.50}'
    assert money.dumps({"big": Decimal("1E+2")}) == b'{"big":100}'


def test_decimal_refuses_floats_and_non_numbers() -> None:
    assert money.decimal("9.50") == Decimal("9.50")
    assert money.decimal(" ") is None
    with pytest.raises(ValueError, match="float"):
        money.decimal(0.1)
    with pytest.raises(ValueError, match="not a number"):
        money.decimal("abc")
    with pytest.raises(ValueError, match="finite"):
        money.decimal("NaN")


def test_round_price_keeps_five_decimals_at_most_half_away_from_zero() -> None:
    derived = Decimal("10") / Decimal("3")  # 28 significant digits
    assert money.round_price(derived) == Decimal("3.33333")
    assert money.round_price(Decimal("0.000005")) == Decimal("0.00001")
    assert money.plain(money.round_price(Decimal("12.50000"))) == "12.5"
    assert money.plain(money.round_price(Decimal("100"))) == "100"
    assert money.round_price(Decimal("0.000004")) == 0


def test_decimal_places_ignores_trailing_zeros() -> None:
    assert money.decimal_places(Decimal("2.50")) == 1
    assert money.decimal_places(Decimal("100")) == 0
    assert money.decimal_places(Decimal("1E+2")) == 0
    assert money.decimal_places(Decimal("2.4999999999")) == 10


def test_allocate_parts_add_up_to_the_rounded_whole() -> None:
    thirds = {"a": Decimal(10) / 3, "b": Decimal(10) / 3, "c": Decimal(10) / 3}
    allocated = money.allocate(thirds)
    assert allocated == {"a": Decimal("3.33"), "b": Decimal("3.34"), "c": Decimal("3.33")}
    assert sum(allocated.values()) == Decimal("10.00")
    assert money.allocate({"x": Decimal("55.00"), "y": Decimal("5.50")}) == {
        "x": Decimal("55.00"),
        "y": Decimal("5.50"),
    }
    assert money.allocate({"x": Decimal("0.5"), "y": Decimal("0.5")}, "JPY") == {"x": Decimal(1), "y": Decimal(0)}


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(st.decimals(min_value=0, max_value=10**6, places=4), min_size=1, max_size=6),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_allocated_parts_always_add_up_to_the_rounded_whole_each_within_one_minor_unit(
    parts: list[Decimal], currency: str
) -> None:
    allocated = money.allocate({str(n): part for n, part in enumerate(parts)}, currency)
    assert sum(allocated.values(), money.ZERO) == money.round_money(sum(parts, money.ZERO), currency)
    unit = Decimal(1).scaleb(-money.minor_unit(currency))
    for n, part in enumerate(parts):
        assert money.decimal_places(allocated[str(n)]) <= money.minor_unit(currency)
        assert abs(allocated[str(n)] - part) <= unit

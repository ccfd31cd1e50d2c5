from decimal import Decimal

import pytest

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

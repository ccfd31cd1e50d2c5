"""The payments rule's pure helpers: what a QBO Payment applies, when it is voided, and the values each side gets."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.worker.rules.payments import (
    applied_invoices,
    differing,
    hubspot_amounts,
    hubspot_payment_properties,
    is_voided,
    origin_key,
    qbo_payment_fields,
)
from shared import money
from shared.clients import HubSpotObject

SAN_FRANCISCO = ZoneInfo("America/Los_Angeles")


def line(invoice_id: str, amount: str | int, txn_type: str = "Invoice") -> dict[str, object]:
    return {"Amount": Decimal(amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": txn_type}]}


def test_applied_invoices_sums_lines_per_invoice_exactly_and_ignores_other_links_and_zero_amounts() -> None:
    payment = {"Line": [line("70", "55.0"), line("70", "5.5"), line("71", "0.0"), line("9", "12.0", "CreditMemo")]}
    assert applied_invoices(payment) == {"70": Decimal("60.5")}
    tenths = {"Line": [line("70", "0.1"), line("70", "0.2")]}
    assert applied_invoices(tenths) == {"70": Decimal("0.3")}  # 0.30000000000000004 as floats


def test_applied_invoices_come_in_invoice_id_order() -> None:
    payment = {"Line": [line("100", "1"), line("9", "2"), line("10", "3")]}
    assert list(applied_invoices(payment)) == ["9", "10", "100"]


def test_an_amount_read_as_a_float_is_refused() -> None:
    with pytest.raises(ValueError, match="float"):
        applied_invoices({"Line": [{"Amount": 0.1, "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]}]})


def test_an_unapplied_payment_applies_to_no_invoice() -> None:
    assert applied_invoices({"TotalAmt": Decimal("10.0"), "Line": []}) == {}


def test_a_payment_is_voided_when_zeroed_with_the_voided_note() -> None:
    assert is_voided({"TotalAmt": Decimal("0.00"), "PrivateNote": "Voided - paid twice"})
    assert is_voided({"TotalAmt": 0, "PrivateNote": "Voided"})
    assert not is_voided({"TotalAmt": Decimal("0.0"), "PrivateNote": "zero payment"})
    assert not is_voided({"TotalAmt": Decimal("0.01"), "PrivateNote": "Voided by mistake, re-entered"})


def test_split_payment_parts_add_up_exactly_to_the_amount_applied() -> None:
    applied = {"70": Decimal("33.335"), "71": Decimal("33.335"), "72": Decimal("33.33")}
    parts = hubspot_amounts(applied, "USD")
    assert sum(parts.values()) == money.round_money(sum(applied.values(), money.ZERO)) == Decimal("100.00")
    assert all(money.decimal_places(part) <= 2 for part in parts.values())
    assert hubspot_amounts({"70": Decimal("55.00"), "71": Decimal("5.5")}, "USD") == {
        "70": Decimal("55.00"),
        "71": Decimal("5.50"),
    }
    assert hubspot_amounts({"70": Decimal("1500")}, "JPY") == {"70": Decimal(1500)}


def test_each_qbo_payment_line_has_its_own_origin_key() -> None:
    assert origin_key("163", "70") != origin_key("163", "71")


def test_hubspot_payment_takes_the_applied_amount_day_currency_and_reference() -> None:
    payment = {"TotalAmt": 65.0, "TxnDate": "2026-01-16", "PaymentRefNum": "CHK 7", "CurrencyRef": {"value": "EUR"}}
    assert hubspot_payment_properties(payment, Decimal("55"), "USD", SAN_FRANCISCO) == {
        "hs_initial_amount": "55.00",
        "hs_initiated_date": "2026-01-16T08:00:00.000Z",  # 00:00 in San Francisco
        "hs_currency_code": "EUR",
        "hs_reference_number": "CHK 7",
    }


def test_hubspot_payment_without_currency_or_reference_takes_the_home_currency() -> None:
    properties = hubspot_payment_properties({"TxnDate": "2026-01-16"}, Decimal(10), "USD", SAN_FRANCISCO)
    assert properties["hs_currency_code"] == "USD"
    assert "hs_reference_number" not in properties


def test_hubspot_payment_amount_is_a_plain_string_rounded_to_the_currencys_minor_unit() -> None:
    yen = {"TxnDate": "2026-01-16", "CurrencyRef": {"value": "JPY"}}
    assert hubspot_payment_properties(yen, Decimal("1234.5"), "USD", SAN_FRANCISCO)["hs_initial_amount"] == "1235"
    dinar = {"TxnDate": "2026-01-16", "CurrencyRef": {"value": "KWD"}}
    assert hubspot_payment_properties(dinar, Decimal("1E+1"), "USD", SAN_FRANCISCO)["hs_initial_amount"] == "10.000"
    usd = {"TxnDate": "2026-01-16"}
    assert (
        hubspot_payment_properties(usd, Decimal("2.505"), "USD", SAN_FRANCISCO)["hs_initial_amount"] == "2.51"
    )  # not 2.50


def test_differing_compares_numbers_and_datetimes_by_value() -> None:
    current: dict[str, str | None] = {"hs_initial_amount": "55.00", "hs_initiated_date": "2026-01-16T00:00:00Z"}
    wanted = {"hs_initial_amount": "55", "hs_initiated_date": "2026-01-16T00:00:00.000Z", "hs_reference_number": "A"}
    assert differing(current, wanted) == {"hs_reference_number": "A"}


def test_qbo_payment_takes_the_amount_and_the_day_it_was_initiated_in_the_company_zone() -> None:
    record = HubSpotObject(
        id="512",
        properties={"hs_initial_amount": "40.10", "hs_initiated_date": "2026-03-02T23:30:00-05:00"},
        created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        updated_at=None,
    )
    fields = qbo_payment_fields(record, ZoneInfo("America/New_York"), "USD")
    assert fields == {"TotalAmt": Decimal("40.10"), "TxnDate": "2026-03-02"}
    assert money.dumps(fields["TotalAmt"]) == b"40.10"
    assert qbo_payment_fields(record, ZoneInfo("UTC"), "USD")["TxnDate"] == "2026-03-03"


def test_qbo_payment_amount_is_rounded_half_away_from_zero_to_the_minor_unit() -> None:
    record = HubSpotObject(
        id="513",
        properties={"hs_initial_amount": "2.505", "hs_initiated_date": "2026-03-02T10:00:00Z"},
        created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        updated_at=None,
    )
    assert qbo_payment_fields(record, SAN_FRANCISCO, "USD")["TotalAmt"] == Decimal("2.51")
    assert qbo_payment_fields(record, SAN_FRANCISCO, "JPY")["TotalAmt"] == Decimal(3)

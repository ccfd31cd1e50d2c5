"""The payments rule's pure helpers: what a QBO Payment applies, when it is voided, and the values each side gets."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from services.worker.rules.payments import (
    applied_invoices,
    differing,
    hubspot_payment_properties,
    is_voided,
    origin_key,
    qbo_payment_fields,
)
from shared.clients import HubSpotObject

SAN_FRANCISCO = ZoneInfo("America/Los_Angeles")


def line(invoice_id: str, amount: float, txn_type: str = "Invoice") -> dict[str, object]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": txn_type}]}


def test_applied_invoices_sums_lines_per_invoice_and_ignores_other_links_and_zero_amounts() -> None:
    payment = {"Line": [line("70", 55.0), line("70", 5.5), line("71", 0.0), line("9", 12.0, "CreditMemo")]}
    assert applied_invoices(payment) == {"70": "60.5"}


def test_an_unapplied_payment_applies_to_no_invoice() -> None:
    assert applied_invoices({"TotalAmt": 10.0, "Line": []}) == {}


def test_a_payment_is_voided_when_zeroed_with_the_voided_note() -> None:
    assert is_voided({"TotalAmt": 0.0, "PrivateNote": "Voided - paid twice"})
    assert not is_voided({"TotalAmt": 0.0, "PrivateNote": "zero payment"})
    assert not is_voided({"TotalAmt": 10.0, "PrivateNote": "Voided by mistake, re-entered"})


def test_each_qbo_payment_line_has_its_own_origin_key() -> None:
    assert origin_key("163", "70") != origin_key("163", "71")


def test_hubspot_payment_takes_the_applied_amount_day_currency_and_reference() -> None:
    payment = {"TotalAmt": 65.0, "TxnDate": "2026-01-16", "PaymentRefNum": "CHK 7", "CurrencyRef": {"value": "EUR"}}
    assert hubspot_payment_properties(payment, "55", "USD", SAN_FRANCISCO) == {
        "hs_initial_amount": "55",
        "hs_initiated_date": "2026-01-16T08:00:00.000Z",  # 00:00 in San Francisco
        "hs_currency_code": "EUR",
        "hs_reference_number": "CHK 7",
    }


def test_hubspot_payment_without_currency_or_reference_takes_the_home_currency() -> None:
    properties = hubspot_payment_properties({"TxnDate": "2026-01-16"}, "10", "USD", SAN_FRANCISCO)
    assert properties["hs_currency_code"] == "USD"
    assert "hs_reference_number" not in properties


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
    assert qbo_payment_fields(record, ZoneInfo("America/New_York")) == {"TotalAmt": 40.1, "TxnDate": "2026-03-02"}
    assert qbo_payment_fields(record, ZoneInfo("UTC"))["TxnDate"] == "2026-03-03"

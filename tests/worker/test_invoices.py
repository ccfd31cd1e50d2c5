"""The invoice rule's pure decisions: dates, void detection, the status that follows QBO."""

from __future__ import annotations

from decimal import Decimal

from services.worker.rules.invoices import HEADER, _day, _hubspot_values, _is_voided, _qbo_status
from shared.domain import Kind, Provider
from shared.store import Link


def test_dates_compare_as_utc_days_in_every_form_the_apis_use() -> None:
    assert _day("2026-03-02") == _day("2026-03-02T00:00:00.000Z") == _day("1772409600000") == "2026-03-02"
    assert _day("") is None


def test_dates_are_written_to_hubspot_as_epoch_ms_at_midnight_utc() -> None:
    properties = _hubspot_values(list(HEADER), {"invoice_date": "2026-03-02", "due_date": None, "memo": "Hi"})
    assert properties == {"hs_invoice_date": "1772409600000", "hs_due_date": "", "hs_comments": "Hi"}


def test_a_void_is_told_by_a_zero_total_and_the_voided_note() -> None:
    assert _is_voided({"TotalAmt": 0, "PrivateNote": "Voided - late"})
    assert not _is_voided({"TotalAmt": 0, "PrivateNote": "free sample"})
    assert not _is_voided({"TotalAmt": 10, "PrivateNote": "Voided"})


def test_status_follows_qbo_paid_at_zero_balance_and_voided_for_good() -> None:
    assert _qbo_status({"TotalAmt": 50, "Balance": 50}, {}, None) == "open"
    assert _qbo_status({"TotalAmt": 50, "Balance": 0}, {}, None) == "paid"
    # a "voided" hint is a hint: the invoice read says open, so it is open
    assert _qbo_status({"TotalAmt": 50, "Balance": 50}, {"voided": True}, None) == "open"
    assert _qbo_status({"TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}, {}, None) == "voided"
    voided = Link(connection="c", kind=Kind.INVOICE, origin=Provider.QUICKBOOKS, synced={"status": "voided"})
    assert _qbo_status({"TotalAmt": 0, "Balance": 0}, {}, voided) == "voided"


def test_paid_open_and_void_are_decided_on_exact_decimals() -> None:
    assert _qbo_status({"TotalAmt": Decimal("0.30"), "Balance": Decimal("0.00")}, {}, None) == "paid"
    assert _qbo_status({"TotalAmt": Decimal("0.30"), "Balance": Decimal("0.01")}, {}, None) == "open"
    # 0.1 + 0.2 - 0.3 is 5.5e-17 in floats: a paid invoice would have stayed open
    balance = Decimal("0.1") + Decimal("0.2") - Decimal("0.3")
    assert _qbo_status({"TotalAmt": Decimal("0.30"), "Balance": balance}, {}, None) == "paid"
    assert _is_voided({"TotalAmt": Decimal("0.00"), "PrivateNote": "Voided"})
    assert not _is_voided({"TotalAmt": Decimal("0.01"), "PrivateNote": "Voided"})

"""What a person recognises a record by (services/worker/_summary.py): each side's values, the label, what a sync
changed, what a failing record waits for."""

from __future__ import annotations

from decimal import Decimal

from services.worker._summary import changes, label, next_summary, side_values
from shared.clients import HubSpotObject
from shared.domain import Awaited, Kind, Provider


def hubspot(**properties: str | None) -> HubSpotObject:
    return HubSpotObject(id="1", properties=dict(properties), created_at=None, updated_at=None)


def test_each_kind_shows_what_a_person_knows_it_by_on_either_side() -> None:
    assert side_values(Kind.CONTACT, hubspot(firstname="Jane", lastname="Doe", email="jane@example.com")) == {
        "name": "Jane Doe", "email": "jane@example.com"
    }  # fmt: skip
    customer = {"DisplayName": "Jane Doe (books)", "PrimaryEmailAddr": {"Address": "jane@example.com"}}
    assert side_values(Kind.CONTACT, customer) == {"name": "Jane Doe (books)", "email": "jane@example.com"}
    assert side_values(Kind.CONTACT, {"GivenName": "Jo", "FamilyName": "Ray"}) == {"name": "Jo Ray"}
    assert side_values(Kind.PRODUCT, hubspot(name="Widget", hs_sku="W-1", price="9.5")) == {
        "name": "Widget", "sku": "W-1", "price": "9.5"
    }  # fmt: skip
    assert side_values(Kind.PRODUCT, {"Name": "Widget", "Sku": "W-1", "UnitPrice": Decimal("9.5")}) == {
        "name": "Widget", "sku": "W-1", "price": "9.50"
    }  # fmt: skip
    invoice = {"DocNumber": "1001", "CustomerRef": {"value": "58", "name": "Acme Ltd"}, "TotalAmt": Decimal("75"),
               "CurrencyRef": {"value": "JPY"}, "TxnDate": "2026-12-01"}  # fmt: skip
    assert side_values(Kind.INVOICE, invoice) == {
        "number": "1001", "customer": "Acme Ltd", "total": "75", "currency": "JPY", "date": "2026-12-01"
    }  # fmt: skip
    record = hubspot(hs_number="INV-7", hs_amount_billed="75.5", hs_currency="USD",
                     hs_invoice_date="2026-12-01T00:00:00Z", hs_invoice_status="open")  # fmt: skip
    assert side_values(Kind.INVOICE, record) == {
        "number": "INV-7", "total": "75.50", "currency": "USD", "date": "2026-12-01", "status": "open"
    }  # fmt: skip
    payment = {"TotalAmt": Decimal("20.5"), "TxnDate": "2026-12-02", "CustomerRef": {"name": "Acme Ltd"}}
    assert side_values(Kind.PAYMENT, payment) == {"amount": "20.50", "date": "2026-12-02", "customer": "Acme Ltd"}
    assert side_values(Kind.PAYMENT, hubspot(hs_initial_amount="oops", hs_currency_code="EUR")) == {
        "amount": "oops", "currency": "EUR"
    }  # fmt: skip


def test_the_label_joins_both_sides_the_side_read_last_winning() -> None:
    summary = next_summary({}, Kind.INVOICE, side=Provider.HUBSPOT, changed={}, awaits=None, now=1.0,
                           record=hubspot(hs_number="1001", hs_amount_billed="75", hs_currency="USD"))  # fmt: skip
    assert label(Kind.INVOICE, summary) == "#1001 · 75.00 USD"
    echo = {"DocNumber": "1001", "CustomerRef": {"name": "Acme Ltd"}, "TotalAmt": Decimal("75.00"),
            "CurrencyRef": {"value": "USD"}}  # fmt: skip
    summary = next_summary(summary, Kind.INVOICE, side=Provider.QUICKBOOKS, record=echo, changed={}, awaits=None,
                           now=2.0)  # fmt: skip
    assert label(Kind.INVOICE, summary) == "#1001 · Acme Ltd · 75.00 USD"
    contact = next_summary({}, Kind.CONTACT, side=Provider.HUBSPOT, changed={}, awaits=None, now=1.0,
                           record=hubspot(firstname="Jane", email="jane@example.com"))  # fmt: skip
    assert label(Kind.CONTACT, contact) == "Jane · jane@example.com"
    assert label(Kind.PRODUCT, {"quickbooks": {"name": "Widget", "sku": "W-1"}}) == "Widget · SKU W-1"
    assert label(Kind.PAYMENT, {"quickbooks": {"amount": "20.50", "currency": "USD", "date": "2026-12-02"}}) == (
        "20.50 USD · 2026-12-02"
    )
    assert label(Kind.CONTACT, {}) == ""


def test_changes_are_the_agreed_fields_a_sync_moved() -> None:
    assert changes({"email": "a@x", "phone": "1"}, {"email": "a@x", "phone": "2", "name": "Jo"}) == {
        "phone": ["1", "2"], "name": [None, "Jo"]
    }  # fmt: skip
    assert changes({"phone": "1"}, {}) == {"phone": ["1", None]}
    assert changes({"phone": "1"}, {"phone": "1"}) == {}


def test_what_the_last_sync_changed_stays_until_a_sync_changes_something_else() -> None:
    first = next_summary({}, Kind.CONTACT, side=Provider.HUBSPOT, record=None, changed={"phone": ["1", "2"]},
                         awaits=None, now=10.0)  # fmt: skip
    assert first == {"changed": {"phone": ["1", "2"]}, "changed_at": 10.0}
    unchanged = next_summary(first, Kind.CONTACT, side=Provider.QUICKBOOKS, record=None, changed={}, awaits=None,
                             now=20.0)  # fmt: skip
    assert unchanged == first


def test_a_failing_record_names_what_it_waits_for_until_it_no_longer_fails_for_it() -> None:
    awaited = Awaited(Kind.CONTACT, Provider.QUICKBOOKS, "58")
    waiting = next_summary({}, Kind.INVOICE, side=Provider.QUICKBOOKS, record=None, changed={}, awaits=awaited,
                           now=1.0)  # fmt: skip
    assert waiting["waits_for"] == {"kind": "contact", "side": "quickbooks", "id": "58"}
    done = next_summary(waiting, Kind.INVOICE, side=Provider.QUICKBOOKS, record=None, changed={}, awaits=None, now=2.0)
    assert "waits_for" not in done

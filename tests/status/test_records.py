"""The records pages' pure parts: links into the products' own UIs, the field comparison's rows, the awaited
record."""

from __future__ import annotations

from services.status._records import (
    awaited_key,
    awaited_link,
    field_rows,
    hubspot_url,
    is_sandbox,
    qbo_url,
    seen_rows,
)
from shared.config import Settings
from shared.domain import Kind, PendingKey, Provider


def test_a_record_links_to_itself_in_hubspot_and_quickbooks() -> None:
    assert hubspot_url(123, Kind.CONTACT, "51") == "https://app.hubspot.com/contacts/123/record/0-1/51"
    assert hubspot_url(123, Kind.PRODUCT, "7") == "https://app.hubspot.com/contacts/123/record/0-7/7"
    assert hubspot_url(123, Kind.INVOICE, "9") == "https://app.hubspot.com/contacts/123/record/0-53/9"
    assert hubspot_url(123, Kind.PAYMENT, "4") == "https://app.hubspot.com/contacts/123/record/0-101/4"
    assert qbo_url(Kind.CONTACT, "58", sandbox=False) == "https://app.qbo.intuit.com/app/customerdetail?nameId=58"
    assert qbo_url(Kind.INVOICE, "130", sandbox=False) == "https://app.qbo.intuit.com/app/invoice?txnId=130"
    assert qbo_url(Kind.PAYMENT, "140", sandbox=True) == "https://app.sandbox.qbo.intuit.com/app/recvpayment?txnId=140"
    assert qbo_url(Kind.PRODUCT, "3", sandbox=False) == "https://app.qbo.intuit.com/app/items"
    assert hubspot_url(1, Kind.CONTACT, "a/b?c") == "https://app.hubspot.com/contacts/1/record/0-1/a%2Fb%3Fc"


def test_only_intuits_production_api_is_not_a_sandbox() -> None:
    assert not is_sandbox(Settings())
    assert is_sandbox(Settings(qbo_base_url="https://sandbox-quickbooks.api.intuit.com"))
    assert is_sandbox(Settings(qbo_base_url="http://127.0.0.1:8092"))


def test_field_rows_put_both_sides_the_agreed_value_and_the_last_change_side_by_side() -> None:
    rows = field_rows(
        {"email": "jane@example.com", "phone": "555-0100"},
        {"email": "jane@example.com", "phone": "555-0199", "notes": "vip"},
        {"email": "jane@example.com", "phone": "555-0100"},
        {"phone": ["555-0000", "555-0100"]},
    )
    assert [(r.name, r.hubspot, r.qbo, r.agreed, r.changed, r.differs) for r in rows] == [
        ("email", "jane@example.com", "jane@example.com", "jane@example.com", None, False),
        ("phone", "555-0100", "555-0199", "555-0100", ("555-0000", "555-0100"), True),
        ("notes", None, "vip", None, None, True),
    ]


def test_without_a_read_the_rows_are_the_agreed_and_changed_fields() -> None:
    rows = field_rows(None, None, {"email": "a@x"}, {"phone": ["1", None], "junk": "not a pair"})
    assert [(r.name, r.hubspot, r.qbo, r.agreed, r.changed) for r in rows] == [
        ("email", None, None, "a@x", None), ("phone", None, None, None, ("1", None)), ("junk", None, None, None, None)
    ]  # fmt: skip


def test_the_awaited_record_is_linked_on_the_page_only_when_well_formed() -> None:
    key = awaited_key("acme", {"kind": "contact", "side": "quickbooks", "id": "58"})
    assert key == PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "58")
    assert awaited_link(key, "Acme Ltd") == {
        "path": "/connections/acme/contact/quickbooks/58", "text": "QuickBooks customer 58 (Acme Ltd)"
    }  # fmt: skip
    assert awaited_link(PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "9"), "")["text"] == "HubSpot invoice 9"
    assert awaited_key("acme", {"kind": "nope", "side": "quickbooks", "id": "58"}) is None
    assert awaited_key("acme", {"kind": "contact"}) is None
    assert awaited_key("acme", None) is None


def test_what_each_side_showed_when_last_read_is_listed_field_by_field() -> None:
    summary = {"hubspot": {"number": "INV-7", "total": "75.00"}, "quickbooks": {"number": "1001", "customer": "Acme"},
               "changed": {}}  # fmt: skip
    assert seen_rows(summary) == [("number", "INV-7", "1001"), ("total", "75.00", None), ("customer", None, "Acme")]
    assert seen_rows({}) == []

"""The contacts rule's pure helpers: how a company-only customer reads as a contact, and the overwritten values a
first link keeps in the activity."""

from __future__ import annotations

from services.worker import _fields
from services.worker.rules._pair import overwritten
from services.worker.rules.contacts import SPEC, _customer_view


def test_a_company_only_customer_reads_as_a_contact_named_after_it() -> None:
    customer = {"Id": "5", "DisplayName": "Northwind", "CompanyName": "Northwind Traders"}
    values = _fields.from_qbo(SPEC.fields, _customer_view(customer))
    assert (values["last_name"], values["company"], values["first_name"]) == ("Northwind", "Northwind Traders", None)
    assert _fields.from_qbo(SPEC.fields, _customer_view({"DisplayName": "Solo"}))["company"] == "Solo"


def test_a_customer_with_a_name_or_an_email_reads_as_it_is() -> None:
    for extra in ({"GivenName": "Ann"}, {"PrimaryEmailAddr": {"Address": "a@example.com"}}):
        customer = {"DisplayName": "Alpha", **extra}
        assert _customer_view(customer) == customer


def test_overwritten_values_name_each_side_field_old_and_new() -> None:
    detail = overwritten({"first_name": "Ben", "phone": None}, {"first_name": "Kim"}, {"city": "Oslo"}, {"city": None})
    assert detail == "overwritten on linking; QuickBooks: first_name: 'Ben' → 'Kim'; HubSpot: city: 'Oslo' → None"

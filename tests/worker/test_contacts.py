"""The contacts rule's pure helpers: how a company-only customer reads as a contact, the overwritten values a
first link keeps in the activity, the intent kept for a contact a create's 409 names."""

from __future__ import annotations

import pytest

from services.worker import _fields
from services.worker.rules import Failing
from services.worker.rules._pair import overwritten
from services.worker.rules.contacts import SPEC, _customer_view, adopted_intent
from shared.clients import HubSpotObject
from shared.domain import Kind, Provider
from shared.store import Link


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


def test_a_contact_a_409_names_keeps_the_intent_of_the_attempt_that_made_it_else_links_or_fails() -> None:
    maps = list(SPEC.fields)
    taken = HubSpotObject("500", {"email": "ann@globex.test", "firstname": "Ann"}, None, None)
    holds = _fields.content_hash(_fields.from_hubspot(maps, taken.properties))
    crashed = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id="58", hubspot_hash=holds)
    assert adopted_intent(maps, crashed, taken, create_new=False) == holds  # made by the crashed attempt
    assert adopted_intent(maps, crashed, taken, create_new=True) == holds
    other = HubSpotObject("501", {"email": "ann@globex.test", "firstname": "Annie"}, None, None)
    assert adopted_intent(maps, crashed, other, create_new=False) is None  # someone's contact: linked
    assert adopted_intent(maps, None, taken, create_new=False) is None
    with pytest.raises(Failing, match="HubSpot contact 501 already has this customer's email") as failing:
        adopted_intent(maps, crashed, other, create_new=True)  # an operator asked for a new contact
    assert failing.value.category == "duplicate_email"

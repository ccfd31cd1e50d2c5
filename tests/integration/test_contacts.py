"""Contacts ↔ Customers end to end: sandboxes → signed webhooks → receiver → RabbitMQ → worker → the other API.

Each test is named after the rule it checks (incumbent-integration.md, then what hsqbo does better)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration


def customers(stack: Stack) -> list[dict[str, Any]]:
    return stack.qbo_entities("Customer")


def by_email(stack: Stack, email: str) -> list[dict[str, Any]]:
    return [c for c in customers(stack) if (c.get("PrimaryEmailAddr") or {}).get("Address") == email]


async def test_contact_created_in_hubspot_becomes_one_customer(stack: Stack) -> None:
    stack.hubspot_edit("contacts", "create", properties={"email": "jane@example.com", "firstname": "Jane",
                                                          "lastname": "Doe", "phone": "+1 555 0100"})  # fmt: skip
    await stack.settle()
    [customer] = by_email(stack, "jane@example.com")
    assert customer["GivenName"] == "Jane"
    assert customer["DisplayName"] == "Jane Doe"
    assert customer["PrimaryPhone"]["FreeFormNumber"] == "+1 555 0100"


async def test_one_edit_produces_exactly_one_write_and_no_echo(stack: Stack) -> None:
    created = stack.hubspot_edit("contacts", "create", properties={"email": "one@example.com", "firstname": "One"})
    await stack.settle()
    stack.clear_request_logs()
    stack.hubspot_edit("contacts", "update", id=created["id"], properties={"lastname": "Edit"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}
    [customer] = by_email(stack, "one@example.com")
    assert customer["FamilyName"] == "Edit"


async def test_edit_in_qbo_reaches_hubspot_once_without_echo(stack: Stack) -> None:
    created = stack.hubspot_edit("contacts", "create", properties={"email": "q@example.com", "firstname": "Q"})
    await stack.settle()
    [customer] = by_email(stack, "q@example.com")
    stack.clear_request_logs()
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "FamilyName": "FromBooks"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 1, "quickbooks": 0}
    [contact] = [c for c in stack.hubspot_records("contacts") if c["id"] == created["id"]]
    assert contact["lastname"] == "FromBooks"


async def test_twenty_rapid_property_changes_make_one_write(stack: Stack) -> None:
    created = stack.hubspot_edit("contacts", "create", properties={"email": "burst@example.com", "firstname": "B"})
    await stack.settle()
    stack.clear_request_logs()
    for n in range(20):
        stack.hubspot_edit("contacts", "update", id=created["id"], properties={"phone": f"+1 555 01{n:02d}"})
    await stack.settle()
    assert stack.api_writes()["quickbooks"] == 1
    [customer] = by_email(stack, "burst@example.com")
    assert customer["PrimaryPhone"]["FreeFormNumber"] == "+1 555 0119"


async def test_customer_created_in_qbo_becomes_one_contact(stack: Stack) -> None:
    stack.qbo_edit("Customer", "create", {"DisplayName": "Books Only", "GivenName": "Bo",
                                          "PrimaryEmailAddr": {"Address": "bo@example.com"}})  # fmt: skip
    await stack.settle()
    contacts = [c for c in stack.hubspot_records("contacts") if c.get("email") == "bo@example.com"]
    assert len(contacts) == 1
    assert contacts[0]["firstname"] == "Bo"
    assert len(by_email(stack, "bo@example.com")) == 1  # and no customer bounced back as a duplicate


async def test_contacts_match_customers_by_email_instead_of_duplicating(stack: Stack) -> None:
    stack.qbo_edit("Customer", "create", {"DisplayName": "Existing", "PrimaryEmailAddr": {"Address": "x@example.com"}})
    await stack.settle()
    contacts = [c for c in stack.hubspot_records("contacts") if c.get("email") == "x@example.com"]
    stack.hubspot_edit("contacts", "update", id=contacts[0]["id"], properties={"firstname": "Xavier"})
    await stack.settle()
    [customer] = by_email(stack, "x@example.com")
    assert customer["GivenName"] == "Xavier"


async def test_contact_deleted_in_hubspot_makes_the_customer_inactive(stack: Stack) -> None:
    created = stack.hubspot_edit("contacts", "create", properties={"email": "gone@example.com", "firstname": "G"})
    await stack.settle()
    stack.hubspot_edit("contacts", "delete", id=created["id"])
    await stack.settle()
    [customer] = by_email(stack, "gone@example.com")
    assert customer["Active"] is False

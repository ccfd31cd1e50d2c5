"""Contacts ↔ Customers end to end: sandboxes → signed webhooks → receiver → RabbitMQ → worker → the other API.

Each test is named after the rule it checks (incumbent-integration.md, then what hsqbo does better)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from shared.broker import connected_broker
from shared.clients.hubspot import HubSpotClient
from shared.clients.qbo import QboClient
from shared.domain import Kind, PendingKey, Provider
from shared.envelope import Operation
from shared.resync import resync
from shared.store import Link, LinkStatus, StaleLink
from tests.integration.conftest import CONNECTION, Stack, review
from tests.integration.test_poller import RecordingPoller, hint, poller, queue_changes

__all__ = ["poller"]  # the fixture, shared with the poller's tests

pytestmark = pytest.mark.integration


def customers(stack: Stack) -> list[dict[str, Any]]:
    return stack.qbo_entities("Customer")


def by_email(stack: Stack, email: str) -> list[dict[str, Any]]:
    return [c for c in customers(stack) if (c.get("PrimaryEmailAddr") or {}).get("Address") == email]


async def synced_contact(stack: Stack, email: str) -> tuple[str, dict[str, Any]]:
    """A contact made in HubSpot, synced: its id and its customer."""
    created = stack.hubspot_edit("contacts", "create", properties={"email": email, "firstname": "Synced"})
    await stack.settle()
    [customer] = by_email(stack, email)
    return str(created["id"]), customer


def contact_of(stack: Stack, contact_id: str) -> dict[str, Any]:
    [contact] = [c for c in stack.hubspot_records("contacts") if c["id"] == contact_id]
    return contact


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


async def test_an_edit_in_qbo_of_a_settled_pair_reads_only_the_customer_and_writes_the_contact_unread(
    stack: Stack, poller: RecordingPoller
) -> None:
    contact_id, customer = await synced_contact(stack, "unread@example.com")
    assert await poller.poll() == []  # watching starts
    stack.clear_request_logs()
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "FamilyName": "Booked"})
    await stack.settle()
    calls = [(r.method, r.path) for r in stack.sandbox.hubspot.requests.list() if not r.path.startswith("/_sandbox")]
    assert calls == [("PATCH", f"/crm/v3/objects/contacts/{contact_id}")]
    # The write left the link's HubSpot version behind: the poll finds the contact changed, holding the agreement.
    assert await poller.poll() == []
    assert contact_of(stack, contact_id)["lastname"] == "Booked"


async def test_a_hubspot_edit_of_another_field_whose_webhook_was_lost_survives_a_qbo_edit_written_unread(
    stack: Stack, poller: RecordingPoller
) -> None:
    contact_id, customer = await synced_contact(stack, "both@example.com")
    assert await poller.poll() == []
    stack.sandbox.hubspot.faults.update(webhook_drop_rate=1.0)
    stack.hubspot_edit("contacts", "update", id=contact_id, properties={"phone": "+1 555 0199"})
    await stack.settle()
    stack.sandbox.hubspot.faults.reset()
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "FamilyName": "Booked"})
    await stack.settle()
    assert [e.object_id for e in await poller.poll()] == [contact_id]  # the contact differs from the agreement
    await stack.settle()
    contact = contact_of(stack, contact_id)
    assert (contact["lastname"], contact["phone"]) == ("Booked", "+1 555 0199")
    [customer] = by_email(stack, "both@example.com")
    assert (customer["FamilyName"], customer["PrimaryPhone"]["FreeFormNumber"]) == ("Booked", "+1 555 0199")


async def test_an_edit_in_qbo_to_no_synced_field_reads_only_the_customer(stack: Stack) -> None:
    stack.hubspot_edit("contacts", "create", properties={"email": "notes@example.com", "firstname": "N"})
    await stack.settle()
    [customer] = by_email(stack, "notes@example.com")
    stack.clear_request_logs()
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "Notes": "called on Monday"})  # not mapped
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    assert [r.method for r in stack.sandbox.hubspot.requests.list() if not r.path.startswith("/_sandbox")] == []


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


async def test_inactivated_customer_contact_archived_once(stack: Stack, poller: RecordingPoller) -> None:
    """The archive happens once; polls, the archive's own deletion event and repeated change events of the same
    inactive customer neither archive it again nor flip its status between deleted and excluded."""
    customer = stack.qbo_edit(
        "Customer", "create", {"DisplayName": "Leaving", "PrimaryEmailAddr": {"Address": "l@x.com"}}
    )
    await stack.settle()
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("email") == "l@x.com"]
    assert await poller.poll() == []  # watching starts
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "Active": False})
    await stack.settle()
    assert stack.hubspot_records("contacts") == []
    for _ in range(3):
        assert await poller.poll() == []
        await queue_changes(
            stack,
            hint(stack, Provider.QUICKBOOKS, "customer", str(customer["Id"]), Operation.UPDATED),
            hint(stack, Provider.HUBSPOT, "contact", contact["id"], Operation.DELETED),
        )
        await stack.settle()
    deletes = stack.sandbox.hubspot.requests.list(method="DELETE", path_contains=f"/objects/contacts/{contact['id']}")
    assert len(deletes) == 1
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=str(customer["Id"]))
    assert link is not None
    assert link.status == LinkStatus.DELETED
    history = await stack.store.activity(CONNECTION, Kind.CONTACT, link_id=link.id)
    assert [line.action for line in history].count("deleted") == 1
    assert "excluded" not in [line.action for line in history]


def company_with_contacts(stack: Stack, name: str, *emails: str) -> list[str]:
    company = stack.hubspot_edit("companies", "create", properties={"name": name})
    ids = []
    for n, email in enumerate(emails):
        contact = stack.hubspot_edit(
            "contacts", "create", properties={"email": email, "firstname": f"Person{n}", "lastname": "Smith"}
        )
        stack.hubspot_edit(
            "contacts", "associate", id=contact["id"], to_object_type="companies", to_id=company["id"],
            association_type_id=1,
        )  # fmt: skip
        ids.append(contact["id"])
    return ids


def with_strategy(strategy: str) -> dict[str, Any]:
    return {"contacts": {"hubspot_to_qbo": {}, "display_name_strategy": strategy}}


@pytest.mark.parametrize("sync_overrides", [with_strategy("disambiguate")], indirect=True)
async def test_second_contact_of_a_company_gets_a_disambiguated_display_name(stack: Stack) -> None:
    company_with_contacts(stack, "Acme", "first@acme.test")
    await stack.settle()
    company_with_contacts(stack, "Acme", "second@acme.test")
    await stack.settle()
    names = sorted(c["DisplayName"] for c in customers(stack))
    assert names == ["Acme", "Acme (Person0 Smith)"]


@pytest.mark.parametrize("sync_overrides", [with_strategy("fail")], indirect=True)
async def test_second_contact_of_a_company_fails_under_the_incumbents_strategy(stack: Stack) -> None:
    company_with_contacts(stack, "Globex", "a@globex.test")
    await stack.settle()
    [second] = company_with_contacts(stack, "Globex", "b@globex.test")
    await stack.settle()
    assert [c["DisplayName"] for c in customers(stack)] == ["Globex"]
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=second)
    assert link is not None
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "duplicate_display_name")


@pytest.mark.parametrize("sync_overrides", [with_strategy("link")], indirect=True)
async def test_link_strategy_links_only_a_customer_with_the_same_email(stack: Stack) -> None:
    stack.qbo_edit("Customer", "create", {"DisplayName": "Initech", "PrimaryEmailAddr": {"Address": "ap@initech.test"}})
    await stack.settle()
    [other] = company_with_contacts(stack, "Initech", "bob@initech.test")
    await stack.settle()
    assert len([c for c in customers(stack) if c["DisplayName"].startswith("Initech")]) == 1
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=other)
    assert link is not None
    assert link.error_category == "duplicate_display_name"


@pytest.mark.parametrize(
    "sync_overrides", [{"contacts": {"hubspot_to_qbo": {"require_hubspot_invoice": True}}}], indirect=True
)
async def test_contact_without_a_hubspot_invoice_is_excluded_with_the_reason(stack: Stack) -> None:
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "lead@example.com", "firstname": "L"})
    await stack.settle()
    assert by_email(stack, "lead@example.com") == []
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    assert link.status == LinkStatus.EXCLUDED
    assert "require_hubspot_invoice" in (link.error_message or "")


async def test_shuffled_and_duplicated_webhooks_converge_on_the_newest_state(stack: Stack) -> None:
    created = stack.hubspot_edit("contacts", "create", properties={"email": "shuffle@example.com", "firstname": "S"})
    await stack.settle()
    for faults in (stack.sandbox.hubspot.faults, stack.sandbox.qbo.faults):
        faults.update(webhook_duplicate_rate=0.5, webhook_reorder=True)
    for n in range(10):
        stack.hubspot_edit("contacts", "update", id=created["id"], properties={"city": f"City {n}", "zip": f"{n}"})
    await stack.settle()
    [customer] = by_email(stack, "shuffle@example.com")
    assert (customer["BillAddr"]["City"], customer["BillAddr"]["PostalCode"]) == ("City 9", "9")


async def test_customer_merged_in_qbo_repoints_the_link_to_the_survivor(stack: Stack) -> None:
    stack.qbo_edit("Customer", "create", {"DisplayName": "Keep", "PrimaryEmailAddr": {"Address": "keep@example.com"}})
    stack.qbo_edit("Customer", "create", {"DisplayName": "Lose", "PrimaryEmailAddr": {"Address": "lose@example.com"}})
    await stack.settle()
    keep = by_email(stack, "keep@example.com")[0]
    lose = by_email(stack, "lose@example.com")[0]
    stack.qbo_edit("Customer", "merge", {"survivor_id": keep["Id"], "merged_id": lose["Id"]})
    await stack.settle()
    survivor = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=keep["Id"])
    retired = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=lose["Id"])
    assert survivor is not None
    assert survivor.status == LinkStatus.SYNCED
    assert retired is not None
    assert retired.status == LinkStatus.DELETED


async def test_contacts_merged_in_hubspot_repoint_the_link_to_the_survivor(stack: Stack) -> None:
    keep = stack.hubspot_edit("contacts", "create", properties={"email": "keep@hs.test", "firstname": "Keep"})
    lose = stack.hubspot_edit("contacts", "create", properties={"email": "lose@hs.test", "firstname": "Lose"})
    await stack.settle()
    stack.hubspot_edit("contacts", "merge", id=keep["id"], merge_id=lose["id"])
    await stack.settle()
    survivor = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=keep["id"])
    retired = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=lose["id"])
    assert survivor is not None
    assert survivor.status == LinkStatus.SYNCED
    assert retired is not None
    assert retired.status == LinkStatus.DELETED
    assert len(by_email(stack, "keep@hs.test")) == 1  # accounting data is kept: no customer deleted
    assert len(by_email(stack, "lose@hs.test")) == 1


async def test_a_late_change_of_a_contact_merged_away_while_the_merge_webhook_was_lost_leaves_its_customer_alone(
    stack: Stack,
) -> None:
    keep = stack.hubspot_edit("contacts", "create", properties={"email": "keep@hs.test", "firstname": "Keep"})
    lose = stack.hubspot_edit("contacts", "create", properties={"email": "lose@hs.test", "firstname": "Lose"})
    await stack.settle()
    stack.sandbox.hubspot.faults.update(webhook_drop_rate=1.0)
    stack.hubspot_edit("contacts", "merge", id=keep["id"], merge_id=lose["id"])
    await stack.settle()
    stack.sandbox.hubspot.faults.reset()
    # A change of the merged-away id arrives late (a retried webhook, the poller): HubSpot answers it with the survivor.
    async with connected_broker(stack.settings) as broker:
        await resync(stack.store, broker, PendingKey(CONNECTION, Kind.CONTACT, Provider.HUBSPOT, lose["id"]),
                     now=time.time())  # fmt: skip
    await stack.settle()
    assert [c["GivenName"] for c in by_email(stack, "lose@hs.test")] == ["Lose"]  # not made a copy of the survivor
    assert [c["GivenName"] for c in by_email(stack, "keep@hs.test")] == ["Keep"]
    # Written without a read, the edit went through to the survivor (HubSpot aliases a merged-away id): undone.
    assert [c["firstname"] for c in stack.hubspot_records("contacts")] == ["Keep"]
    retired = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=lose["id"])
    assert retired is not None
    assert retired.status == LinkStatus.DELETED


async def test_an_edit_of_the_customer_of_a_contact_merged_away_while_the_merge_webhook_was_lost_keeps_its_values(
    stack: Stack,
) -> None:
    keep = stack.hubspot_edit("contacts", "create", properties={"email": "keep@hs.test", "firstname": "Keep"})
    lose = stack.hubspot_edit("contacts", "create", properties={"email": "lose@hs.test", "firstname": "Lose"})
    await stack.settle()
    [customer] = by_email(stack, "lose@hs.test")
    stack.sandbox.hubspot.faults.update(webhook_drop_rate=1.0)
    stack.hubspot_edit("contacts", "merge", id=keep["id"], merge_id=lose["id"])
    await stack.settle()
    stack.sandbox.hubspot.faults.reset()
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "GivenName": "Edited"})  # its contact reads as keep's
    await stack.settle()
    assert [c["GivenName"] for c in by_email(stack, "lose@hs.test")] == ["Edited"]
    assert [c["GivenName"] for c in by_email(stack, "keep@hs.test")] == ["Keep"]


@pytest.mark.parametrize(
    "sync_overrides", [{"contacts": {"hubspot_to_qbo": {"require_hubspot_invoice": True}}}], indirect=True
)
async def test_contact_syncs_once_its_hubspot_invoice_is_opened(stack: Stack) -> None:
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "buyer@example.com", "firstname": "B"})
    await stack.settle()
    assert by_email(stack, "buyer@example.com") == []  # excluded: no invoice yet
    invoice = stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD"})
    line = stack.hubspot_edit("line_items", "create", properties={"name": "Work", "quantity": "1", "price": "10"})
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="line_items", to_id=line["id"])
    stack.hubspot_edit("invoices", "associate", id=invoice["id"], to_object_type="contacts", to_id=contact["id"])
    stack.hubspot_edit("invoices", "update", id=invoice["id"], properties={"hs_invoice_status": "open"})
    await stack.settle()
    [customer] = by_email(stack, "buyer@example.com")
    assert customer["GivenName"] == "B"


async def test_two_half_links_for_one_pair_become_one(stack: Stack) -> None:
    """A contact that failed alone (link without a customer) and its customer seen alone (link without a contact):
    the next change joins them into one link instead of failing on the customer id both would hold."""
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "half@example.com", "firstname": "H"})
    await stack.settle()
    [customer] = by_email(stack, "half@example.com")
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    await stack.store.save_link(dataclasses.replace(link, qbo_id=None, status=LinkStatus.FAILING))
    await stack.store.save_link(Link(connection=CONNECTION, kind=Kind.CONTACT, origin=Provider.QUICKBOOKS,
                                     qbo_id=customer["Id"]))  # fmt: skip
    stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"firstname": "Whole"})
    await stack.settle()
    [customer] = by_email(stack, "half@example.com")
    assert customer["GivenName"] == "Whole"
    joined = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=customer["Id"])
    assert joined is not None
    assert (joined.hubspot_id, joined.status) == (contact["id"], LinkStatus.SYNCED)


def interleaved(monkeypatch: pytest.MonkeyPatch, client: type[Any], method: str, other: Awaitable[object]) -> None:
    """The first call of `client.method` runs `other` to the end between carrying out the read and returning it."""
    real = getattr(client, method)
    pending = [other]

    async def read_then_let_the_other_apply_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = await real(self, *args, **kwargs)
        if pending:
            await pending.pop()
        return answer

    monkeypatch.setattr(client, method, read_then_let_the_other_apply_run)


@pytest.mark.parametrize("in_process_worker", [False])
@pytest.mark.parametrize("edited_in", [Provider.HUBSPOT, Provider.QUICKBOOKS])
async def test_a_stale_read_racing_the_other_sides_apply_never_writes_the_old_value_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, edited_in: Provider
) -> None:
    # The two sides of a pair are two pending keys, so two workers can apply them at once: here the side that did
    # not change (a late event: the customer's creation, say) reads its record just before the other side's apply
    # syncs the user's newer edit over it.
    engine = stack.worker.engine
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "race@example.com", "city": "Old"})
    hubspot_key = PendingKey(CONNECTION, Kind.CONTACT, Provider.HUBSPOT, contact["id"])
    await engine.apply(hubspot_key, {})
    [customer] = by_email(stack, "race@example.com")
    qbo_key = PendingKey(CONNECTION, Kind.CONTACT, Provider.QUICKBOOKS, customer["Id"])
    client: type[Any]
    if edited_in is Provider.HUBSPOT:
        stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"city": "New"})
        syncing, stale, client, read = hubspot_key, qbo_key, QboClient, "read"
    else:
        stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "BillAddr": {"City": "New"}})
        syncing, stale, client, read = qbo_key, hubspot_key, HubSpotClient, "get"

    interleaved(monkeypatch, client, read, engine.apply(syncing, {}))
    try:
        await engine.apply(stale, {})
    except StaleLink:  # the link changed under it: the retry policy reruns a conflict at once
        await engine.apply(stale, {})

    [contact_now] = [c for c in stack.hubspot_records("contacts") if c["id"] == contact["id"]]
    assert contact_now["city"] == "New"
    assert by_email(stack, "race@example.com")[0]["BillAddr"]["City"] == "New"


# --- matching never guesses -------------------------------------------------------------------------------------------


def bookkeeper_customers(stack: Stack) -> list[str]:
    """Two unrelated customers whose books one bookkeeper keeps: the same email on both."""
    email = {"PrimaryEmailAddr": {"Address": "books@keeper.test"}}
    first = stack.qbo_edit("Customer", "create", {"DisplayName": "Alpha Bakery", "GivenName": "Ann", **email})
    second = stack.qbo_edit("Customer", "create", {"DisplayName": "Beta Garage", "GivenName": "Ben", **email})
    return [first["Id"], second["Id"]]


async def test_shared_email_needs_review(stack: Stack) -> None:
    ids = bookkeeper_customers(stack)
    await stack.settle()
    for customer_id in ids:  # neither customer becomes the email's contact: which one would be a guess
        link = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=customer_id)
        assert link is not None
        assert link.status == LinkStatus.NEEDS_REVIEW
    stack.clear_request_logs()
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "books@keeper.test", "firstname": "Kim",
                                                                    "lastname": "Keeper"})  # fmt: skip
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    assert (link.status, link.qbo_id) == (LinkStatus.NEEDS_REVIEW, None)
    assert sorted(c.id for c in link.candidates) == sorted(ids)
    assert "matches 2 QuickBooks customers" in (link.error_message or "")
    assert {c["GivenName"] for c in by_email(stack, "books@keeper.test")} == {"Ann", "Ben"}
    # A later change writes nothing either: the record stays needing review.
    stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"phone": "+1 555 0199"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    after = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert after is not None
    assert after.status == LinkStatus.NEEDS_REVIEW


async def test_needs_review_resolved_by_hsqbo_review(stack: Stack) -> None:
    alpha, beta = bookkeeper_customers(stack)
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "books@keeper.test", "firstname": "Kim"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}  # nothing written before the decision
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    assert link.status == LinkStatus.NEEDS_REVIEW
    with pytest.raises(SystemExit, match="not a candidate"):
        await review(stack, "resolve", str(link.id), "--pick", "999")
    await review(stack, "resolve", str(link.id), "--pick", beta)
    await stack.settle()
    resolved = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert resolved is not None
    assert (resolved.status, resolved.qbo_id, resolved.candidates) == (LinkStatus.SYNCED, beta, ())
    [garage] = [c for c in customers(stack) if c["Id"] == beta]
    [bakery] = [c for c in customers(stack) if c["Id"] == alpha]
    assert (garage["GivenName"], bakery["GivenName"]) == ("Kim", "Ann")  # the picked one only
    activity = await stack.store.activity(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    [overwritten] = [line for line in activity if line.action == "overwritten"]
    assert "first_name: 'Ben' → 'Kim'" in overwritten.detail  # kept, so an operator can undo it


async def test_needs_review_excluded_by_an_operator(stack: Stack) -> None:
    bookkeeper_customers(stack)
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "books@keeper.test", "firstname": "Kim"})
    await stack.settle()
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    await review(stack, "resolve", str(link.id), "--exclude")
    await stack.settle()
    excluded = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert excluded is not None
    assert (excluded.status, excluded.error_message) == (LinkStatus.EXCLUDED, "excluded by an operator")
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}


async def test_inactive_customer_matched_no_duplicate(stack: Stack) -> None:
    stack.qbo_edit("Customer", "create", {"DisplayName": "Dormant Co", "Active": False,
                                          "PrimaryEmailAddr": {"Address": "dormant@example.com"}})  # fmt: skip
    await stack.settle()
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "dormant@example.com", "firstname": "Dee"})
    await stack.settle()
    [customer] = by_email(stack, "dormant@example.com")  # matched, not a second customer
    assert customer["Active"] is True  # the live HubSpot contact wins: reactivated
    assert customer["GivenName"] == "Dee"
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    assert (link.status, link.qbo_id) == (LinkStatus.SYNCED, customer["Id"])


async def test_company_only_customer_reaches_hubspot(stack: Stack) -> None:
    created = stack.qbo_edit("Customer", "create", {"DisplayName": "Northwind", "CompanyName": "Northwind Traders"})
    await stack.settle()
    [contact] = [c for c in stack.hubspot_records("contacts") if c.get("company") == "Northwind Traders"]
    assert contact["lastname"] == "Northwind"  # DisplayName: HubSpot needs a name or an email
    assert not contact.get("email")
    stack.clear_request_logs()
    stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"phone": "+1 555 0142"})
    await stack.settle()
    [customer] = [c for c in customers(stack) if c["Id"] == created["Id"]]
    assert "FamilyName" not in customer  # the DisplayName read back as lastname is not written back
    assert customer["PrimaryPhone"]["FreeFormNumber"] == "+1 555 0142"
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}


@pytest.mark.parametrize("sync_overrides", [with_strategy("disambiguate")], indirect=True)
async def test_long_company_name_disambiguated(stack: Stack) -> None:
    name = "Very Long Holdings " + "x" * 181  # 200 characters
    company_with_contacts(stack, name, "first@long.test")
    await stack.settle()
    company_with_contacts(stack, name, "second@long.test")
    await stack.settle()
    names = sorted(c["DisplayName"] for c in customers(stack))
    assert names == [name, f"{name} (Person0 Smith)"]  # QBO's 500: whole, distinct


async def test_needs_review_resolved_by_creating_a_new_customer(stack: Stack) -> None:
    bookkeeper_customers(stack)
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "books@keeper.test", "firstname": "Kim",
                                                                    "lastname": "Keeper"})  # fmt: skip
    await stack.settle()
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    await review(stack, "resolve", str(link.id), "--create-new")
    await stack.settle()
    made = [c for c in by_email(stack, "books@keeper.test") if c.get("GivenName") == "Kim"]
    assert [c["DisplayName"] for c in made] == ["Kim Keeper"]
    assert {c["GivenName"] for c in by_email(stack, "books@keeper.test")} == {"Ann", "Ben", "Kim"}
    resolved = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert resolved is not None
    assert (resolved.status, resolved.qbo_id) == (LinkStatus.SYNCED, made[0]["Id"])

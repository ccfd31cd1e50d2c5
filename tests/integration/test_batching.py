"""Batched applies end to end (issue #13): a burst of changes to one connection's records becomes batch calls,
counted in the sandboxes' request logs; a burst of new contacts becomes batches of QBO creates, matched by email in
one query per batch; a burst of new QBO customers becomes HubSpot batch creates, their email lookups HubSpot batch
reads; a batch of creates whose answer is lost (QBO's or HubSpot's) makes each record once; a batch item QBO
refuses, or a create HubSpot refuses, fails its own record alone; our own writes' echoes cost no read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.clients.qbo import CREATE_RESENDS
from shared.domain import Kind
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack, eventually

pytestmark = pytest.mark.integration

BURST = 8


def requests(log: Any, *, method: str, path_end: str) -> int:
    return sum(1 for r in log.list() if r.method == method and r.path.endswith(path_end))


def customer_by_email(stack: Stack, email: str) -> dict[str, Any] | None:
    found = [c for c in stack.qbo_entities("Customer") if (c.get("PrimaryEmailAddr") or {}).get("Address") == email]
    return found[0] if len(found) == 1 else None


async def linked_contacts(stack: Stack, count: int) -> list[str]:
    """`count` contacts made in HubSpot and synced to QBO customers; their ids."""
    ids = [
        stack.hubspot_edit("contacts", "create", properties={"email": f"b{n}@example.com", "firstname": f"B{n}"})["id"]
        for n in range(count)
    ]
    await stack.settle()
    assert all(customer_by_email(stack, f"b{n}@example.com") for n in range(count))
    return [str(contact_id) for contact_id in ids]


async def test_a_burst_of_contact_edits_becomes_batch_calls(stack: Stack) -> None:
    contacts = await linked_contacts(stack, BURST)
    stack.clear_request_logs()
    for n, contact_id in enumerate(contacts):
        stack.hubspot_edit("contacts", "update", id=contact_id, properties={"lastname": f"Burst{n}"})
    await stack.settle()
    for n in range(BURST):
        assert (customer_by_email(stack, f"b{n}@example.com") or {}).get("FamilyName") == f"Burst{n}"
    qbo, hubspot = stack.sandbox.qbo.requests, stack.sandbox.hubspot.requests
    assert requests(qbo, method="POST", path_end="/batch") >= 1
    assert requests(hubspot, method="POST", path_end="/contacts/batch/read") >= 1
    # Alone, each record costs 2 calls: the contact's read and the customer's update (its link is current, its echo
    # reads nothing). Together (the first apply may start alone): 4 calls for the 8 on an idle machine.
    assert len(qbo.list()) + len(hubspot.list()) <= BURST


async def test_a_batch_item_qbo_refuses_fails_its_record_alone(stack: Stack) -> None:
    contacts = await linked_contacts(stack, 4)
    refused = customer_by_email(stack, "b3@example.com")  # the last edited: never the burst's lone first apply
    assert refused is not None
    stack.sandbox.qbo.faults.update(batch_item_fault=f'"Id": "{refused["Id"]}"')
    for sandbox in (stack.sandbox.qbo, stack.sandbox.hubspot):  # calls that take time: the applies meet at the next
        sandbox.faults.update(latency_ms=(30, 30))
    stack.clear_request_logs()
    for n, contact_id in enumerate(contacts):
        stack.hubspot_edit("contacts", "update", id=contact_id, properties={"lastname": f"Item{n}"})
    await stack.settle()
    assert requests(stack.sandbox.qbo.requests, method="POST", path_end="/batch") >= 1
    for n in (0, 1, 2):
        assert (customer_by_email(stack, f"b{n}@example.com") or {}).get("FamilyName") == f"Item{n}"
    assert (customer_by_email(stack, "b3@example.com") or {}).get("FamilyName") != "Item3"

    async def failing() -> bool:
        link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contacts[3])
        return link is not None and link.status == LinkStatus.FAILING

    await eventually(failing)


def reads(log: Any) -> int:
    return sum(1 for r in log.list() if r.method == "GET" or r.path.endswith("/batch/read") or "/search" in r.path)


async def test_an_echo_of_our_own_write_costs_no_read_nor_does_a_current_counterpart(stack: Stack) -> None:
    [contact_id] = await linked_contacts(stack, 1)
    stack.clear_request_logs()
    stack.hubspot_edit("contacts", "update", id=contact_id, properties={"lastname": "Echo"})
    await stack.settle()
    assert (customer_by_email(stack, "b0@example.com") or {}).get("FamilyName") == "Echo"
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}
    # The customer is as our create answered (its link is current): the update uses that SyncToken, unread; its
    # webhook (our echo) is answered from the update's answer.
    assert reads(stack.sandbox.qbo.requests) == 0

    customer = customer_by_email(stack, "b0@example.com")
    assert customer is not None
    stack.clear_request_logs()
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "GivenName": "Booked"})
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 1, "quickbooks": 0}
    assert reads(stack.sandbox.hubspot.requests) == 0  # the link is settled: written unread; its echo dropped unread


async def test_a_counterpart_changed_in_qbo_since_our_write_is_read_after_the_stale_refusal(stack: Stack) -> None:
    [contact_id] = await linked_contacts(stack, 1)
    customer = customer_by_email(stack, "b0@example.com")
    assert customer is not None
    stack.sandbox.qbo.webhooks.set_url(None)  # the QBO edit's webhook is lost: only the 5010 can tell
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "CompanyName": "Booked"})
    stack.hubspot_edit("contacts", "update", id=contact_id, properties={"lastname": "Stale"})
    await stack.settle()
    now = customer_by_email(stack, "b0@example.com") or {}
    assert (now.get("FamilyName"), now.get("CompanyName")) == ("Stale", "Booked")  # both edits kept
    [contact] = [c for c in stack.hubspot_records("contacts") if c["id"] == contact_id]
    assert contact["company"] == "Booked"


def batch_creates(log: Any) -> list[int]:
    """The number of create items of each QBO /batch call."""
    counts = []
    for request in log.list():
        if request.method == "POST" and request.path.endswith("/batch") and request.body:
            items = json.loads(request.body)["BatchItemRequest"]
            counts.append(sum(1 for item in items if item.get("operation") == "create"))
    return [count for count in counts if count]


def slowed(stack: Stack) -> None:
    """Calls that take time, as real ones do: the applies in flight meet at their next call."""
    for sandbox in (stack.sandbox.qbo, stack.sandbox.hubspot):
        sandbox.faults.update(latency_ms=(30, 30))


async def test_a_burst_of_new_contacts_becomes_batch_creates_matched_in_one_query_per_batch(stack: Stack) -> None:
    slowed(stack)
    stack.clear_request_logs()
    for n in range(BURST):
        stack.hubspot_edit("contacts", "create", properties={"email": f"n{n}@example.com", "firstname": f"N{n}"})
    await stack.settle()
    assert all(customer_by_email(stack, f"n{n}@example.com") for n in range(BURST))
    qbo = stack.sandbox.qbo.requests
    creates = batch_creates(qbo)
    assert max(creates, default=0) >= 2  # creates of applies in flight together went as one /batch
    assert requests(qbo, method="POST", path_end="/customer") + sum(creates) == BURST  # each customer made once
    matches = [r for r in qbo.list() if r.path.endswith("/query") and "PrimaryEmailAddr" in r.query]
    assert len(matches) < BURST  # by email, one IN query per batch of applies
    assert all("+IN+" in r.query or "%20IN%20" in r.query for r in matches)


@pytest.mark.parametrize("settings_overrides", [{"api_timeout_seconds": 0.5}], indirect=True)
async def test_a_batch_of_creates_whose_answer_is_lost_makes_each_customer_once(stack: Stack) -> None:
    """QBO makes the customers of a /batch but its answer never comes (each identical resend's neither): the
    applies retry, find each customer their lost batch made (no email to match by: by their names and values), and
    adopt it. No customer is made twice, none renamed."""
    slowed(stack)
    qbo = stack.sandbox.qbo
    qbo.faults.update(held_answer_ms=1_500, held_answer_path="/batch")
    stack.clear_request_logs()
    for n in range(4):
        stack.hubspot_edit("contacts", "create", properties={"firstname": f"Lost{n}", "lastname": "Held"})
    await eventually(lambda: requests(qbo.requests, method="POST", path_end="/batch") >= 1 + CREATE_RESENDS)
    qbo.faults.update(held_answer_ms=0.0, held_answer_path="")
    await stack.settle()
    made = [c for c in stack.qbo_entities("Customer") if c.get("FamilyName") == "Held"]
    assert sorted((c["GivenName"], c["DisplayName"]) for c in made) == [(f"Lost{n}", f"Lost{n} Held") for n in range(4)]
    contacts = stack.hubspot_records("contacts")
    assert len(contacts) == 4  # nor a customer's webhook, come before its create's retry, made a second contact
    for contact in contacts:
        link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
        assert link is not None
        assert (link.status, link.qbo_id in {c["Id"] for c in made}) == (LinkStatus.SYNCED, True)


async def test_a_create_item_qbo_refuses_fails_its_record_alone(stack: Stack) -> None:
    slowed(stack)
    stack.sandbox.qbo.faults.update(batch_item_fault='"GivenName": "F3"')  # the last made: never a lone first apply
    stack.clear_request_logs()
    contacts = [
        stack.hubspot_edit("contacts", "create", properties={"email": f"f{n}@example.com", "firstname": f"F{n}"})["id"]
        for n in range(4)
    ]
    await stack.settle()
    assert max(batch_creates(stack.sandbox.qbo.requests), default=0) >= 2
    assert [bool(customer_by_email(stack, f"f{n}@example.com")) for n in range(4)] == [True, True, True, False]

    async def failing() -> bool:
        link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=str(contacts[3]))
        return link is not None and link.status == LinkStatus.FAILING

    await eventually(failing)


def new_customers(stack: Stack, emails: list[str]) -> None:
    for n, email in enumerate(emails):
        stack.qbo_edit("Customer", "create", {"DisplayName": f"New {n}", "PrimaryEmailAddr": {"Address": email}})


def contacts_with(stack: Stack, email: str) -> list[dict[str, str]]:
    return [c for c in stack.hubspot_records("contacts") if c.get("email") == email]


async def test_a_burst_of_new_customers_becomes_batch_creates_its_email_lookups_batch_reads(stack: Stack) -> None:
    emails = [f"n{n}@example.com" for n in range(BURST)]
    slowed(stack)
    stack.clear_request_logs()
    new_customers(stack, emails)
    await stack.settle()
    assert all(len(contacts_with(stack, email)) == 1 for email in emails)
    hubspot = stack.sandbox.hubspot.requests
    assert requests(hubspot, method="POST", path_end="/contacts/batch/create") >= 1
    assert requests(hubspot, method="POST", path_end="/contacts") < BURST // 2  # the burst's lone first apply, say
    lookups = [r for r in hubspot.list() if r.path.endswith("/contacts/batch/read")]
    assert lookups
    assert not [r for r in hubspot.list() if r.method == "GET" and "idProperty=email" in r.query]


async def test_a_create_hubspot_refuses_fails_its_record_alone(stack: Stack) -> None:
    emails = [f"r{n}@example.com" for n in range(3)] + ["refused.r3@"]  # QBO takes it, HubSpot refuses it
    slowed(stack)
    stack.clear_request_logs()
    new_customers(stack, emails)
    await stack.settle()
    assert requests(stack.sandbox.hubspot.requests, method="POST", path_end="/contacts/batch/create") >= 1
    assert all(len(contacts_with(stack, email)) == 1 for email in emails[:3])
    [refused] = [c for c in stack.qbo_entities("Customer") if c["DisplayName"] == "New 3"]

    async def failing() -> bool:
        link = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=str(refused["Id"]))
        return link is not None and link.status == LinkStatus.FAILING

    await eventually(failing)


@pytest.mark.parametrize("settings_overrides", [{"api_timeout_seconds": 0.5}], indirect=True)
@pytest.mark.parametrize(
    "sync_overrides",
    [{"products": {"direction": "two_way", "income_account": "Services", "require_sku": False}}],
    indirect=True,
)
async def test_a_batch_of_item_creates_whose_answer_is_lost_makes_each_item_once(stack: Stack) -> None:
    """As for customers: products with no SKU to match by, their batch's answer lost; each item made once, adopted by
    its product's retry, and no item's webhook makes a second product."""
    slowed(stack)
    qbo = stack.sandbox.qbo
    qbo.faults.update(held_answer_ms=1_500, held_answer_path="/batch")
    stack.clear_request_logs()
    for n in range(4):
        stack.hubspot_edit("products", "create", properties={"name": f"Held {n}", "price": "10"})
    await eventually(lambda: requests(qbo.requests, method="POST", path_end="/batch") >= 1 + CREATE_RESENDS)
    qbo.faults.update(held_answer_ms=0.0, held_answer_path="")
    await stack.settle()
    assert sorted(i["Name"] for i in stack.qbo_entities("Item") if i["Name"].startswith("Held")) == [
        f"Held {n}" for n in range(4)
    ]
    assert sorted(p["name"] for p in stack.hubspot_records("products")) == [f"Held {n}" for n in range(4)]


async def test_a_batch_create_whose_answer_is_lost_makes_no_duplicate_contact(stack: Stack) -> None:
    emails = [f"l{n}@example.com" for n in range(BURST)]
    slowed(stack)
    stack.sandbox.hubspot.faults.update(lost_answers=1, lost_answer_path="/contacts/batch/create")
    new_customers(stack, emails)
    await stack.settle()
    assert stack.sandbox.hubspot.faults.config.lost_answers == 0  # a batch was made, its answer lost
    assert [len(contacts_with(stack, email)) for email in emails] == [1] * BURST
    for customer in stack.qbo_entities("Customer"):
        link = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=str(customer["Id"]))
        assert link is not None
        assert link.hubspot_id == contacts_with(stack, customer["PrimaryEmailAddr"]["Address"])[0]["id"]


@pytest.mark.parametrize("sync_overrides", [{"products": {}}], indirect=True)
async def test_a_batch_create_of_products_whose_answer_is_lost_makes_no_duplicate_product(stack: Stack) -> None:
    [income] = [a for a in stack.qbo_entities("Account") if a["Name"] == "Sales of Product Income"]
    slowed(stack)
    stack.sandbox.hubspot.faults.update(lost_answers=1, lost_answer_path="/products/batch/create")
    stack.clear_request_logs()
    for n in range(BURST):
        stack.qbo_edit("Item", "create", {"Name": f"Lost {n}", "Sku": f"L-{n}", "Type": "Service",
                                          "IncomeAccountRef": {"value": income["Id"]}})  # fmt: skip
    await stack.settle()
    assert stack.sandbox.hubspot.faults.config.lost_answers == 0
    skus = sorted(p.get("hs_sku") or "" for p in stack.hubspot_records("products"))
    assert skus == sorted(f"L-{n}" for n in range(BURST))  # each once
    searches = requests(stack.sandbox.hubspot.requests, method="POST", path_end="/products/search")
    assert searches < BURST  # SKU lookups met in IN searches

"""The first sync's planner over scripted API answers: every record not in sync gets the rules' decision (link with
the matched record, create, update, review), a pair matched from both sides is one link, a record in sync is only
counted, and planning calls no write endpoint. Applying a decided plan records the decisions and queues every
record; an undecided one is refused."""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Any

import pytest

from services.poller._first_sync import apply_plan, make_plan
from services.poller._plan import Action, PlanError, resolve
from shared.clients import Request, Response
from shared.domain import Kind, Provider
from shared.store import Link, LinkStatus, ReviewDecision, Store
from tests.clients.answers import json_answer, json_of, path_of, query_of
from tests.poller.conftest import CONNECTION, Queued, poll_on

CUSTOMERS: list[dict[str, Any]] = [
    {"Id": "1", "SyncToken": "0", "DisplayName": "Ann Lee", "PrimaryEmailAddr": {"Address": "ann@example.com"}},
    {"Id": "2", "SyncToken": "0", "DisplayName": "Bob 1", "PrimaryEmailAddr": {"Address": "bob@example.com"}},
    {"Id": "3", "SyncToken": "0", "DisplayName": "Bob 2", "PrimaryEmailAddr": {"Address": "bob@example.com"}},
    {"Id": "5", "SyncToken": "2", "DisplayName": "Linked"},  # linked, changed since
    {"Id": "6", "SyncToken": "0", "DisplayName": "In sync"},
]
STAMP = "2026-11-20T00:00:00Z"
CONTACTS = {
    "7": {"email": "ann@example.com", "firstname": "Ann", "lastname": "Lee"},
    "8": {"email": "carol@example.com", "firstname": "Carol"},
}


def answers(request: Request) -> Response:
    path = path_of(request)
    if path.endswith("/query"):
        statement = dict(query_of(request))["query"]
        if "FROM Customer" not in statement:
            return json_answer(200, {"QueryResponse": {}})
        rows = CUSTOMERS
        if "PrimaryEmailAddr IN (" in statement:
            emails = statement.split("PrimaryEmailAddr IN (")[1].split(")")[0].replace("'", "").split(", ")
            rows = [c for c in CUSTOMERS if c.get("PrimaryEmailAddr", {}).get("Address") in emails]
        return json_answer(200, {"QueryResponse": {"Customer": rows}})
    if path.endswith("/contacts/search"):
        found = [{"id": i, "properties": {}, "updatedAt": STAMP} for i in CONTACTS]
        return json_answer(200, {"total": len(found), "results": found})
    if path.endswith("/contacts/batch/read"):
        ids = [item["id"] for item in json_of(request)["inputs"]]
        results = [{"id": i, "properties": CONTACTS[i], "createdAt": STAMP, "updatedAt": STAMP} for i in ids]
        return json_answer(200, {"status": "COMPLETE", "results": results})
    if "/crm/v3/objects/contacts/" in path:  # by email (idProperty=email)
        email = urllib.parse.unquote(path.rsplit("/", 1)[1])
        for contact_id, properties in CONTACTS.items():
            if properties["email"] == email:
                return json_answer(200, {"id": contact_id, "properties": properties, "updatedAt": STAMP})
        return json_answer(404, {"status": "error", "message": "not found", "category": "OBJECT_NOT_FOUND"})
    return json_answer(200, {"total": 0, "results": []})


async def linked(store: Store) -> None:
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="90",
                               qbo_id="5", qbo_version="1"))  # fmt: skip
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="91",
                               qbo_id="6", qbo_version="0"))  # fmt: skip


async def test_the_plan_holds_the_rules_decisions_and_writes_nothing(store: Store) -> None:
    await linked(store)
    poll, _, transport = poll_on(store, answers)
    links_before = await store.list_links("acme")

    plan = await make_plan(poll.ctx, since=None, now=1000.0)

    decided = {entry.key: (entry.action, entry.matched.id if entry.matched else None) for entry in plan.entries}
    assert decided == {
        "contact/hubspot/7": (Action.LINK, "1"),  # ann, by email; the customer's own entry is the same link
        "contact/hubspot/8": (Action.CREATE, None),
        "contact/quickbooks/2": (Action.REVIEW, None),  # bob's email is on two customers
        "contact/quickbooks/3": (Action.REVIEW, None),
        "contact/quickbooks/5": (Action.UPDATE, "90"),
    }
    assert plan.in_sync == 1
    [ann] = [entry for entry in plan.entries if entry.id == "7"]
    assert (ann.label, ann.matched.label if ann.matched else None) == ("Ann Lee <ann@example.com>",
                                                                       "Ann Lee <ann@example.com>")  # fmt: skip
    [bob] = [entry for entry in plan.entries if entry.id == "2"]
    assert bob.reason == "bob@example.com is shared with 3 on this side"
    writes = [r for r in transport.requests if r.method != "GET" and not path_of(r).endswith(("/search", "/read"))]
    assert writes == []
    assert await store.list_links("acme") == links_before  # nor to the store


async def test_a_decided_plan_records_the_decisions_and_queues_every_record(store: Store) -> None:
    poll, _, _ = poll_on(store, answers)
    plan = await make_plan(poll.ctx, since=None, now=1000.0)
    queued = Queued()
    with pytest.raises(PlanError, match=r"contact/quickbooks/2 .* needs a decision"):
        await apply_plan(store, CONNECTION, plan, queued.publish)
    assert queued == []

    plan = resolve(plan, "contact/quickbooks/2", ReviewDecision.CREATE_NEW)
    plan = resolve(plan, "contact/quickbooks/3", ReviewDecision.EXCLUDE)
    assert await apply_plan(store, CONNECTION, plan, queued.publish) == len(plan.entries)

    assert sorted((e.provider, e.object_type, e.object_id) for e in queued) == sorted(
        (entry.side, entry.object_type, entry.id) for entry in plan.entries
    )
    assert {e.occurred_at_ms for e in queued} == {0}  # a first sync is no lag
    created_new = await store.get_link("acme", Kind.CONTACT, qbo_id="2")
    assert created_new is not None
    assert (created_new.status, created_new.review_decision) == (LinkStatus.NEEDS_REVIEW, ReviewDecision.CREATE_NEW)
    excluded = await store.get_link("acme", Kind.CONTACT, qbo_id="3")
    assert excluded is not None
    assert excluded.review_decision == ReviewDecision.EXCLUDE


async def test_a_plan_of_another_connection_is_refused(store: Store) -> None:
    poll, _, _ = poll_on(store, answers)
    plan = dataclasses.replace(await make_plan(poll.ctx, since=None, now=1000.0), connection="other")
    with pytest.raises(PlanError, match="the plan is for connection 'other', not 'acme'"):
        await apply_plan(store, CONNECTION, plan, Queued().publish)

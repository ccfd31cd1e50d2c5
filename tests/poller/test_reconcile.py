"""Reconciliation: synced links' HubSpot records read back in batches; a deletion queued for each one gone; due once
every `reconcile_seconds` per connection."""

from __future__ import annotations

import dataclasses

from services.poller._reconcile import RECONCILED_AT, HubSpotDeletions, reconcile
from shared.clients import Request, Response
from shared.envelope import Operation, Provider
from shared.store import Kind, Link, Store
from tests.clients.answers import json_answer, json_of, path_of
from tests.poller.conftest import CONNECTION, NOW, RECONCILE_SECONDS, poll_on


def only_100_exists(request: Request) -> Response:
    """Contact 100 exists; every other id asked for is gone."""
    if path_of(request).endswith("/contacts/batch/read"):
        asked = [item["id"] for item in json_of(request)["inputs"]]
        return json_answer(200, {"status": "COMPLETE", "results": [{"id": i, "properties": {}} for i in asked
                                                                    if i == "100"]})  # fmt: skip
    return json_answer(200, {"status": "COMPLETE", "results": []})


async def linked(store: Store, *hubspot_ids: str) -> None:
    for n, hubspot_id in enumerate(hubspot_ids):
        await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT,
                                   hubspot_id=hubspot_id, qbo_id=str(n + 1)))  # fmt: skip


async def test_a_deletion_is_queued_for_each_linked_record_that_is_gone(store: Store) -> None:
    await linked(store, "100", "101")
    poll, queued, _ = poll_on(store, only_100_exists)
    [contacts] = [t for t in await reconcile(poll.ctx, queued.publish, now=poll.now) if t.object_type == "contact"]
    assert (contacts.found, contacts.in_sync, contacts.queued) == (2, 1, 1)
    assert [(e.object_type, e.object_id, e.operation) for e in queued] == [("contact", "101", Operation.DELETED)]


async def test_the_poller_reconciles_once_per_period(store: Store) -> None:
    await linked(store, "101")
    poll, queued, _ = poll_on(store, only_100_exists)
    await HubSpotDeletions().poll(poll)
    assert len(queued) == 1
    assert await store.get_cursor(CONNECTION.name, RECONCILED_AT) == str(NOW.timestamp())

    await HubSpotDeletions().poll(poll)  # the same instant: not due
    assert len(queued) == 1
    later, queued_later, _ = poll_on(store, only_100_exists)
    await HubSpotDeletions().poll(dataclasses.replace(later, now=later.now + RECONCILE_SECONDS))  # due again
    assert len(queued_later) == 1

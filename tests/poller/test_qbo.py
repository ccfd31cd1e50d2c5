"""QBO changes by CDC: one call for every synced entity, one per entity when an answer may be cut, a full answer
followed from its latest change, the 30-day limit, and the link check that keeps synced versions out of the queue."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from services.poller._qbo import CDC_MAX_OBJECTS, QboChanges, cursor_name, in_sync
from shared.clients import Request, Response
from shared.domain import Kind, PendingKey, Provider
from shared.envelope import Operation
from shared.metrics import WEBHOOKS_MISSED
from shared.store import Link, LinkStatus, Store
from shared.syncconfig import ConnectionSettings
from tests.clients.answers import json_answer, query_of
from tests.poller.conftest import CONNECTION, NOW, OVERLAP_SECONDS, poll_on

SERVER_TIME = NOW - dt.timedelta(seconds=1)


def customer(customer_id: int, updated: dt.datetime, sync_token: str = "0") -> dict[str, Any]:
    return {"Id": str(customer_id), "SyncToken": sync_token, "MetaData": {"LastUpdatedTime": updated.isoformat()}}


def cdc_answer(entity: str, rows: list[dict[str, Any]]) -> Response:
    response: dict[str, Any] = {"startPosition": 1, "maxResults": len(rows)}
    if rows:
        response[entity] = rows
    return json_answer(200, {"CDCResponse": [{"QueryResponse": [response]}], "time": SERVER_TIME.isoformat()})


def changed_since(request: Request) -> dt.datetime:
    return dt.datetime.fromisoformat(dict(query_of(request))["changedSince"])


def customers_only(rows_by_call: list[list[dict[str, Any]]]) -> Any:
    """Answers the CDC calls asking for customers in order with `rows_by_call`; other entities have no changes."""

    def handler(request: Request) -> Response:
        entities = dict(query_of(request))["entities"].split(",")
        return cdc_answer("Customer", rows_by_call.pop(0) if "Customer" in entities else [])

    return handler


async def test_each_synced_entity_is_watched_from_the_first_poll_then_from_the_last_answer_less_the_overlap(
    store: Store,
) -> None:
    poll, queued, transport = poll_on(store, customers_only([[customer(1, NOW - dt.timedelta(minutes=1))]]))
    assert await QboChanges().poll(poll) == SERVER_TIME.timestamp()

    assert [dict(query_of(r))["entities"] for r in transport.requests] == ["Customer,Item,Invoice,Payment"]
    overlap = dt.timedelta(seconds=OVERLAP_SECONDS)
    assert {changed_since(r) for r in transport.requests} == {NOW - overlap}  # not the whole account's history
    [found] = queued
    assert (found.provider, found.object_type, found.object_id, found.operation) == (
        Provider.QUICKBOOKS, "customer", "1", Operation.UPDATED
    )  # fmt: skip
    assert await store.get_cursor(CONNECTION.name, cursor_name("Customer")) == (SERVER_TIME - overlap).isoformat()


async def test_an_answer_that_may_be_cut_is_asked_per_entity_and_followed_from_its_latest_change(store: Store) -> None:
    start = NOW - dt.timedelta(hours=1)
    await store.set_cursor(CONNECTION.name, cursor_name("Customer"), start.isoformat())
    full = [customer(n, start + dt.timedelta(seconds=n)) for n in range(CDC_MAX_OBJECTS)]
    rest = [customer(5000, NOW - dt.timedelta(minutes=1))]
    poll, queued, transport = poll_on(store, customers_only([full, full, rest]))
    await QboChanges().poll(poll)

    asked = [dict(query_of(r))["entities"] for r in transport.requests]
    assert asked == ["Customer,Item,Invoice,Payment", "Customer", "Customer", "Item", "Invoice", "Payment"]
    assert changed_since(transport.requests[2]) == start + dt.timedelta(seconds=CDC_MAX_OBJECTS - 1)
    assert len(queued) == CDC_MAX_OBJECTS + 1


async def test_a_cursor_older_than_cdcs_30_days_moves_forward(store: Store) -> None:
    await store.set_cursor(CONNECTION.name, cursor_name("Customer"), (NOW - dt.timedelta(days=40)).isoformat())
    poll, _, transport = poll_on(store, customers_only([[]]))
    await QboChanges().poll(poll)
    first = changed_since(transport.requests[0])
    assert NOW - dt.timedelta(days=30) < first < NOW - dt.timedelta(days=29)


async def test_a_version_the_link_shows_synced_or_written_by_us_is_not_queued(store: Store) -> None:
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="7",
                               qbo_id="1", qbo_version="3", qbo_written_sync_token="4"))  # fmt: skip
    rows = [customer(1, NOW, sync_token=token) for token in ("3", "4", "5")]
    poll, queued, _ = poll_on(store, customers_only([rows]))
    await QboChanges().poll(poll)
    assert [envelope.event_id.rsplit(":", 1)[1] for envelope in queued] == ["5"]


def test_a_deleted_record_is_in_sync_only_when_its_link_is_gone_or_deleted() -> None:
    deleted = {"Id": "1", "status": "Deleted", "MetaData": {"LastUpdatedTime": NOW.isoformat()}}
    link = Link(connection="acme", kind=Kind.INVOICE, origin=Provider.QUICKBOOKS, hubspot_id="7", qbo_id="1")
    assert in_sync(None, deleted)
    assert not in_sync(link, deleted)
    assert in_sync(dataclasses.replace(link, status=LinkStatus.DELETED), deleted)


async def test_only_old_changes_with_no_trace_of_their_webhook_count_as_missed(store: Store) -> None:
    """Customer 1: old, nothing pending, no link: missed. 2: old, but pending (its webhook is being synced). 3: old,
    failing, its link written after the change (the webhook came, the sync failed). 4: changed seconds ago: its
    webhook may still come, so it waits for the next poll. Three are queued; one counts."""
    old = NOW - dt.timedelta(minutes=5)
    await store.touch_pending(PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "2"), old.timestamp())
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id="3",
                               status=LinkStatus.FAILING))  # fmt: skip  # the store stamps updated_at: now, after `old`
    rows = [customer(1, old), customer(2, old), customer(3, old), customer(4, NOW - dt.timedelta(seconds=5))]
    poll, queued, _ = poll_on(store, customers_only([rows, rows]))
    poll = dataclasses.replace(poll, missed_webhook_grace_seconds=30.0)
    missed = WEBHOOKS_MISSED.labels("acme", Provider.QUICKBOOKS)
    before = missed._value.get()
    await QboChanges().poll(poll)
    assert sorted(envelope.object_id for envelope in queued) == ["1", "2", "3"]
    assert missed._value.get() == before + 1
    # The next poll, a minute later, finds them again (inside the overlap). Customer 1 is pending now (the worker took
    # the change the last poll queued): not counted twice. Customer 4 still has no trace: missed, queued.
    await store.touch_pending(PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "1"), NOW.timestamp())
    queued.clear()
    await QboChanges().poll(dataclasses.replace(poll, now=poll.now + 60))
    assert sorted(envelope.object_id for envelope in queued) == ["1", "2", "3", "4"]
    assert missed._value.get() == before + 2


def test_a_version_is_in_sync_whatever_the_links_status() -> None:
    """Excluded, failing, deleted or (the matching track's) any other status: the version decides."""
    row = customer(1, NOW, sync_token="3")
    base = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id="1", qbo_version="3")
    for status in LinkStatus:
        assert in_sync(dataclasses.replace(base, status=status), row)
        assert not in_sync(dataclasses.replace(base, status=status, qbo_version="2"), row)
    assert in_sync(dataclasses.replace(base, qbo_version="4"), row)  # an older version than one already seen
    assert not in_sync(dataclasses.replace(base, qbo_version=None), row)


def test_a_deletion_the_worker_already_saw_is_in_sync() -> None:
    deleted = {"Id": "1", "status": "Deleted", "MetaData": {"LastUpdatedTime": NOW.isoformat()}}
    excluded = Link(connection="acme", kind=Kind.INVOICE, origin=Provider.QUICKBOOKS, qbo_id="1",
                    status=LinkStatus.EXCLUDED, qbo_version="deleted")  # fmt: skip
    assert in_sync(excluded, deleted)
    assert not in_sync(dataclasses.replace(excluded, qbo_version="5"), deleted)


async def test_excluded_and_failing_records_are_queued_only_for_a_new_version(store: Store) -> None:
    for qbo_id, status in (("1", LinkStatus.EXCLUDED), ("2", LinkStatus.FAILING)):
        await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id=qbo_id,
                                   qbo_version="3", status=status, error_category="x"))  # fmt: skip
    rows = [customer(1, NOW, sync_token="3"), customer(2, NOW, sync_token="4")]
    poll, queued, _ = poll_on(store, customers_only([rows]))
    await QboChanges().poll(poll)
    assert [envelope.object_id for envelope in queued] == ["2"]


async def test_entities_with_their_own_cursors_are_asked_together_from_the_oldest(store: Store) -> None:
    older = NOW - dt.timedelta(minutes=30)
    await store.set_cursor(CONNECTION.name, cursor_name("Customer"), older.isoformat())
    await store.set_cursor(CONNECTION.name, cursor_name("Item"), (NOW - dt.timedelta(minutes=2)).isoformat())
    poll, queued, transport = poll_on(store, customers_only([[customer(1, older + dt.timedelta(minutes=1))]]))
    await QboChanges().poll(poll)
    [request] = transport.requests
    assert changed_since(request) == older
    assert [envelope.object_id for envelope in queued] == ["1"]
    covered = (SERVER_TIME - dt.timedelta(seconds=OVERLAP_SECONDS)).isoformat()
    assert {await store.get_cursor(CONNECTION.name, cursor_name(name)) for name in ("Customer", "Item")} == {covered}


def test_one_poll_costs_one_read_whatever_the_synced_entities() -> None:
    assert QboChanges.reads_per_poll(CONNECTION) == 1
    one_way = {"direction": "hubspot_to_qbo"}
    nothing_from_qbo = ConnectionSettings(
        name="acme", hubspot_portal_id="62515", qbo_realm_id="9130", setup_date=dt.date(2026, 11, 1),
        contacts=one_way, products=one_way, invoices=one_way, payments=one_way,
    )  # fmt: skip
    assert QboChanges.reads_per_poll(nothing_from_qbo) == 0

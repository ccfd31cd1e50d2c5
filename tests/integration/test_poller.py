"""The poller end to end: webhooks lost on purpose (the sandboxes drop every batch), changes made on both sides, one
poll (QBO CDC, HubSpot search) queues them through RabbitMQ to the worker, which syncs each once; and the backfill
(the initial sync) of records that existed before the connection.

The incumbent syncs "at regular intervals"; hsqbo syncs from webhooks in seconds and polls only to catch what they
missed, so these tests are named after that promise."""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.poller import Poller, backfill, reconcile
from shared.bus import Publisher
from shared.clients import AiohttpTransport
from shared.connections import ContextFactory
from shared.domain import Kind, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.metrics import WEBHOOKS_MISSED
from shared.store import LinkStatus
from tests.integration.checker import Workload, assert_applied_once, classify
from tests.integration.conftest import CONNECTION, Stack
from tests.integration.test_invoices import (
    customer_with_contact,
    hubspot_copy,
    item,
    line_items,
    qbo_invoice,
    sales_line,
)
from tests.integration.test_worker_crash import worker_environment

pytestmark = pytest.mark.integration


class RecordingPoller:
    """A poller on the stack whose queued envelopes are also kept in `queued`. Its clock runs `ahead` of the real one:
    by default past HSQBO_MISSED_WEBHOOK_GRACE_SECONDS, so a change whose webhook was lost is queued by the next poll
    instead of waiting one more poll for it."""

    def __init__(self, poller: Poller, queued: list[ChangeEnvelope], ahead: float) -> None:
        self.poller = poller
        self.queued = queued
        self.ahead = ahead
        poller.clock = lambda: time.time() + self.ahead

    async def poll(self) -> list[ChangeEnvelope]:
        """One poll; the envelopes it queued."""
        self.queued.clear()
        await self.poller.poll_once()
        return list(self.queued)


@pytest.fixture
async def poller(stack: Stack) -> AsyncIterator[RecordingPoller]:
    publisher = Publisher(stack.settings.rabbitmq_url, confirm_timeout=5.0)
    await publisher.start()
    assert await publisher.wait_ready(10.0)
    queued: list[ChangeEnvelope] = []

    async def publish(envelopes: Sequence[ChangeEnvelope]) -> None:
        await publisher.publish(envelopes)
        queued.extend(envelopes)

    try:
        async with AiohttpTransport.from_settings(stack.settings) as transport:
            contexts = ContextFactory(stack.settings, stack.store, transport)
            made = Poller(stack.settings, stack.sync, stack.store, contexts, publish)
            yield RecordingPoller(made, queued, ahead=stack.settings.missed_webhook_grace_seconds + 1)
    finally:
        await publisher.close()


async def queue_changes(stack: Stack, *envelopes: ChangeEnvelope) -> None:
    """Change events queued as the receiver queues a webhook's: hints the worker acts on only after re-reading."""
    publisher = Publisher(stack.settings.rabbitmq_url, confirm_timeout=5.0)
    await publisher.start()
    try:
        assert await publisher.wait_ready(10.0)
        await publisher.publish(list(envelopes))
    finally:
        await publisher.close()


def hint(stack: Stack, provider: Provider, object_type: str, object_id: str, operation: Operation) -> ChangeEnvelope:
    """A change event of a record, as a webhook would tell it (each one a new event)."""
    account = str(stack.portal_id) if provider == Provider.HUBSPOT else stack.realm_id
    return ChangeEnvelope(provider=provider, account_id=account, object_type=object_type, object_id=object_id,
                          operation=operation, occurred_at_ms=int(time.time() * 1000),
                          event_id=f"test:{object_type}:{object_id}:{uuid.uuid4()}")  # fmt: skip


def lose_every_webhook(stack: Stack) -> None:
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):
        sandbox.faults.update(webhook_drop_rate=1.0)


async def two_contacts_then_webhooks_lost(stack: Stack, poller: RecordingPoller, *emails: str) -> dict[str, Any]:
    """Two contacts synced through their webhooks and seen by a first poll (watching starts, the day's reconciliation
    finds nothing gone); from then on every webhook is lost. Returns the first contact."""
    first, second = emails
    contact = stack.hubspot_edit("contacts", "create", properties={"email": first, "firstname": "A"})
    stack.hubspot_edit("contacts", "create", properties={"email": second, "firstname": "O"})
    await stack.settle()
    assert await poller.poll() == []
    lose_every_webhook(stack)
    return contact


async def test_changes_whose_webhooks_were_lost_are_synced_by_the_next_poll(
    stack: Stack, poller: RecordingPoller
) -> None:
    assert await poller.poll() == []  # the connection's first poll: watching starts
    lose_every_webhook(stack)
    workload = Workload(stack, random.Random(7001), tag="poll")
    for _ in range(60):
        workload.step(0.3)
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}  # nothing came through the webhooks

    queued = await poller.poll()
    assert {envelope.provider for envelope in queued} == {Provider.HUBSPOT, Provider.QUICKBOOKS}
    await stack.settle(within=60)
    await assert_applied_once(stack, classify(stack, workload.changes))


async def test_a_lost_webhook_is_waited_for_one_poll_then_queued_and_counted_missed(
    stack: Stack, poller: RecordingPoller
) -> None:
    """A change found with no trace of its webhook, younger than the grace, is left to the next poll (its webhook may
    still come); the next poll, past the grace, queues it and counts one missed webhook. A change whose webhook came
    is never counted."""
    contact = await two_contacts_then_webhooks_lost(stack, poller, "wait@example.com", "other@example.com")
    missed = WEBHOOKS_MISSED.labels(CONNECTION, Provider.HUBSPOT)
    before = missed._value.get()
    stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"firstname": "Lost"})
    await stack.settle()
    poller.ahead = 0.0  # polled at once: the change is seconds old
    assert [e for e in await poller.poll() if e.provider == Provider.HUBSPOT] == []
    assert missed._value.get() == before
    poller.ahead = stack.settings.missed_webhook_grace_seconds + 1
    assert [e.object_id for e in await poller.poll() if e.provider == Provider.HUBSPOT] == [contact["id"]]
    assert missed._value.get() == before + 1
    await stack.settle()
    [customer] = [c for c in stack.qbo_entities("Customer") if c["PrimaryEmailAddr"]["Address"] == "wait@example.com"]
    assert customer["GivenName"] == "Lost"


async def test_a_poll_queues_nothing_for_records_already_in_sync(stack: Stack, poller: RecordingPoller) -> None:
    stack.hubspot_edit("contacts", "create", properties={"email": "synced@example.com", "firstname": "S"})
    stack.qbo_edit("Customer", "create", {"DisplayName": "Books", "PrimaryEmailAddr": {"Address": "books@example.com"}})
    await stack.settle()  # both synced through their webhooks, and the worker's writes are in the links
    stack.clear_request_logs()

    assert await poller.poll() == []
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}


async def test_an_edit_whose_webhook_was_lost_is_the_only_record_a_poll_queues(
    stack: Stack, poller: RecordingPoller
) -> None:
    contact = await two_contacts_then_webhooks_lost(stack, poller, "late@example.com", "other@example.com")
    stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"firstname": "B"})

    queued = await poller.poll()
    assert [(envelope.object_type, envelope.object_id) for envelope in queued] == [("contact", contact["id"])]
    await stack.settle()
    customers = {c["PrimaryEmailAddr"]["Address"]: c for c in stack.qbo_entities("Customer")}
    assert customers["late@example.com"]["GivenName"] == "B"


async def test_a_failed_poll_keeps_its_cursor_and_the_next_poll_catches_up(
    stack: Stack, poller: RecordingPoller
) -> None:
    await poller.poll()
    watched_from = await stack.store.get_cursor(CONNECTION, "quickbooks:Customer")
    lose_every_webhook(stack)
    stack.qbo_edit("Customer", "create", {"DisplayName": "Missed", "PrimaryEmailAddr": {"Address": "m@example.com"}})
    stack.sandbox.qbo.faults.update(error_rate=1.0)  # QBO answers every call with a 5xx
    assert [e for e in await poller.poll() if e.provider == Provider.QUICKBOOKS] == []
    assert await stack.store.get_cursor(CONNECTION, "quickbooks:Customer") == watched_from

    stack.sandbox.qbo.faults.update(error_rate=0.0)
    assert [e.object_type for e in await poller.poll() if e.provider == Provider.QUICKBOOKS] == ["customer"]
    await stack.settle()
    assert [c.get("email") for c in stack.hubspot_records("contacts")] == ["m@example.com"]
    assert await stack.store.get_cursor(CONNECTION, "quickbooks:Customer") != watched_from


async def test_a_backfill_syncs_the_records_that_existed_before_the_connection_once(
    stack: Stack, poller: RecordingPoller
) -> None:
    lose_every_webhook(stack)  # records made before the connection: no webhook ever reached us
    workload = Workload(stack, random.Random(7002), tag="before")
    for _ in range(30):
        workload.step(0.4)
    ctx = await poller.poller.contexts.get(stack.sync.connection[0])

    dry = {(t.provider, t.object_type): (t.found, t.queued) for t in await backfill(ctx, None, since=None)}
    customers, contacts = len(stack.qbo_entities("Customer")), len(stack.hubspot_records("contacts"))
    assert dry[Provider.QUICKBOOKS, "customer"] == (customers, customers)
    assert dry[Provider.HUBSPOT, "contact"] == (contacts, contacts)
    assert poller.queued == []  # a dry run queues nothing

    await backfill(ctx, poller.poller.publish, since=None)
    await stack.settle(within=60)
    await assert_applied_once(stack, classify(stack, workload.changes))

    poller.queued.clear()
    again = await backfill(ctx, poller.poller.publish, since=None)
    assert poller.queued == []  # everything is in sync now: a second backfill changes nothing
    assert sum(t.in_sync for t in again) == sum(t.found for t in again) > 0


async def test_the_backfill_command_prints_what_a_dry_run_would_queue(stack: Stack, tmp_path: Path) -> None:
    lose_every_webhook(stack)
    stack.qbo_edit("Customer", "create", {"DisplayName": "Old", "PrimaryEmailAddr": {"Address": "old@example.com"}})
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "poller", "--backfill", "--dry-run", "--connection", CONNECTION,
        env=worker_environment(stack, tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await command.communicate()
    assert command.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    assert f"connection {CONNECTION} (dry run: nothing queued)" in lines
    [customers] = [line.split() for line in lines if line.split()[:2] == ["quickbooks", "customer"]]
    assert customers[2:] == ["1", "0", "1"]  # found, in sync, would queue
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}


async def test_a_hubspot_deletion_whose_webhook_was_lost_is_found_by_reconciliation(
    stack: Stack, poller: RecordingPoller
) -> None:
    contact = await two_contacts_then_webhooks_lost(stack, poller, "gone@example.com", "stays@example.com")
    stack.hubspot_edit("contacts", "delete", id=contact["id"])
    assert await poller.poll() == []  # search cannot see a deletion...
    ctx = await poller.poller.contexts.get(stack.sync.connection[0])

    report = await reconcile(ctx, poller.poller.publish, now=time.time())
    assert report.objects["contact"] == {"checked": 2, "agreed": 1, "drifted": 0, "missing": 1}  # ...reading back does
    await stack.settle()
    active = {c["PrimaryEmailAddr"]["Address"]: c["Active"] for c in stack.qbo_entities("Customer")}
    assert active == {"gone@example.com": False, "stays@example.com": True}


async def test_the_poller_reconciles_each_connection_once_a_day(stack: Stack, poller: RecordingPoller) -> None:
    stack.hubspot_edit("contacts", "create", properties={"email": "daily@example.com", "firstname": "D"})
    await stack.settle()
    stack.clear_request_logs()

    def batch_reads() -> int:
        return len(stack.sandbox.hubspot.requests.list(path_contains="/batch/read"))

    await poller.poll()
    assert batch_reads() == 1
    await poller.poll()
    assert batch_reads() == 1  # not due again before HSQBO_RECONCILE_SECONDS


async def test_value_changed_behind_our_back_is_reported_and_repaired(stack: Stack, poller: RecordingPoller) -> None:
    first = await two_contacts_then_webhooks_lost(stack, poller, "drift@example.com", "steady@example.com")
    [second] = [c for c in stack.hubspot_records("contacts") if c["email"] == "steady@example.com"]
    customers = {c["PrimaryEmailAddr"]["Address"]: c for c in stack.qbo_entities("Customer")}
    stack.qbo_edit("Customer", "update", {"Id": customers["drift@example.com"]["Id"], "GivenName": "Changed"})
    stack.hubspot_edit("contacts", "update", id=second["id"], properties={"phone": "555-0142"})
    await stack.settle()
    assert stack.hubspot_records("contacts")[0]["firstname"] == "A"  # webhooks lost, no poll: still apart
    ctx = await poller.poller.contexts.get(stack.sync.connection[0])

    report = await reconcile(ctx, poller.poller.publish, now=time.time())
    assert report.objects["contact"] == {"checked": 2, "agreed": 0, "drifted": 2, "missing": 0}
    fields = {(d["hubspot_id"], d["qbo_id"]): d["fields"] for d in report.drifted}
    assert fields == {
        (first["id"], str(customers["drift@example.com"]["Id"])): [
            {"field": "first_name", "hubspot": "A", "qbo": "Changed"}
        ],
        (second["id"], str(customers["steady@example.com"]["Id"])): [
            {"field": "phone", "hubspot": "555-0142", "qbo": None}
        ],
    }
    assert await stack.store.reconciliations(CONNECTION) == [report]

    await stack.settle()  # the worker repairs each from the side that moved
    assert {c["email"]: c["firstname"] for c in stack.hubspot_records("contacts")}["drift@example.com"] == "Changed"
    phones = {c["PrimaryEmailAddr"]["Address"]: c.get("PrimaryPhone") for c in stack.qbo_entities("Customer")}
    assert phones["steady@example.com"] == {"FreeFormNumber": "555-0142"}
    again = await reconcile(ctx, poller.poller.publish, now=time.time())
    assert again.objects["contact"] == {"checked": 2, "agreed": 2, "drifted": 0, "missing": 0}
    assert again.drifted == []


async def test_an_invoice_total_changed_behind_our_back_is_reported_and_repaired(
    stack: Stack, poller: RecordingPoller
) -> None:
    customer_id, _ = await customer_with_contact(stack, "total@example.com")
    widget = item(stack, "Widget", 25)
    invoice_id = qbo_invoice(stack, customer_id, sales_line(widget, 2, 25))
    await stack.settle()
    copy = hubspot_copy(stack, invoice_id)
    assert copy["hs_amount_billed"] == "50"
    lose_every_webhook(stack)
    [line] = line_items(stack, copy["id"])
    stack.hubspot_edit("line_items", "update", id=line["id"], properties={"quantity": "3"})  # HubSpot's copy: 75
    ctx = await poller.poller.contexts.get(stack.sync.connection[0])

    report = await reconcile(ctx, poller.poller.publish, now=time.time())
    assert report.objects["invoice"] == {"checked": 1, "agreed": 0, "drifted": 1, "missing": 0}
    [drift] = report.drifted
    assert (drift["kind"], drift["hubspot_id"], drift["qbo_id"]) == ("invoice", copy["id"], invoice_id)
    assert drift["fields"] == [
        {"field": "amount_billed", "hubspot": "75.00", "qbo": "50.00"},
        {"field": "balance_due", "hubspot": "75.00", "qbo": "50.00"},
    ]

    await stack.settle()  # QBO is the invoice's master: its copy is brought back to it
    assert hubspot_copy(stack, invoice_id)["hs_amount_billed"] == "50"
    again = await reconcile(ctx, poller.poller.publish, now=time.time())
    assert again.objects["invoice"]["agreed"] == 1


async def test_the_reconcile_command_prints_the_report_and_keeps_it_for_last(
    stack: Stack, poller: RecordingPoller, tmp_path: Path
) -> None:
    contact = await two_contacts_then_webhooks_lost(stack, poller, "cli@example.com", "fine@example.com")
    stack.hubspot_edit("contacts", "update", id=contact["id"], properties={"lastname": "Moved"})
    stack.clear_request_logs()

    async def hsqbo_poller(*args: str) -> list[str]:
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "poller", *args, env=worker_environment(stack, tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await command.communicate()
        assert command.returncode == 0, err.decode()[-2000:]
        return out.decode().splitlines()

    lines = await hsqbo_poller("--reconcile", "--dry-run", "--connection", CONNECTION)
    assert lines[0] == f"connection {CONNECTION}"
    assert lines[1].endswith("(dry run: nothing queued)")
    assert ["contact", "2", "1", "1", "0"] in [line.split() for line in lines]
    assert ["last_name", "HubSpot", "'Moved'", "QuickBooks", "(empty)"] in [line.split() for line in lines]
    assert poller.queued == []
    assert await hsqbo_poller("--reconcile", "--last") == lines  # the kept report, printed again
    await stack.settle()
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}


QUIESCENT_MIX = {"contacts": {"hubspot_to_qbo": {}, "display_name_strategy": "fail"}}


def polled(outcome: str) -> float:
    samples = (REGISTRY.get_sample_value("hsqbo_poller_changes_total", {"provider": p, "outcome": outcome})
               for p in Provider)  # fmt: skip
    return sum(sample or 0.0 for sample in samples)


@pytest.mark.parametrize("sync_overrides", [QUIESCENT_MIX], indirect=True)
async def test_poll_after_quiescence_queues_nothing(stack: Stack, poller: RecordingPoller) -> None:
    """Synced, excluded, failing and deleted records, invoices with line items and a payment, all settled: polls
    (each looking back over the whole test) find every record at a version its link already shows."""
    company = stack.hubspot_edit("companies", "create", properties={"name": "Acme"})
    for email in ("first@acme.example", "second@acme.example"):  # the second is failing: DisplayName "Acme" is taken
        contact = stack.hubspot_edit("contacts", "create", properties={"email": email, "firstname": email[:5]})
        stack.hubspot_edit("contacts", "associate", id=contact["id"], to_object_type="companies",
                           to_id=company["id"], association_type_id=1)  # fmt: skip
        await stack.settle()
    buyer = stack.qbo_edit("Customer", "create", {"DisplayName": "Buyer", "PrimaryEmailAddr": {"Address": "b@x.com"}})
    leaving = stack.qbo_edit(
        "Customer", "create", {"DisplayName": "Leaving", "PrimaryEmailAddr": {"Address": "l@x.com"}}
    )
    income = {"value": "1"}
    widget = stack.qbo_edit("Item", "create", {"Name": "Widget", "Sku": "W-1", "Type": "Service", "UnitPrice": 5,
                                               "IncomeAccountRef": income})  # fmt: skip
    stack.qbo_edit("Item", "create", {"Name": "No SKU", "Type": "Service", "IncomeAccountRef": income})  # excluded
    await stack.settle()
    stack.qbo_edit("Customer", "update", {"Id": leaving["Id"], "Active": False})  # its contact archived: deleted
    invoice = stack.qbo_edit("Invoice", "create", {"CustomerRef": {"value": buyer["Id"]}, "Line": [
        {"DetailType": "SalesItemLineDetail", "Amount": 10,
         "SalesItemLineDetail": {"ItemRef": {"value": widget["Id"]}, "Qty": 2, "UnitPrice": 5}},
    ]})  # fmt: skip
    await stack.settle()
    stack.qbo_edit("Payment", "create", {"CustomerRef": {"value": buyer["Id"]}, "TotalAmt": 4, "TxnDate": "2026-03-02",
                                         "Line": [{"Amount": 4, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                                               "TxnType": "Invoice"}]}]})  # fmt: skip
    await stack.settle()
    statuses = {link.status for link in await stack.store.list_links(CONNECTION, limit=1000)}
    assert statuses >= {LinkStatus.SYNCED, LinkStatus.EXCLUDED, LinkStatus.FAILING, LinkStatus.DELETED}
    assert len(stack.hubspot_records("commerce_payments")) == 1
    stack.clear_request_logs()

    queued_before, in_sync_before = polled("queued"), polled("in_sync")
    for _ in range(3):
        assert [(e.object_type, e.object_id) for e in await poller.poll()] == []
        await stack.settle()
    assert polled("queued") == queued_before  # counted: nothing queued
    assert polled("in_sync") > in_sync_before  # the polls did find the records
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    assert {link.kind for link in await stack.store.list_links(CONNECTION, limit=1000)} == set(Kind)

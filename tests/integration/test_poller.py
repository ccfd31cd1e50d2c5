"""The poller end to end: webhooks lost on purpose (the sandboxes drop every batch), changes made on both sides, one
poll (QBO CDC, HubSpot search) queues them through RabbitMQ to the worker, which syncs each once.

The incumbent syncs "at regular intervals"; hsqbo syncs from webhooks in seconds and polls only to catch what they
missed, so these tests are named after that promise."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence

import pytest

from services.poller import Poller
from shared.bus import Publisher
from shared.clients import AiohttpTransport
from shared.connections import ContextFactory
from shared.envelope import ChangeEnvelope, Provider
from tests.integration.checker import Workload, assert_applied_once, classify
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration


class RecordingPoller:
    """A poller on the stack whose queued envelopes are also kept in `queued`."""

    def __init__(self, poller: Poller, queued: list[ChangeEnvelope]) -> None:
        self.poller = poller
        self.queued = queued

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
            yield RecordingPoller(Poller(stack.settings, stack.sync, stack.store, contexts, publish), queued)
    finally:
        await publisher.close()


def lose_every_webhook(stack: Stack) -> None:
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):
        sandbox.faults.update(webhook_drop_rate=1.0)


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
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "late@example.com", "firstname": "A"})
    stack.hubspot_edit("contacts", "create", properties={"email": "other@example.com", "firstname": "O"})
    await stack.settle()
    assert await poller.poll() == []  # watching starts; both contacts are in sync
    lose_every_webhook(stack)
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

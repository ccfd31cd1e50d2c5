"""Dead letters end to end, the guard and graceful shutdown: a record that cannot sync is dead-lettered with its
reason after the configured attempts, replayed once its cause is fixed, applied once; the guard halts a worker whose
applies mostly die; `stop()` lets in-flight work finish or leaves it to the broker. Each test starts its own worker,
so it can set the worker's settings."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from services.worker import Worker
from shared.bus import APPLY_QUEUE, CHANGES_EXCHANGE, CHANGES_QUEUE, DEAD_EXCHANGE, ApplyCommand, declare_topology
from shared.config import Settings
from shared.deadletters import DeadLetters, LetterFilter, Payload, dead_letter_message, open_dead_letters
from shared.domain import Kind, PendingKey, Provider
from shared.errors import ServerError
from shared.metrics import SHUTDOWN_REQUEUED, WORKER_HALTED
from tests.conftest import Broker
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def in_process_worker() -> bool:
    return False


@contextlib.asynccontextmanager
async def running_worker(stack: Stack, **settings: Any) -> AsyncIterator[Worker]:
    worker = Worker(stack.settings.model_copy(update=settings), stack.sync, stack.store, stack.worker.engine)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


@contextlib.asynccontextmanager
async def dead_letters(stack: Stack) -> AsyncIterator[DeadLetters]:
    async with open_dead_letters(stack.settings, stack.store) as letters:
        yield letters


def customers_with_email(stack: Stack, email: str) -> list[dict[str, Any]]:
    return [c for c in stack.qbo_entities("Customer") if (c.get("PrimaryEmailAddr") or {}).get("Address") == email]


def poison_contact(stack: Stack, email: str) -> str:
    """A HubSpot contact whose customer cannot be written while QBO answers every call with a 5xx."""
    stack.sandbox.qbo.faults.update(error_rate=1.0)
    created = stack.hubspot_edit("contacts", "create", properties={"email": email, "firstname": "Poison"})
    return str(created["id"])


async def test_poison_record_is_dead_lettered_with_its_reason_then_replayed_once_after_the_fix(stack: Stack) -> None:
    async with running_worker(stack):
        contact_id = poison_contact(stack, "poison@example.com")
        await stack.settle()
        async with dead_letters(stack) as letters:
            [letter] = await letters.list_letters()
        assert (letter.connection, letter.kind, letter.side, letter.object_id) == (
            CONNECTION, "contact", "hubspot", contact_id,
        )  # fmt: skip
        assert letter.payload is Payload.APPLY
        assert letter.attempts == stack.settings.max_attempts
        assert letter.error_category == "server_error"
        assert letter.error_message.startswith("quickbooks HTTP 5")
        assert letter.source_queue == APPLY_QUEUE
        assert letter.first_failed_at is not None
        assert letter.last_failed_at is not None
        assert letter.first_failed_at <= letter.last_failed_at
        assert customers_with_email(stack, "poison@example.com") == []

        stack.sandbox.qbo.faults.reset()
        stack.clear_request_logs()
        async with dead_letters(stack) as letters:
            first = await letters.replay(LetterFilter(ids=frozenset({letter.id})))
            second = await letters.replay(LetterFilter(ids=frozenset({letter.id})))
        assert [replayed.id for replayed in first.replayed] == [letter.id]
        assert second.replayed == []  # gone: a second replay finds nothing
        await stack.settle()
        assert len(customers_with_email(stack, "poison@example.com")) == 1
        assert stack.api_writes()["quickbooks"] == 1
        async with dead_letters(stack) as letters:
            assert await letters.list_letters() == []


async def test_replaying_a_letter_whose_record_synced_meanwhile_writes_nothing(stack: Stack) -> None:
    async with running_worker(stack):
        contact_id = poison_contact(stack, "healed@example.com")
        await stack.settle()
        stack.sandbox.qbo.faults.reset()
        stack.hubspot_edit("contacts", "update", id=contact_id, properties={"lastname": "Healed"})
        await stack.settle()
        assert len(customers_with_email(stack, "healed@example.com")) == 1
        stack.clear_request_logs()
        async with dead_letters(stack) as letters:
            report = await letters.replay(LetterFilter(connection=CONNECTION), dry_run=False)
        assert len(report.replayed) == 1
        await stack.settle()
        assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}


async def test_unparseable_change_is_dead_lettered_by_the_broker_and_listed_like_any_letter(stack: Stack) -> None:
    async with running_worker(stack):
        connection = await aio_pika.connect(stack.settings.rabbitmq_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(CHANGES_EXCHANGE)
            await exchange.publish(aio_pika.Message(b"{not json"), routing_key="hubspot.1.contact.1")
        await stack.settle()
        async with dead_letters(stack) as letters:
            [letter] = await letters.list_letters()
            assert (letter.payload, letter.error_category, letter.source_queue) == (
                Payload.UNPARSEABLE, "unparseable", CHANGES_QUEUE,
            )  # fmt: skip
            assert letter.last_failed_at is not None
            report = await letters.replay(LetterFilter())
            assert (report.replayed, [skipped.id for skipped in report.skipped]) == ([], [letter.id])
            [kept] = await letters.list_letters()  # rewritten with our headers, same id and history
        assert (kept.id, kept.error_category, kept.source_queue) == (letter.id, "unparseable", CHANGES_QUEUE)


async def publish_letter(channel: aio_pika.abc.AbstractChannel, connection: str, object_id: str, at: float) -> str:
    command = ApplyCommand(connection, "contact", "hubspot", object_id, attempt=4, first_failed_at=at - 60)
    error = ServerError("Service Unavailable", provider="quickbooks", status=503)
    message = dead_letter_message(command, error, hints={}, source_queue=APPLY_QUEUE, now=at)
    exchange = await channel.get_exchange(DEAD_EXCHANGE)
    await exchange.publish(message, routing_key="")
    return str(message.message_id)


async def test_listing_keeps_every_letter_and_purge_removes_only_what_its_filter_matches(broker: Broker) -> None:
    settings = Settings(rabbitmq_url=broker.url)
    now = time.time()
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel)
        old = await publish_letter(channel, "acme", "1", now - 7200)
        recent = await publish_letter(channel, "acme", "2", now)
        other = await publish_letter(channel, "globex", "3", now)
    async with open_dead_letters(settings) as letters:
        for _ in range(3):  # reading is not consuming
            assert [letter.id for letter in await letters.list_letters()] == [old, recent, other]
        assert [letter.id for letter in await letters.list_letters(LetterFilter(until=now - 3600))] == [old]
        assert (await letters.show(recent) or pytest.fail("not found")).object_id == "2"
        dry = await letters.purge(LetterFilter(connection="acme", since=now - 3600), dry_run=True)
        assert [letter.id for letter in dry] == [recent]
        purged = await letters.purge(LetterFilter(connection="acme", since=now - 3600))
        assert [letter.id for letter in purged] == [recent]
        assert [letter.id for letter in await letters.list_letters()] == [old, other]
        assert [letter.id for letter in await letters.purge(LetterFilter(category="server_error"))] == [old, other]
        assert await letters.list_letters() == []


async def test_letters_keep_their_times_to_the_millisecond_and_counting_takes_none(broker: Broker) -> None:
    """AMQP carries a float header as 32 bits (an epoch rounded to 128 s): the history travels in milliseconds."""
    at, then = 1_765_108_863.123, 1_765_108_863.124
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel)
        await publish_letter(channel, "acme", "1", at)
        await publish_letter(channel, "acme", "2", then)
    async with open_dead_letters(Settings(rabbitmq_url=broker.url)) as letters:
        for _ in range(2):
            assert await letters.count() == 2
        [first, second] = await letters.list_letters()
        assert (first.first_failed_at, first.last_failed_at, second.last_failed_at) == (1_765_108_803.123, at, then)
        [first, _] = await letters.list_letters()  # kept letters keep them too
        assert first.last_failed_at == at
        await letters.purge(LetterFilter())
        assert await letters.count() == 0


async def test_guard_halts_consumption_when_most_applies_are_dead_lettered(stack: Stack) -> None:
    async with running_worker(stack, dlq_min_sample=2, dlq_max_ratio=0.5) as worker:
        poison_contact(stack, "a@example.com")
        poison_contact(stack, "b@example.com")
        await asyncio.wait_for(worker.halted.wait(), timeout=30)
        assert WORKER_HALTED._value.get() == 1
        stack.sandbox.qbo.faults.reset()
        stack.hubspot_edit("contacts", "create", properties={"email": "waiting@example.com", "firstname": "W"})
        assert await stack.sandbox.hubspot.webhooks.drain(10.0)
        assert await queue_depth(stack, CHANGES_QUEUE) >= 1  # its events stay in their queue, unconsumed
        async with dead_letters(stack) as letters:
            assert len(await letters.list_letters()) == 2
    async with running_worker(stack):  # a fixed deploy picks up where the halted one stopped
        assert WORKER_HALTED._value.get() == 0
        await stack.settle()
    assert len(customers_with_email(stack, "waiting@example.com")) == 1


async def queue_depth(stack: Stack, name: str) -> int:
    connection = await aio_pika.connect(stack.settings.rabbitmq_url)
    async with connection:
        queue = await (await connection.channel()).declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


async def wait_until_claimed(stack: Stack, contact_id: str) -> None:
    key = PendingKey(CONNECTION, Kind.CONTACT, Provider.HUBSPOT, contact_id)
    deadline = time.monotonic() + 30
    while (pending := await stack.store.get_pending(key)) is None or pending.owner is None:
        assert time.monotonic() < deadline, "the apply never started"
        await asyncio.sleep(0.05)


async def test_graceful_stop_lets_in_flight_applies_finish(stack: Stack) -> None:
    stack.sandbox.qbo.faults.update(latency_ms=(300.0, 300.0))
    worker = Worker(stack.settings.model_copy(update={"shutdown_seconds": 30.0}), stack.sync, stack.store,
                    stack.worker.engine)  # fmt: skip
    await worker.start()
    created = stack.hubspot_edit("contacts", "create", properties={"email": "inflight@example.com"})
    await wait_until_claimed(stack, str(created["id"]))
    await worker.stop()
    assert len(customers_with_email(stack, "inflight@example.com")) == 1
    key = PendingKey(CONNECTION, Kind.CONTACT, Provider.HUBSPOT, str(created["id"]))
    assert await stack.store.get_pending(key) is None  # finished and recorded before the connection closed


async def test_stop_past_its_deadline_leaves_unfinished_work_to_the_broker_and_nothing_is_lost(stack: Stack) -> None:
    stack.sandbox.qbo.faults.update(latency_ms=(2000.0, 2000.0))
    hurried = Worker(stack.settings.model_copy(update={"shutdown_seconds": 0.05, "lease_seconds": 1.0}), stack.sync,
                     stack.store, stack.worker.engine)  # fmt: skip
    await hurried.start()
    created = stack.hubspot_edit("contacts", "create", properties={"email": "unfinished@example.com"})
    await wait_until_claimed(stack, str(created["id"]))
    requeued = SHUTDOWN_REQUEUED._value.get()
    await hurried.stop()
    assert SHUTDOWN_REQUEUED._value.get() == requeued + 1
    stack.sandbox.qbo.faults.reset()
    async with running_worker(stack, lease_seconds=1.0):
        await stack.settle()
    assert len(customers_with_email(stack, "unfinished@example.com")) == 1

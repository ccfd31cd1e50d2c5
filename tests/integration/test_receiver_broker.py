"""The receiver against the real RabbitMQ node: a 200 means the event is durably queued."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.receiver import create_app
from shared.asgi import serving
from shared.config import Settings
from shared.envelope import ChangeEnvelope, decode_changes
from tests.conftest import Broker
from tests.receiver.conftest import WebhookClient, make_settings
from tests.receiver.test_hubspot import event
from tests.receiver.test_intuit import cloud_event

pytestmark = pytest.mark.integration


async def wait_ready(client: WebhookClient, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with client.session.get(client.server.url + "/readyz") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"receiver not ready within {seconds}s")


@pytest.fixture
async def live(broker: Broker) -> AsyncIterator[WebhookClient]:
    settings: Settings = make_settings(rabbitmq_url=broker.url, publish_timeout_seconds=2.0)
    # A new connection per request: stopping the broker can outlast the server's keep-alive, and a pooled connection
    # the server closed meanwhile fails the next request with a reset (a real sender would retry it).
    connector = aiohttp.TCPConnector(force_close=True)
    async with serving(create_app(settings)) as server, aiohttp.ClientSession(connector=connector) as session:
        client = WebhookClient(session, server, settings)
        await wait_ready(client)
        yield client


async def test_200_means_the_event_is_in_the_queue_and_survives_a_broker_restart(
    live: WebhookClient, broker: Broker
) -> None:
    response = await live.hubspot([event(eventId=1, objectId=501), event(eventId=2, objectId=502)])
    assert response.status == 200
    response = await live.intuit([cloud_event(id="restart-1", intuitentityid="77")])
    assert response.status == 200

    broker.restart()

    messages = await broker.messages()
    envelopes = sorted((e for m in messages for e in decode_changes(m.body)), key=lambda e: e.object_id)
    assert [(e.provider, e.object_id) for e in envelopes] == [
        ("hubspot", "501"), ("hubspot", "502"), ("quickbooks", "77"),
    ]  # fmt: skip
    assert len(messages) == 2  # one message per delivery
    assert all(m.delivery_mode == 2 for m in messages)  # persistent
    assert all(m.routing_key is not None and m.routing_key.count(".") in (2, 3) for m in messages)


async def test_broker_stopped_is_503_within_3_seconds_then_recovers_without_restart(
    live: WebhookClient, broker: Broker
) -> None:
    broker.stop_app()
    try:
        started = time.monotonic()
        response = await live.hubspot([event(eventId=10)])
        assert response.status == 503
        assert time.monotonic() - started < 3.0  # Intuit's answer deadline
        async with live.session.get(live.server.url + "/readyz") as ready:
            assert ready.status == 503
    finally:
        broker.start_app()

    await wait_ready(live)
    response = await live.hubspot([event(eventId=10)])
    assert response.status == 200  # the retried event is queued now, not mistaken for a duplicate
    [message] = await broker.messages()
    assert ChangeEnvelope.from_json(message.body).object_id == "123"


async def test_a_flood_of_duplicate_deliveries_queues_each_event_once(live: WebhookClient, broker: Broker) -> None:
    distinct = [event(eventId=n, objectId=1000 + n, attemptNumber=0) for n in range(40)]
    deliveries = []
    for attempt in range(5):  # HubSpot resends with a higher attemptNumber, in any order, concurrently
        batch = [dict(e, attemptNumber=attempt) for e in distinct]
        deliveries += [batch[i : i + 10] for i in range(0, len(batch), 10)]
    deliveries += [[cloud_event(id=f"ce-{n % 10}", intuitentityid=str(n % 10))] for n in range(50)]
    responses = await asyncio.gather(*(
        live.intuit(d) if "specversion" in d[0] else live.hubspot(d) for d in deliveries
    ))  # fmt: skip
    assert {r.status for r in responses} == {200}
    messages = await broker.messages()
    ids = sorted(e.event_id for m in messages for e in decode_changes(m.body))
    assert len(ids) == 40 + 10
    assert len(set(ids)) == len(ids)


async def test_a_delivery_of_20_events_is_one_message_carrying_each_event(live: WebhookClient, broker: Broker) -> None:
    delivery = [event(eventId=n, objectId=2000 + n) for n in range(20)]
    response = await live.hubspot(delivery)
    assert response.status == 200
    assert (await response.json())["queued"] == 20
    [message] = await broker.messages()  # one publish, one confirm
    assert [e.object_id for e in decode_changes(message.body)] == [str(2000 + n) for n in range(20)]

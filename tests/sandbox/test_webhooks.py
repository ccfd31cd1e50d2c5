from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from hsqbo_sandbox import Event, Faults, SandboxClock, WebhookDispatcher
from tests.sandbox.conftest import WebhookSink

FAST_RETRIES = (0.01, 0.02)

Factory = Callable[..., WebhookDispatcher]


def _sign(body: bytes, url: str) -> dict[str, str]:
    return {"x-test-signature": str(len(body))}


@pytest.fixture
async def dispatcher_factory(webhook_sink: WebhookSink) -> AsyncIterator[Factory]:
    started: list[WebhookDispatcher] = []

    def make(**options: Any) -> WebhookDispatcher:
        defaults: dict[str, Any] = {
            "encode_batch": orjson.dumps,
            "sign": _sign,
            "retry_delays": FAST_RETRIES,
            "partition": lambda event: event.get("account", ""),
        }
        dispatcher = WebhookDispatcher(webhook_sink.url, **{**defaults, **options})
        started.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in started:
        await dispatcher.stop()


def _ids(sink: WebhookSink) -> list[list[int]]:
    return [[event["n"] for event in orjson.loads(d.body)] for d in sink.deliveries]


async def test_events_emitted_together_are_batched_signed_and_acknowledged(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    dispatcher = dispatcher_factory(max_batch=2)
    await dispatcher.start()
    for n in range(3):
        dispatcher.emit({"n": n})
    assert await dispatcher.drain(5)
    assert _ids(webhook_sink) == [[0, 1], [2]]
    assert webhook_sink.deliveries[0].headers["x-test-signature"] == str(len(webhook_sink.deliveries[0].body))
    assert webhook_sink.deliveries[0].headers["content-type"] == "application/json"
    stats = dispatcher.stats()
    assert (stats["delivered"], stats["deliveries"], stats["pending"], stats["failures"]) == (3, 2, 0, 0)


async def test_events_emitted_before_start_are_delivered_on_start(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    dispatcher = dispatcher_factory()
    dispatcher.emit({"n": 1})
    assert dispatcher.pending == 1
    await dispatcher.start()
    assert await dispatcher.drain(5)
    assert _ids(webhook_sink) == [[1]]


async def test_failed_batch_is_resent_unchanged_and_blocks_later_events_of_its_partition(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    webhook_sink.statuses = [500, 503]
    dispatcher = dispatcher_factory(max_batch=1, head_of_line_blocking=True)
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    dispatcher.emit({"n": 2})
    assert await dispatcher.drain(5)
    assert _ids(webhook_sink) == [[1], [1], [1], [2]]
    assert [d.status for d in webhook_sink.deliveries] == [500, 503, 200, 200]
    assert dispatcher.stats()["failures"] == 2


async def test_without_head_of_line_blocking_later_events_overtake_a_failing_batch(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    webhook_sink.statuses = [500]
    dispatcher = dispatcher_factory(max_batch=1, head_of_line_blocking=False)
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    dispatcher.emit({"n": 2})
    assert await dispatcher.drain(5)
    assert _ids(webhook_sink) == [[1], [2], [1]]


async def test_partitions_do_not_block_each_other(webhook_sink: WebhookSink, dispatcher_factory: Factory) -> None:
    webhook_sink.statuses = [500]
    dispatcher = dispatcher_factory(max_batch=1, retry_delays=(0.2,))
    await dispatcher.start()
    dispatcher.emit({"n": 1, "account": "a"})
    await webhook_sink.wait_for(1)
    dispatcher.emit({"n": 2, "account": "b"})
    await webhook_sink.wait_for(2)
    assert _ids(webhook_sink)[:2] == [[1], [2]]
    assert await dispatcher.drain(5)


async def test_batch_is_abandoned_after_max_attempts(webhook_sink: WebhookSink, dispatcher_factory: Factory) -> None:
    webhook_sink.statuses = [500, 500, 500]
    dispatcher = dispatcher_factory(max_attempts=2)
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    assert await dispatcher.drain(5)
    assert len(webhook_sink.deliveries) == 2
    assert dispatcher.stats()["abandoned"] == 1


async def test_only_statuses_the_provider_counts_as_ack_acknowledge(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    webhook_sink.statuses = [202]
    dispatcher = dispatcher_factory(is_ack=lambda status: status == 200)
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    assert await dispatcher.drain(5)
    assert [d.status for d in webhook_sink.deliveries] == [202, 200]


async def test_acknowledgement_slower_than_the_timeout_counts_as_failure(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    faults = Faults(SandboxClock())
    faults.update(webhook_timeout_seconds=0.2)
    dispatcher = dispatcher_factory(faults=faults, max_attempts=1)
    await dispatcher.start()
    webhook_sink.hang = True
    dispatcher.emit({"n": 1})
    assert await dispatcher.drain(5)
    assert dispatcher.stats()["last_error"] == "TimeoutError"
    assert dispatcher.stats()["abandoned"] == 1


async def test_drain_reports_false_while_a_batch_is_still_failing(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    webhook_sink.statuses = [500] * 100
    dispatcher = dispatcher_factory(retry_delays=(10.0,))
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    assert not await dispatcher.drain(0.2)
    assert dispatcher.pending == 1


async def test_events_without_a_url_are_discarded(dispatcher_factory: Factory) -> None:
    dispatcher = dispatcher_factory()
    dispatcher.set_url(None)
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    assert dispatcher.pending == 0
    assert dispatcher.stats()["discarded"] == 1


async def test_drop_fault_loses_events_and_duplicate_fault_resends_the_same_body(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    faults = Faults(SandboxClock(), seed=1)
    faults.update(webhook_drop_rate=1.0)
    dispatcher = dispatcher_factory(faults=faults)
    await dispatcher.start()
    dispatcher.emit({"n": 1})
    assert await dispatcher.drain(5)
    assert webhook_sink.deliveries == []
    assert dispatcher.stats()["dropped"] == 1
    faults.update(webhook_drop_rate=0.0, webhook_duplicate_rate=1.0)
    dispatcher.emit({"n": 2})
    assert await dispatcher.drain(5)
    assert _ids(webhook_sink) == [[2], [2]]
    assert webhook_sink.deliveries[0].body == webhook_sink.deliveries[1].body


async def test_reorder_fault_delivers_events_out_of_emit_order(
    webhook_sink: WebhookSink, dispatcher_factory: Factory
) -> None:
    faults = Faults(SandboxClock(), seed=7)
    faults.update(webhook_reorder=True)
    dispatcher = dispatcher_factory(faults=faults, max_batch=50)
    for n in range(50):
        dispatcher.emit({"n": n})
    await dispatcher.start()
    assert await dispatcher.drain(5)
    delivered: list[Event] = [{"n": n} for batch in _ids(webhook_sink) for n in batch]
    assert sorted(e["n"] for e in delivered) == list(range(50))
    assert [e["n"] for e in delivered] != list(range(50))

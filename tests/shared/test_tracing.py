"""OpenTelemetry, optional: off (and no trace headers) without an endpoint; on, one change's spans form one trace
from the receiver's webhook through the broker message and the worker's change and apply to the API call."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from services.worker import Worker
from services.worker._engine import Applied
from services.worker.rules import Hints, Outcome
from shared import tracing
from shared.bus import ApplyCommand, changes_message
from shared.clients._metrics import measured
from shared.config import Settings
from shared.domain import Action, Direction, Kind, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.store import open_store
from shared.syncconfig import ConnectionSettings, SyncSettings

ENVELOPE = ChangeEnvelope(
    provider=Provider.HUBSPOT, account_id="101", object_type="contact", object_id="7", operation=Operation.UPDATED,
    occurred_at_ms=1_000, event_id="e1", request_id="req-1",
)  # fmt: skip
KEY = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "7")


def test_without_an_endpoint_tracing_stays_off_and_messages_carry_no_trace() -> None:
    with mock.patch.dict(os.environ, {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}):
        assert not tracing.configure_tracing("worker")
    assert not tracing.enabled()
    with tracing.span("webhook hubspot"):
        assert tracing.carrier() == {}
        assert changes_message([ENVELOPE]).headers == {}


@pytest.fixture
def spans() -> Iterator[Any]:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_tracer_provider(None)


class ReadingEngine:
    """An apply that makes one API call."""

    async def apply(self, key: PendingKey, hints: Hints) -> Applied:
        with measured("hubspot", "read"):
            pass
        return Applied(Outcome(Action.UPDATED, Direction.HUBSPOT_TO_QBO))


class Message:
    """What on_change reads of a RabbitMQ delivery."""

    def __init__(self, body: bytes, headers: dict[str, Any]) -> None:
        self.body, self.headers, self.message_id, self.acked = body, headers, "m1", False

    async def ack(self) -> None:
        self.acked = True


class QuietWorker(Worker):
    async def _schedule(self, command: ApplyCommand, delay_queue: str) -> None:
        return None


async def test_one_change_is_one_trace_from_the_webhook_to_the_api_call(spans: Any) -> None:
    with tracing.span("webhook hubspot"):
        published = changes_message([ENVELOPE])
    assert "traceparent" in (published.headers or {})
    connection = ConnectionSettings(name="acme", hubspot_portal_id="101", qbo_realm_id="9", setup_date="2026-01-01")
    async with open_store("sqlite://:memory:") as store:
        worker = QuietWorker(Settings(), SyncSettings(connection=[connection]), store, ReadingEngine())  # type: ignore[arg-type]
        message = Message(published.body, dict(published.headers or {}))
        await worker.on_change(message)  # type: ignore[arg-type]
        assert message.acked
        await worker._apply(ApplyCommand("acme", "contact", "hubspot", "7", attempt=1), KEY)
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"webhook hubspot", "change", "apply contact", "hubspot read"}
    chain = ["webhook hubspot", "change", "apply contact", "hubspot read"]
    assert len({finished[name].context.trace_id for name in chain}) == 1
    for parent, child in itertools.pairwise(chain):
        assert finished[child].parent.span_id == finished[parent].context.span_id, child

"""Follow one change, end to end: the webhook's request id in the worker's `applied` line, and the end-to-end lag
(source change time to the write on the other side) observed by a real sync."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from shared.metrics import SYNC_LAG
from tests.integration.conftest import Stack, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Every line (DEBUG up), with what was bound to the context (the request id), as an event dict."""
    before = structlog.get_config()
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture
    finally:
        structlog.configure(**before)


def lag_count(kind: str, source: str) -> tuple[float, float]:
    """(observations, their sum) of hsqbo_sync_lag_seconds for one kind and source side."""
    count = total = 0.0
    for metric in SYNC_LAG.collect():
        for sample in metric.samples:
            if sample.labels.get("kind") == kind and sample.labels.get("source") == source:
                if sample.name.endswith("_count"):
                    count = sample.value
                elif sample.name.endswith("_sum"):
                    total = sample.value
    return count, total


def lines(logs: LogCapture, event: str, **fields: Any) -> list[MutableMapping[str, Any]]:
    return [
        entry
        for entry in logs.entries
        if entry["event"] == event and all(entry.get(name) == value for name, value in fields.items())
    ]


def queued_request_ids(logs: LogCapture) -> set[str]:
    """The request ids the receiver's `changes_queued` lines name (one line a confirmed message)."""
    return {request_id for entry in lines(logs, "changes_queued") for request_id in entry["request_ids"]}


async def test_a_webhooks_request_id_is_in_the_workers_applied_line_for_its_change(
    stack: Stack, logs: LogCapture
) -> None:
    created = stack.hubspot_edit("contacts", "create", properties={"email": "follow@example.com", "firstname": "F"})
    await stack.settle()
    queued = queued_request_ids(logs)
    assert queued, "the receiver logs each message it queued with the request ids of its webhooks"
    [applied] = lines(logs, "applied", kind="contact", side="hubspot", object_id=created["id"])
    assert applied["action"] == "created"
    assert applied["request_id"] in queued


async def test_the_api_clients_lines_for_a_change_carry_its_webhooks_request_id(stack: Stack, logs: LogCapture) -> None:
    stack.sandbox.qbo.faults.update(error_rate=1.0)  # QuickBooks answers 5xx until reset: the client logs api_error
    stack.hubspot_edit("contacts", "create", properties={"email": "client@example.com", "firstname": "C"})
    errors = await eventually(lambda: lines(logs, "api_error", provider="quickbooks"))
    stack.sandbox.qbo.faults.reset()
    await stack.settle()
    assert errors[0]["request_id"] in queued_request_ids(logs)


async def test_a_real_sync_observes_the_end_to_end_lag(stack: Stack) -> None:
    before, before_sum = lag_count("contact", "hubspot")
    stack.hubspot_edit("contacts", "create", properties={"email": "lag@example.com", "firstname": "Lag"})
    await stack.settle()
    after, after_sum = lag_count("contact", "hubspot")
    assert after == before + 1
    # From HubSpot's occurredAt to the write in QBO: the debounce's quiet time and a few API calls.
    assert 0 < after_sum - before_sum < 30

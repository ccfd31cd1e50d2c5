"""Group commit of the receiver's publishes: requests arriving together share one message and its confirm, and
none returns before that confirm (or fails otherwise)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import pytest
import structlog

from services.receiver._coalesce import CoalescingPublisher
from shared import tracing
from shared.broker import MAX_EVENTS_PER_MESSAGE, Lane
from shared.domain import Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.errors import BrokerUnavailable, BusError


def envelope(number: int) -> ChangeEnvelope:
    return ChangeEnvelope(
        provider=Provider.HUBSPOT, account_id="2001", object_type="contact", object_id=str(number),
        operation=Operation.UPDATED, occurred_at_ms=1_700_000_000_000, event_id=f"e-{number}",
    )  # fmt: skip


class HeldPublisher:
    """Records each message it is handed; confirms (or fails) only when the test says so."""

    def __init__(self) -> None:
        self.messages: list[list[str]] = []
        self.confirm = asyncio.Event()
        self.failure: BusError | None = None

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, envelopes: Sequence[ChangeEnvelope], lane: Lane = Lane.LIVE) -> None:
        self.messages.append([e.event_id for e in envelopes])
        await self.confirm.wait()
        if self.failure is not None:
            raise self.failure


async def test_a_lone_request_goes_at_once_in_its_own_message() -> None:
    held = HeldPublisher()
    held.confirm.set()
    await CoalescingPublisher(held).publish([envelope(1), envelope(2)])
    assert held.messages == [["e-1", "e-2"]]


async def test_requests_arriving_while_a_message_awaits_its_confirm_share_the_next_message() -> None:
    held = HeldPublisher()
    publisher = CoalescingPublisher(held, max_in_flight=1)
    first = asyncio.create_task(publisher.publish([envelope(1)]))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(publisher.publish([envelope(n)])) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert held.messages == [["e-1"]]  # the others wait for its confirm
    assert not any(task.done() for task in [first, *later])  # and nobody returns before a confirm
    held.confirm.set()
    await asyncio.gather(first, *later)
    assert held.messages == [["e-1"], ["e-2", "e-3", "e-4"]]


async def test_a_full_message_goes_without_waiting_for_the_confirm_a_part_filled_one_waits_for() -> None:
    held = HeldPublisher()
    publisher = CoalescingPublisher(held)
    first = asyncio.create_task(publisher.publish([envelope(1)]))
    await asyncio.sleep(0.01)
    tenth = MAX_EVENTS_PER_MESSAGE // 10
    later = [
        asyncio.create_task(publisher.publish([envelope(n) for n in range(start, start + count)]))
        for start, count in ((10_000, 6 * tenth), (20_000, 5 * tenth), (30_000, tenth))
    ]
    await asyncio.sleep(0.01)
    # 1.2 messages' worth wait: the first request's events fill a message as far as a request fits, and it goes at
    # once; the rest are less than a message and wait for the confirms.
    assert [len(message) for message in held.messages] == [1, 6 * tenth]
    held.confirm.set()
    await asyncio.gather(first, *later)
    assert [len(message) for message in held.messages] == [1, 6 * tenth, 6 * tenth]


async def test_a_message_that_is_not_confirmed_fails_every_request_in_it() -> None:
    held = HeldPublisher()
    held.failure = BrokerUnavailable("down")
    publisher = CoalescingPublisher(held, max_in_flight=1)
    tasks = [asyncio.create_task(publisher.publish([envelope(n)])) for n in (1, 2)]
    await asyncio.sleep(0.01)
    held.confirm.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [BusError, BusError]
    assert held.messages == [["e-1", "e-2"]]


async def test_with_tracing_on_each_request_keeps_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "enabled", lambda: True)
    held = HeldPublisher()
    held.confirm.set()
    publisher = CoalescingPublisher(held)
    await asyncio.gather(*(publisher.publish([envelope(n)]) for n in (1, 2)))
    assert sorted(held.messages) == [["e-1"], ["e-2"]]


def with_request_id(number: int, request_id: str) -> ChangeEnvelope:
    return dataclasses.replace(envelope(number), request_id=request_id)


@pytest.fixture
def lines() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every line logged at INFO and up, with what was bound to its context."""
    before = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    try:
        yield capture.entries
    finally:
        structlog.configure(**before)


async def test_each_confirmed_message_logs_one_line_naming_its_requests(lines: list[MutableMapping[str, Any]]) -> None:
    held = HeldPublisher()
    publisher = CoalescingPublisher(held, max_in_flight=1)
    with structlog.contextvars.bound_contextvars(request_id="r-1"):  # the request whose arrival sends the message
        first = asyncio.create_task(publisher.publish([with_request_id(1, "r-1")]))
    await asyncio.sleep(0.01)
    later = [
        asyncio.create_task(publisher.publish([with_request_id(2, "r-2"), with_request_id(3, "r-2")])),
        asyncio.create_task(publisher.publish([with_request_id(4, "r-3")])),
    ]
    await asyncio.sleep(0.01)
    assert lines == []  # nothing is logged as queued before its confirm
    held.confirm.set()
    await asyncio.gather(first, *later)
    queued = [line for line in lines if line["event"] == "changes_queued"]
    assert [(line["events"], line["request_ids"]) for line in queued] == [(1, ["r-1"]), (3, ["r-2", "r-3"])]
    assert all("request_id" not in line for line in queued)  # the line belongs to no one request


async def test_a_message_that_fails_logs_no_queued_line(lines: list[MutableMapping[str, Any]]) -> None:
    held = HeldPublisher()
    held.failure = BrokerUnavailable("down")
    held.confirm.set()
    with pytest.raises(BusError):
        await CoalescingPublisher(held).publish([with_request_id(1, "r-1")])
    assert [line for line in lines if line["event"] == "changes_queued"] == []

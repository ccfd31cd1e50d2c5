"""Group commit for the receiver's publishes: the events of requests that arrive together travel as one message,
with one confirm for them all. A message's confirm is what costs (aio-pika marshals three frames and waits for the
broker's ack per message; a profile of single-event requests put most of the receiver's own time there), so under
load this is what lets the receiver keep pace with the requests.

How: a message goes when no other awaits its confirm, or when a full one is waiting. A request's events wait for
the next flush, which runs on the event loop's next turn; with no message awaiting its confirm, a flush sends
everything waiting (so a lone request goes at once), as messages of at most `MAX_EVENTS_PER_MESSAGE` events (a
request's events are never split across messages unless it alone has more). While one awaits its confirm, whatever
arrives waits for the confirms and goes in the next message, unless a full message's worth is waiting: that one goes
at once, up to `MAX_IN_FLIGHT` messages awaiting their confirms. Under load, messages are as large as the confirms' pace
allows: a message costs the receiver (aio-pika's frames, a socket write that wakes the broker) far more than an
event in it, and a second part-filled message in flight (the earlier policy) made twice as many of them.

The guarantee is the receiver's own: `publish` returns only once the message holding the request's events is
confirmed, and raises that message's failure otherwise (every request in it answers 503; the sender retries).
With tracing on, a request's message carries its trace context in its headers, so each request keeps its own
message.

Each confirmed message logs one `changes_queued` line naming the requests whose events it holds (a line per request
was a profile's visible share of the receiver's time).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Iterable, Sequence

from shared import tracing
from shared.broker import MAX_EVENTS_PER_MESSAGE, EventPublisher, Lane
from shared.envelope import ChangeEnvelope
from shared.errors import BusError
from shared.logging import get_logger

log = get_logger("hsqbo.receiver")

MAX_IN_FLIGHT = 4  # messages awaiting their confirm at once; all but the oldest full ones


@dataclasses.dataclass(slots=True)
class _Waiting:
    envelopes: Sequence[ChangeEnvelope]
    outcome: asyncio.Future[None]


class CoalescingPublisher:
    """An `EventPublisher` over another (the broker), publishing the live lane's concurrent requests together."""

    def __init__(self, publisher: EventPublisher, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._publisher = publisher
        self._max_in_flight = max_in_flight
        self._waiting: list[_Waiting] = []
        self._waiting_events = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._flush_scheduled = False

    @property
    def ready(self) -> bool:
        return self._publisher.ready

    async def start(self) -> None:
        await self._publisher.start()

    async def close(self) -> None:
        await self._publisher.close()

    async def publish(self, envelopes: Sequence[ChangeEnvelope], lane: Lane = Lane.LIVE) -> None:
        """Return once the message holding `envelopes` is confirmed; raise its failure (BusError) otherwise."""
        if not envelopes:
            return
        if lane is not Lane.LIVE or tracing.enabled():
            await self._publisher.publish(envelopes, lane)
            _log_queued(len(envelopes), dict.fromkeys(envelope.request_id for envelope in envelopes))
            return
        outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(envelopes, outcome))
        self._waiting_events += len(envelopes)
        self._schedule_flush()
        await outcome

    def _due(self) -> bool:
        """Whether a message goes now: none awaits its confirm, or a full one is waiting (and in-flight room)."""
        if not self._waiting or len(self._in_flight) >= self._max_in_flight:
            return False
        return not self._in_flight or self._waiting_events >= MAX_EVENTS_PER_MESSAGE

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._due():
            self._flush_scheduled = True
            # A context of its own: a message's work (and its log line) belongs to no one request of it.
            asyncio.get_running_loop().call_soon(self._flush, context=contextvars.Context())

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._due():
            batch = self._take()
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._sent)

    def _take(self) -> list[_Waiting]:
        """The waiting requests that fit one message, first come first; the first one always."""
        taken, events = 0, 0
        for waiting in self._waiting:
            if taken and events + len(waiting.envelopes) > MAX_EVENTS_PER_MESSAGE:
                break
            taken += 1
            events += len(waiting.envelopes)
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        self._waiting_events -= events
        return [waiting for waiting in batch if not waiting.outcome.done()]  # a request gone meanwhile sends nothing

    async def _send(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        envelopes = [envelope for waiting in batch for envelope in waiting.envelopes]
        try:
            await self._publisher.publish(envelopes)
        except BusError as exc:
            for waiting in batch:
                if not waiting.outcome.done():
                    waiting.outcome.set_exception(BusError(str(exc)))
        except BaseException as exc:  # a bug or a cancellation: every request of the message fails with it
            for waiting in batch:
                if not waiting.outcome.done():
                    waiting.outcome.set_exception(BusError(f"publish failed: {type(exc).__name__}"))
            raise
        else:
            for waiting in batch:
                if not waiting.outcome.done():
                    waiting.outcome.set_result(None)
            _log_queued(len(envelopes), dict.fromkeys(waiting.envelopes[0].request_id for waiting in batch))

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._schedule_flush()


def _log_queued(events: int, request_ids: Iterable[str | None]) -> None:
    log.info("changes_queued", events=events, request_ids=[request_id for request_id in request_ids if request_id])

"""An in-memory stand-in for `shared.broker.Broker` (arroyo's LocalBroker idea): queues as lists, delayed messages
released by a mocked clock, consumers served one delivery at a time, fairly across queues. No RabbitMQ needed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import cast

import aio_pika

from shared.broker import (
    APPLY_QUEUE,
    BULK_CHANGES_QUEUE,
    CHANGES_QUEUE,
    DEAD_EXCHANGE,
    DEAD_QUEUE,
    ApplyCommand,
    Broker,
    Delivery,
    Handler,
    Lane,
    bulk_apply_queue,
    changes_message,
)
from shared.envelope import ChangeEnvelope


@dataclasses.dataclass
class MemoryBroker:
    clock: Callable[[], float]
    queues: dict[str, list[Delivery]] = dataclasses.field(default_factory=dict)
    delayed: list[tuple[float, str, Delivery]] = dataclasses.field(default_factory=list)
    handlers: dict[str, Handler] = dataclasses.field(default_factory=dict)
    up: bool = True
    log: list[str] = dataclasses.field(default_factory=list)  # the queue of each delivery handled, in order

    def as_broker(self) -> Broker:
        return cast(Broker, self)

    @property
    def ready(self) -> bool:
        return self.up

    async def start(self) -> None:
        pass

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109
        return self.up

    async def close(self) -> None:
        pass

    def _put(self, queue: str, delivery: Delivery) -> None:
        if not self.up:
            from shared.errors import BrokerUnavailable

            raise BrokerUnavailable("down")
        self.queues.setdefault(queue, []).append(delivery)

    async def publish(self, envelopes: Sequence[ChangeEnvelope], lane: Lane = Lane.LIVE) -> None:
        for envelope in envelopes:  # one message each: a test sends a delivery through the scheduler itself
            message = changes_message([envelope])
            queue = CHANGES_QUEUE if lane is Lane.LIVE else BULK_CHANGES_QUEUE
            self._put(queue, Delivery(message.body, dict(message.headers or {}), message.message_id))

    async def publish_apply(
        self, command: ApplyCommand, *, delay: float = 0.0, expires_in: float | None = None
    ) -> None:
        queue = APPLY_QUEUE if command.lane == Lane.LIVE else bulk_apply_queue(command.connection)
        delivery = Delivery(command.message().body, {})
        if delay:
            if not self.up:
                self._put(queue, delivery)  # raises
            self.delayed.append((self.clock() + (expires_in or delay), queue, delivery))
        else:
            self._put(queue, delivery)

    async def publish_message(self, message: aio_pika.Message, *, exchange: str = "", routing_key: str) -> None:
        queue = DEAD_QUEUE if exchange == DEAD_EXCHANGE else routing_key
        self._put(queue, Delivery(message.body, dict(message.headers or {}), message.message_id))

    async def consume(self, queue_name: str, handler: Handler, *, prefetch: int) -> None:
        self.handlers[queue_name] = handler

    async def cancel_consumers(self) -> None:
        self.handlers.clear()

    def release_due(self) -> None:
        now = self.clock()
        due = [entry for entry in self.delayed if entry[0] <= now]
        self.delayed = [entry for entry in self.delayed if entry[0] > now]
        for _, queue, delivery in sorted(due, key=lambda entry: entry[0]):
            self.queues.setdefault(queue, []).append(delivery)

    async def message_count(self, queue_name: str) -> int:
        return len(self.queues.get(queue_name, []))

    def commands(self, queue: str = APPLY_QUEUE) -> list[ApplyCommand]:
        return [ApplyCommand.from_json(delivery.body) for delivery in self.queues.get(queue, [])]

    async def run_until_idle(self, limit: int = 10_000) -> None:
        """Deliver what is queued to the consumers, one delivery per consumed queue in turn, until none is left."""
        for _ in range(limit):
            self.release_due()
            served = False
            for queue, handler in list(self.handlers.items()):
                waiting = self.queues.get(queue)
                if waiting:
                    self.log.append(queue)
                    await handler(waiting.pop(0))
                    served = True
            if not served:
                return
        raise AssertionError("still busy after the delivery limit")

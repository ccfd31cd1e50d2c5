"""RabbitMQ: the topology, declared in one place, and a publisher that returns only once the broker has the message.

Topology (all durable; quorum queues, because classic mirrored queues lost acknowledged writes under partitions):

    receiver ──► exchange `hsqbo.changes` (topic) ──#──► quorum queue `hsqbo.changes` ──► worker
                       one message per delivery (its events as an array; the worker splits them per record);
                       routing key provider.account.object_type.object_id for a lone event, else
                       provider.account.delivery
    any queue's rejects / over-limit deliveries ──► exchange `hsqbo.dead` (fanout) ──► quorum queue `hsqbo.dead`

    worker: one apply command per record, delayed by a queue whose messages expire into the apply exchange:
        `hsqbo.debounce.<ms>ms` (TTL = quiet window) ──expired──► exchange `hsqbo.apply` (fanout) ──► `hsqbo.apply`
        `hsqbo.retry.<s>s` (one queue per backoff tier)  ──expired──► exchange `hsqbo.apply`
    A queue expires messages only at its head, so each delay has its own queue, named after it.

Queue arguments are fixed at declaration (RabbitMQ refuses to redeclare with other arguments), so the dead-letter
configuration is set from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any, Protocol

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from shared import tracing
from shared.domain import Kind, Part, PendingKey, Provider
from shared.envelope import ChangeEnvelope, encode_changes
from shared.errors import BrokerUnavailable, PublishNotConfirmed
from shared.logging import get_logger
from shared.metrics import PUBLISH_CONFIRM_LATENCY

CHANGES_EXCHANGE = "hsqbo.changes"
CHANGES_QUEUE = "hsqbo.changes"
DEAD_EXCHANGE = "hsqbo.dead"
DEAD_QUEUE = "hsqbo.dead"
APPLY_EXCHANGE = "hsqbo.apply"
APPLY_QUEUE = "hsqbo.apply"

# A HubSpot delivery holds at most 100 events: it is one message. Larger sets (a poll) are cut into messages of this
# many, so no message grows without bound.
MAX_EVENTS_PER_MESSAGE = 100

# A message redelivered this many times (a consumer crashing on it) is dead-lettered instead of looping forever.
DELIVERY_LIMIT = 20

log = get_logger(__name__)


def quorum_queue_arguments() -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # required by at-least-once dead-lettering; the publisher sees a nack
        "x-delivery-limit": DELIVERY_LIMIT,
    }


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    """Declare every exchange and queue; idempotent. Returns the exchange the receiver publishes to."""
    dead = await channel.declare_exchange(DEAD_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    await dead_queue.bind(dead)
    changes = await channel.declare_exchange(CHANGES_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(CHANGES_QUEUE, durable=True, arguments=quorum_queue_arguments())
    await queue.bind(changes, routing_key="#")
    return changes


def debounce_queue(quiet_seconds: float) -> str:
    return f"hsqbo.debounce.{round(quiet_seconds * 1000)}ms"


def retry_queue(delay_seconds: float) -> str:
    return f"hsqbo.retry.{round(delay_seconds * 1000)}ms"


async def declare_worker_topology(
    channel: AbstractChannel, *, quiet_seconds: float, retry_delays: Sequence[float]
) -> None:
    """The worker's delay queues and apply queue, on top of `declare_topology`."""
    await declare_topology(channel)
    apply = await channel.declare_exchange(APPLY_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    queue = await channel.declare_queue(APPLY_QUEUE, durable=True, arguments=quorum_queue_arguments())
    await queue.bind(apply)
    for name, delay in [(debounce_queue(quiet_seconds), quiet_seconds)] + [(retry_queue(d), d) for d in retry_delays]:
        arguments = {
            **quorum_queue_arguments(),
            "x-message-ttl": round(delay * 1000),
            "x-dead-letter-exchange": APPLY_EXCHANGE,
        }
        await channel.declare_queue(name, durable=True, arguments=arguments)


@dataclasses.dataclass(frozen=True, slots=True)
class ApplyCommand:
    """ "Bring this record up to date": a key of the store's pending work, plus its retry history."""

    connection: str
    kind: str
    side: str
    object_id: str
    attempt: int = 0
    last_error: str | None = None
    first_failed_at: float | None = None
    part: str | None = None  # PendingKey.part

    @classmethod
    def for_key(cls, key: PendingKey) -> ApplyCommand:
        return cls(key.connection, str(key.kind), str(key.side), key.object_id, part=key.part)

    @property
    def key(self) -> PendingKey:
        part = None if self.part is None else Part(self.part)
        return PendingKey(self.connection, Kind(self.kind), Provider(self.side), self.object_id, part)

    def message(self, *, expires_in: float | None = None) -> aio_pika.Message:
        """`expires_in` shortens the delay queue's TTL for this message (retry jitter)."""
        return aio_pika.Message(
            orjson.dumps(self),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            type="apply",
            expiration=expires_in,
        )

    @classmethod
    def from_json(cls, data: bytes) -> ApplyCommand:
        return cls(**orjson.loads(data))


def changes_message(envelopes: Sequence[ChangeEnvelope]) -> aio_pika.Message:
    """One persistent message carrying `envelopes` (the events of one delivery): one confirm for all of them."""
    trace: dict[str, Any] = tracing.carrier()  # the webhook's trace, when tracing is on (shared/tracing.py)
    first = envelopes[0]
    lone = len(envelopes) == 1
    return aio_pika.Message(
        encode_changes(envelopes),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        # The dead-letter queue lists a message by its id: a delivery's is its first event's and how many follow.
        message_id=first.event_id if lone else f"{first.event_id}+{len(envelopes) - 1}",
        timestamp=min(envelope.occurred_at_ms for envelope in envelopes) / 1000,
        type=f"{first.provider}.{first.object_type}.{first.operation}" if lone else "changes",
        headers=trace or None,
    )


def changes_routing_key(envelopes: Sequence[ChangeEnvelope]) -> str:
    """A lone event's record key; a delivery's first event's account (the queue binds every key)."""
    first = envelopes[0]
    return first.routing_key if len(envelopes) == 1 else f"{first.provider}.{first.account_id}.delivery"


class EventPublisher(Protocol):
    """What the receiver needs from the bus; tests substitute an in-memory one."""

    @property
    def ready(self) -> bool: ...
    async def start(self) -> None: ...
    async def publish(self, envelopes: Sequence[ChangeEnvelope]) -> None: ...
    async def close(self) -> None: ...


class Publisher:
    """Publishes change envelopes with publisher confirms.

    It connects in the background and keeps reconnecting (aio-pika's robust connection re-declares the topology),
    so a process started while the broker is down comes up unready and recovers without a restart.
    """

    def __init__(self, url: str, *, confirm_timeout: float) -> None:
        self._url = url
        self._confirm_timeout = confirm_timeout
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._connect_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connect_task = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        # fail_fast=False: keep trying until the broker answers, instead of failing the first attempt.
        connection = await aio_pika.connect_robust(self._url, fail_fast=False, reconnect_interval=1)
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await declare_topology(channel)
        log.info("bus_connected")

    @property
    def ready(self) -> bool:
        return (
            self._exchange is not None
            and self._connection is not None
            and self._connection.connected.is_set()
            and not self._connection.is_closed
        )

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109  # a bounded wait is the point
        """Wait up to `timeout` seconds for the first connection; False if it is still not ready."""
        if self._connect_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._connect_task), timeout)
        return self.ready

    async def publish(self, envelopes: Sequence[ChangeEnvelope]) -> None:
        """Return once every envelope is confirmed by the broker; raise BusError otherwise (nothing is assumed
        queued then: the caller answers non-2xx so the sender retries; a partial success only risks duplicates,
        which the worker tolerates). Envelopes travel `MAX_EVENTS_PER_MESSAGE` to a message: one confirm each."""
        if not envelopes:
            return
        if not self.ready or self._exchange is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        exchange = self._exchange
        started = time.perf_counter()

        async def one(chunk: Sequence[ChangeEnvelope]) -> None:
            try:
                await exchange.publish(changes_message(chunk), changes_routing_key(chunk), mandatory=True)
            except CONNECTION_EXCEPTIONS as exc:  # nack, return, channel or connection loss
                raise PublishNotConfirmed(f"publish failed: {type(exc).__name__}") from None
            PUBLISH_CONFIRM_LATENCY.observe(time.perf_counter() - started)

        size = MAX_EVENTS_PER_MESSAGE
        chunks = [envelopes[at : at + size] for at in range(0, len(envelopes), size)]
        try:
            async with asyncio.timeout(self._confirm_timeout):
                if len(chunks) == 1:  # the usual case: no task group to set up
                    await one(chunks[0])
                else:
                    async with asyncio.TaskGroup() as group:
                        for chunk in chunks:
                            group.create_task(one(chunk))
        except TimeoutError:
            raise PublishNotConfirmed(f"no confirm within {self._confirm_timeout}s") from None
        except ExceptionGroup as failures:
            first = failures.exceptions[0]
            if isinstance(first, PublishNotConfirmed):
                raise first from None
            raise

    async def close(self) -> None:
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        if self._connection is not None:
            await self._connection.close()

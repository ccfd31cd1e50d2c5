"""RabbitMQ: the topology, declared in one place, and the one `Broker` object every process talks to it through.

Topology (all durable; quorum queues, because classic mirrored queues lost acknowledged writes under partitions):

    receiver ──► exchange `hsqbo.changes` (topic) ──#──► queue `hsqbo.changes`       ──► worker (live lane)
    poller   ──► exchange `hsqbo.changes.bulk` ──#──► queue `hsqbo.changes.bulk`      ──► worker (bulk lane)
                       one message per delivery (its events as an array; the worker splits them per record);
                       routing key provider.account.object_type.object_id for a lone event, else
                       provider.account.delivery
    worker, "Sync now", replay ──► exchange `hsqbo.applies` (topic), routing key [<delay>.]<lane>:
        `live`              ──► queue `hsqbo.apply`                     (webhooks, Sync now, replays, follow-ups)
        `bulk.<connection>` ──► queue `hsqbo.apply.bulk.<connection>`   (the poller's catch-up, backfills)
    a retry ──► exchange `hsqbo.delays` (topic), `<ms>ms.<lane>` ──► queue `hsqbo.delay.<ms>ms` (TTL <ms>)
                ──expired──► `hsqbo.applies`, same routing key: back into its own lane
    the worker's dead letters (with their history), and a queue's over-limit deliveries
                ──► exchange `hsqbo.dead` (fanout) ──► queue `hsqbo.dead`

Lanes: live work never waits behind a backfill (its own queues, consumed on a channel of its own), and each
connection's bulk work has its own apply queue with its own consumer and prefetch, so one connection's backfill
never starves another's. A delay queue expires messages only at its head, so each delay has its own queue.

Queue arguments are fixed at declaration (RabbitMQ refuses to redeclare with other arguments), so the dead-letter
configuration is set from the start.

`Broker` is one connection per process (the receiver's publisher, the worker, the poller, the DLQ tooling and the
status page's "Sync now" and replay all share it): it connects in the background with backoff (one log line per
failed attempt, no traceback), re-declares the topology after a reconnect (aio-pika's robust connection), publishes
with confirms, and consumes with a channel per queue: a handler that returns acknowledges its delivery, one that is
cancelled (shutdown) leaves it to the broker to redeliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from shared import tracing
from shared.config import Settings
from shared.domain import Kind, Part, PendingKey, Provider
from shared.envelope import ChangeEnvelope, encode_changes
from shared.errors import BrokerUnavailable, PublishNotConfirmed
from shared.logging import get_logger
from shared.metrics import PUBLISH_CONFIRM_LATENCY

CHANGES_EXCHANGE = "hsqbo.changes"
CHANGES_QUEUE = "hsqbo.changes"
BULK_CHANGES_EXCHANGE = "hsqbo.changes.bulk"
BULK_CHANGES_QUEUE = "hsqbo.changes.bulk"
DEAD_EXCHANGE = "hsqbo.dead"
DEAD_QUEUE = "hsqbo.dead"
APPLY_EXCHANGE = "hsqbo.applies"
APPLY_QUEUE = "hsqbo.apply"
DELAY_EXCHANGE = "hsqbo.delays"

# A message redelivered this many times (a consumer crashing on it) is dead-lettered by the broker instead of looping
# forever. The worker dead-letters it itself, with its history, one delivery before (`Delivery.deliveries`).
DELIVERY_LIMIT = 20
# A HubSpot delivery holds at most 100 events: it is one message. Larger sets (a poll, the receiver's requests that
# arrived together) are cut into messages of this many, so no message grows without bound. Not more: the worker records
# a message's changes one after the other (messages run side by side), and with 500 a live edit during a backfill
# reached p95 2.0 s (target 1.24 s) while deliveries of 20 gained about a tenth at the receiver.
MAX_EVENTS_PER_MESSAGE = 100
CONNECT_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # between connection attempts, then the last one again

log = get_logger("hsqbo.broker")


class Lane(enum.StrEnum):
    LIVE = "live"  # webhooks, "Sync now", replays, records woken by another, follow-ups of a change mid-apply
    BULK = "bulk"  # the poller's catch-up, backfills, reconciliation


def bulk_apply_queue(connection: str) -> str:
    return f"{APPLY_QUEUE}.bulk.{connection}"


def delay_queue(delay_seconds: float) -> str:
    return f"hsqbo.delay.{round(delay_seconds * 1000)}ms"


def lane_key(lane: Lane, connection: str) -> str:
    """The routing key of an apply in `lane` (within `hsqbo.applies`)."""
    return str(Lane.LIVE) if lane is Lane.LIVE else f"bulk.{connection}"


def quorum_queue_arguments() -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # required by at-least-once dead-lettering; the publisher sees a nack
        "x-delivery-limit": DELIVERY_LIMIT,
    }


async def declare_topology(
    channel: AbstractChannel, *, delays: Iterable[float] = (), connections: Iterable[str] = ()
) -> None:
    """Declare the exchanges and queues; idempotent. The changes lanes, the live apply queue and the dead letters
    always; a delay queue per retry delay and a bulk apply queue per connection when given (the worker's)."""
    dead = await channel.declare_exchange(DEAD_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    await dead_queue.bind(dead)
    for exchange_name, queue_name in ((CHANGES_EXCHANGE, CHANGES_QUEUE), (BULK_CHANGES_EXCHANGE, BULK_CHANGES_QUEUE)):
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(queue_name, durable=True, arguments=quorum_queue_arguments())
        await queue.bind(exchange, routing_key="#")
    applies = await channel.declare_exchange(APPLY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    live = await channel.declare_queue(APPLY_QUEUE, durable=True, arguments=quorum_queue_arguments())
    await live.bind(applies, routing_key=f"#.{Lane.LIVE}")
    for connection in connections:
        bulk = await channel.declare_queue(bulk_apply_queue(connection), durable=True,
                                           arguments=quorum_queue_arguments())  # fmt: skip
        await bulk.bind(applies, routing_key=f"#.{lane_key(Lane.BULK, connection)}")
    delayed = await channel.declare_exchange(DELAY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    for delay in delays:
        arguments = {
            **quorum_queue_arguments(),
            "x-message-ttl": round(delay * 1000),
            "x-dead-letter-exchange": APPLY_EXCHANGE,  # the routing key stays: back into its own lane
        }
        queue = await channel.declare_queue(delay_queue(delay), durable=True, arguments=arguments)
        await queue.bind(delayed, routing_key=f"{round(delay * 1000)}ms.#")


@dataclasses.dataclass(frozen=True, slots=True)
class ApplyCommand:
    """ "Bring this record up to date": a key of the store's pending work, plus its retry history."""

    connection: str
    kind: str
    side: str
    object_id: str
    attempt: int = 0  # failures that counted against the record (see services/worker/_retry.py)
    last_error: str | None = None
    first_failed_at: float | None = None
    lane: str = Lane.LIVE
    waits: int = 0  # failures that did not count: the store or the broker unavailable, throttling
    part: str | None = None  # PendingKey.part

    @classmethod
    def for_key(cls, key: PendingKey, lane: Lane = Lane.LIVE) -> ApplyCommand:
        return cls(key.connection, str(key.kind), str(key.side), key.object_id, part=key.part, lane=lane)

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
        fields = orjson.loads(data)
        if not isinstance(fields, dict):
            raise TypeError("an apply command is a JSON object")
        return cls(**{name: value for name, value in fields.items() if name in _APPLY_FIELDS})


_APPLY_FIELDS = frozenset(field.name for field in dataclasses.fields(ApplyCommand))


def changes_message(envelopes: Sequence[ChangeEnvelope]) -> aio_pika.Message:
    """One persistent message carrying `envelopes` (the events of one delivery): one confirm for all of them."""
    first = envelopes[0]
    lone = len(envelopes) == 1
    trace: dict[str, Any] = tracing.carrier()  # the webhook's trace, when tracing is on (shared/tracing.py)
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


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a consumer: what a handler may read (never the channel: the broker acknowledges)."""

    body: bytes
    headers: dict[str, Any]
    message_id: str | None = None
    deliveries: int = 1  # 1 on the first delivery; a quorum queue counts the redeliveries (`x-delivery-count`)

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Delivery:
        headers = dict(message.headers or {})
        count = headers.get("x-delivery-count")
        return cls(message.body, headers, message.message_id, (count if isinstance(count, int) else 0) + 1)


Handler = Callable[[Delivery], Awaitable[None]]


class EventPublisher(Protocol):
    """What the receiver and the poller need from the broker; tests substitute an in-memory one."""

    @property
    def ready(self) -> bool: ...
    async def start(self) -> None: ...
    async def publish(self, envelopes: Sequence[ChangeEnvelope], lane: Lane = Lane.LIVE) -> None: ...
    async def close(self) -> None: ...


class Broker:
    """The process's one connection to RabbitMQ.

    `start()` connects in the background and keeps trying with backoff (one `broker_unreachable` line per attempt),
    so a process started while the broker is down comes up unready and recovers without a restart; `connect()`
    is the one-shot form for commands (raises BrokerUnavailable). Every publish waits for the broker's confirm.
    `delays` and `connections` declare the worker's delay and bulk apply queues (see the module docstring).
    """

    def __init__(
        self, url: str, *, confirm_timeout: float = 5.0, delays: Sequence[float] = (), connections: Sequence[str] = ()
    ) -> None:
        self._url = url
        self._confirm_timeout = confirm_timeout
        self._delays = tuple(delays)
        self._connections = tuple(connections)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._connect_task: asyncio.Task[None] | None = None
        self._consumers: dict[str, tuple[AbstractQueue, str]] = {}
        self._connected = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, connections: Sequence[str] = ()) -> Broker:
        """The process's broker on HSQBO_RABBITMQ_URL; `connections` declares their bulk lanes (the worker's)."""
        delays = sorted({*settings.retry_delays, settings.unlinked_settle_seconds})
        return cls(settings.rabbitmq_url, confirm_timeout=settings.publish_timeout_seconds,
                   delays=delays, connections=connections)  # fmt: skip

    # --- connection --------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background (see the class docstring); returns at once."""
        if self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect_with_backoff())

    async def _connect_with_backoff(self) -> None:
        for attempt in range(1_000_000_000):
            try:
                with _libraries_quiet():  # their lines say what `broker_unreachable` says, two more times
                    await self._open()
                log.info("broker_connected")
                return
            except (*CONNECTION_EXCEPTIONS, OSError, TimeoutError) as exc:
                wait = CONNECT_BACKOFF[min(attempt, len(CONNECT_BACKOFF) - 1)]
                log.warning("broker_unreachable", reason=_reason(exc), retry_in=wait)
                await asyncio.sleep(wait * random.uniform(0.8, 1.0))

    async def connect(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109  # a bounded wait is the point
        """Connect now, once: BrokerUnavailable (one line's worth of reason) when the broker does not answer."""
        try:
            with _libraries_quiet():
                async with asyncio.timeout(timeout):
                    await self._open()
        except (*CONNECTION_EXCEPTIONS, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"RabbitMQ unreachable: {_reason(exc)}") from None

    async def _open(self) -> None:
        connection = await aio_pika.connect_robust(self._url, reconnect_interval=1, timeout=10)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            declared = self._connections
            await declare_topology(channel, delays=self._delays, connections=declared)
            # Connections added while that ran (not ready yet, so add_connections left them to this).
            while late := [name for name in self._connections if name not in declared]:
                await declare_topology(channel, connections=late)
                declared += tuple(late)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel = connection, channel
        self._exchanges = {}
        self._connected.set()

    @property
    def ready(self) -> bool:
        """Whether the connection is up (read by /readyz, from the metrics server's thread)."""
        connection = self._connection
        return connection is not None and connection.connected.is_set() and not connection.is_closed

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109  # a bounded wait is the point
        """Wait up to `timeout` seconds for the first connection; False if it is still not ready."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        return self.ready

    async def close(self) -> None:
        """Stop connecting, cancel the consumers and close; never waits on a broker that is down."""
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connect_task
        connection, self._connection, self._channel = self._connection, None, None
        self._consumers.clear()
        self._connected.clear()
        if connection is not None:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS, OSError, TimeoutError):
                async with asyncio.timeout(2.0):  # a broker that is down gets no polite goodbye
                    await connection.close()

    async def add_connections(self, connections: Sequence[str]) -> None:
        """Declare the bulk lanes of more connections (now if connected, and at every connection from now on)."""
        new = [name for name in connections if name not in self._connections]
        self._connections += tuple(new)
        if new and self.ready and self._channel is not None:
            await declare_topology(self._channel, connections=new)

    def _ready_channel(self) -> AbstractChannel:
        if not self.ready or self._channel is None:
            raise BrokerUnavailable("not connected to RabbitMQ")
        return self._channel

    # --- publishing --------------------------------------------------------------------------------------------------

    async def publish(self, envelopes: Sequence[ChangeEnvelope], lane: Lane = Lane.LIVE) -> None:
        """Return once every envelope is confirmed by the broker; raise BusError otherwise (nothing is assumed
        queued then: the caller answers non-2xx so the sender retries; a partial success only risks duplicates,
        which the worker tolerates). The poller publishes in the bulk lane. A delivery's events travel as one message
        (`MAX_EVENTS_PER_MESSAGE` at most): one confirm for them all; the worker splits them per record."""
        if not envelopes:
            return
        exchange_name = CHANGES_EXCHANGE if lane is Lane.LIVE else BULK_CHANGES_EXCHANGE
        size = MAX_EVENTS_PER_MESSAGE
        chunks = [envelopes[at : at + size] for at in range(0, len(envelopes), size)]
        started = time.perf_counter()
        await self._confirm([(changes_message(chunk), exchange_name, changes_routing_key(chunk)) for chunk in chunks])
        PUBLISH_CONFIRM_LATENCY.observe(time.perf_counter() - started)

    async def publish_apply(
        self, command: ApplyCommand, *, delay: float = 0.0, expires_in: float | None = None
    ) -> None:
        """An apply command into its lane, at once or through the delay queue of `delay` seconds (one of the
        declared delays; `expires_in` shortens it for this message)."""
        key = lane_key(Lane(command.lane), command.connection)
        message = command.message(expires_in=expires_in if delay else None)
        if delay:
            await self._confirm([(message, DELAY_EXCHANGE, f"{round(delay * 1000)}ms.{key}")])
        else:
            await self._confirm([(message, APPLY_EXCHANGE, key)])

    async def publish_message(self, message: aio_pika.Message, *, exchange: str = "", routing_key: str) -> None:
        """Any message (a dead letter, a letter kept at the queue's tail), confirmed."""
        await self._confirm([(message, exchange, routing_key)])

    async def _exchange(self, name: str) -> AbstractExchange:
        channel = self._ready_channel()
        if name == "":
            return channel.default_exchange
        if name not in self._exchanges:
            self._exchanges[name] = await channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def _confirm(self, messages: Sequence[tuple[aio_pika.Message, str, str]]) -> None:
        async def one(message: aio_pika.Message, exchange_name: str, routing_key: str) -> None:
            exchange = await self._exchange(exchange_name)
            try:
                await exchange.publish(message, routing_key, mandatory=True)
            except CONNECTION_EXCEPTIONS as exc:  # nack, return, channel or connection loss
                raise PublishNotConfirmed(f"publish failed: {type(exc).__name__}") from None

        try:
            async with asyncio.timeout(self._confirm_timeout):
                if len(messages) == 1:  # the usual case: no task group to set up
                    await one(*messages[0])
                else:
                    async with asyncio.TaskGroup() as group:
                        for message, exchange_name, routing_key in messages:
                            group.create_task(one(message, exchange_name, routing_key))
        except TimeoutError:
            raise PublishNotConfirmed(f"no confirm within {self._confirm_timeout}s") from None
        except ExceptionGroup as failures:
            first = failures.exceptions[0]
            if isinstance(first, (PublishNotConfirmed, BrokerUnavailable)):
                raise first from None
            raise

    # --- consuming ---------------------------------------------------------------------------------------------------

    async def consume(self, queue_name: str, handler: Handler, *, prefetch: int) -> None:
        """Deliver `queue_name`'s messages to `handler`, at most `prefetch` at once, on a channel of its own (so
        one queue's backlog never takes another's turns). A handler that returns acknowledges the delivery; one that
        is cancelled leaves it unacknowledged, for the broker to redeliver. A handler must not raise: if it does
        (a bug), the delivery is dead-lettered by the broker rather than retried in a loop."""
        connection = self._connection
        if connection is None or not self.ready:
            raise BrokerUnavailable("not connected to RabbitMQ")
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                await handler(Delivery.of(message))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler_failed", queue=queue_name)
                await message.reject(requeue=False)
                return
            await message.ack()

        self._consumers[queue_name] = (queue, await queue.consume(on_message))

    async def cancel_consumers(self) -> None:
        """Stop every consumer; what they have not taken stays queued. Quick when the broker is down."""
        consumers, self._consumers = self._consumers, {}
        with contextlib.suppress(*CONNECTION_EXCEPTIONS, OSError, TimeoutError, RuntimeError):
            async with asyncio.timeout(2.0):  # all of them: a broker that is down answers none
                for queue, tag in consumers.values():
                    await queue.cancel(tag)

    # --- reading queues (the dead letters, counts) ---------------------------------------------------------------

    async def message_count(self, queue_name: str) -> int:
        """How many messages `queue_name` holds (ready ones: not those a consumer has taken)."""
        return await message_count(self._ready_channel(), queue_name)

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[AbstractChannel]:
        """A confirmed channel of its own for one action (a scan of the dead letters): what it took unacknowledged
        goes back to its queue when the channel closes, whatever happened meanwhile."""
        connection = self._connection
        if connection is None or not self.ready:
            raise BrokerUnavailable("not connected to RabbitMQ")
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            yield channel
        finally:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS, OSError, TimeoutError, RuntimeError):
                await channel.close()


async def message_count(channel: AbstractChannel, queue_name: str) -> int:
    """The queue's ready messages now (a robust channel answers a passive declare from its cache, so ask AMQP)."""
    declared = await (await channel.get_underlay_channel()).queue_declare(queue_name, passive=True)
    return declared.message_count or 0


@contextlib.asynccontextmanager
async def connected_broker(settings: Settings) -> AsyncIterator[Broker]:
    """The broker for a one-off command (`hsqbo dlq`, `hsqbo review resolve`): connected now or BrokerUnavailable,
    which the command line prints as one line."""
    broker = Broker.from_settings(settings)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.close()


class _Connecting(logging.Filter):
    """Drops the connection loggers' lines while any first connection is being attempted. A count, not the loggers'
    levels: two brokers connecting at once (saving and restoring levels in turn) once left them silenced for good."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return self.attempts == 0


_CONNECTING = _Connecting()


@contextlib.contextmanager
def _libraries_quiet() -> Iterator[None]:
    """While a first connection is attempted: aiormq and aio-pika log each failed attempt themselves."""
    for name in ("aiormq.connection", "aio_pika.robust_connection"):
        logging.getLogger(name).addFilter(_CONNECTING)  # once: a filter already there is not added again
    _CONNECTING.attempts += 1
    try:
        yield
    finally:
        _CONNECTING.attempts -= 1


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__

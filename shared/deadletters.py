"""Dead letters: the work hsqbo gave up on, kept in the `hsqbo.dead` queue until an operator replays or purges it.
The one implementation of list / show / replay / purge, for `hsqbo dlq` and the status page.

A letter reaches the queue two ways, and `DeadLetter.from_message` reads both into one shape:
- the worker publishes an apply that exhausted its attempts (`dead_letter_message`), its history in `x-hsqbo-*`
  headers (attempts, error category and message, first/last failure, source queue, the record's hints);
- the broker dead-letters a message a consumer rejected (unparseable) or that hit a queue's delivery limit, with
  only its own `x-death` headers. The first scan that keeps such a letter rewrites it with `x-hsqbo-*` headers.

A scan never loses a letter. It takes each message unacknowledged, then either keeps it — publishes a copy to the
queue's tail, confirmed, then acknowledges the original — or removes it once its replay is confirmed. It never
requeues: a quorum queue counts a requeue as a delivery, and RabbitMQ 4 gives quorum queues a default delivery limit
(20) past which a queue without a dead-letter exchange drops the message. A crash between the copy and the ack
leaves a duplicate with the same id, never a gap; replaying a letter twice changes nothing more. Two scans at once
may each miss letters the other holds at that moment; neither loses one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.bus import (
    CHANGES_EXCHANGE,
    DEAD_QUEUE,
    ApplyCommand,
    changes_message,
    changes_routing_key,
    declare_worker_topology,
)
from shared.config import Settings
from shared.envelope import decode_changes
from shared.metrics import DEAD_LETTERS_PURGED, DEAD_LETTERS_REPLAYED
from shared.resync import resync
from shared.store import PendingWork

_HEADER = "x-hsqbo-"
_ERROR_MESSAGE_CHARS = 300

Progress = Callable[[int, int], None]  # (letters scanned, letters in the queue when the scan began)


class Payload(enum.StrEnum):
    """What a letter carries, which decides how it is replayed."""

    APPLY = "apply"  # an ApplyCommand: replay re-creates the record's pending work
    CHANGE = "change"  # a change envelope: replay publishes it to the changes exchange again
    UNPARSEABLE = "unparseable"  # neither: nothing to replay, only to read and purge


def error_category(error: BaseException) -> str:
    """`ServerError` → `server_error`: a stable, low-cardinality name for what went wrong."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    id: str
    payload: Payload
    connection: str | None  # None for a change envelope: the connection is resolved only when it is routed
    kind: str | None  # the store's Kind for applies, the provider's object type for change envelopes
    side: str | None  # the system the change happened in
    object_id: str | None
    attempts: int
    error_category: str
    error_message: str  # never a payload or a token: the error's own summary, truncated
    first_failed_at: float | None
    last_failed_at: float | None
    source_queue: str
    hints: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def headers(self) -> dict[str, Any]:
        """The history as `x-hsqbo-*` headers (what `from_message` reads back)."""
        history: dict[str, Any] = {
            "attempts": self.attempts,
            "error-category": self.error_category,
            "error-message": self.error_message,
            "source-queue": self.source_queue,
            "hints": orjson.dumps(self.hints).decode(),
        }
        # Whole milliseconds: AMQP carries a Python float header as a 32-bit float, which rounds an epoch to 128 s.
        if self.first_failed_at is not None:
            history["first-failed-at-ms"] = round(self.first_failed_at * 1000)
        if self.last_failed_at is not None:
            history["last-failed-at-ms"] = round(self.last_failed_at * 1000)
        return {_HEADER + name: value for name, value in history.items()}

    @classmethod
    def from_message(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = dict(message.headers or {})
        payload, fields = _read_body(message.body)
        ours = _HEADER + "error-category" in headers
        history = _our_history(headers) if ours else _broker_history(headers, payload)
        return cls(id=message.message_id or _digest(message), payload=payload, **fields, **history)


def _read_body(body: bytes) -> tuple[Payload, dict[str, Any]]:
    with contextlib.suppress(ValueError, TypeError, KeyError):
        command = ApplyCommand.from_json(body)
        return Payload.APPLY, {
            "connection": command.connection, "kind": command.kind, "side": command.side,
            "object_id": command.object_id,
        }  # fmt: skip
    with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
        envelope = decode_changes(body)[0]  # a delivery is listed under its first event (its id says how many)
        return Payload.CHANGE, {
            "connection": None, "kind": envelope.object_type, "side": str(envelope.provider),
            "object_id": envelope.object_id,
        }  # fmt: skip
    return Payload.UNPARSEABLE, {"connection": None, "kind": None, "side": None, "object_id": None}


def _our_history(headers: dict[str, Any]) -> dict[str, Any]:
    def number(name: str) -> float | None:
        """An instant: whole milliseconds, or (letters kept before those) float seconds, 128 s coarse."""
        milliseconds = headers.get(_HEADER + name + "-ms")
        if milliseconds is not None:
            return int(milliseconds) / 1000
        value = headers.get(_HEADER + name)
        return None if value is None else float(value)

    return {
        "attempts": int(headers.get(_HEADER + "attempts", 0)),
        "error_category": str(headers[_HEADER + "error-category"]),
        "error_message": str(headers.get(_HEADER + "error-message", "")),
        "first_failed_at": number("first-failed-at"),
        "last_failed_at": number("last-failed-at"),
        "source_queue": str(headers.get(_HEADER + "source-queue", "")),
        "hints": orjson.loads(headers.get(_HEADER + "hints") or "{}"),
    }


def _broker_history(headers: dict[str, Any], payload: Payload) -> dict[str, Any]:
    """From RabbitMQ's `x-death` (newest first): the queue, the reason (rejected, delivery_limit, expired...)."""
    deaths = headers.get("x-death") or [{}]
    last, first = deaths[0], deaths[-1]
    reason = str(last.get("reason", "unknown"))
    queue = str(last.get("queue", ""))
    category = "unparseable" if payload is Payload.UNPARSEABLE else reason
    return {
        "attempts": int(headers.get("x-delivery-count") or sum(int(d.get("count", 1)) for d in deaths)),
        "error_category": category,
        "error_message": f"{reason} by the broker in queue {queue}",
        "first_failed_at": _epoch(first.get("time")),
        "last_failed_at": _epoch(last.get("time")),
        "source_queue": queue,
        "hints": {},
    }


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    return None


def _digest(message: AbstractIncomingMessage) -> str:
    """A stable id for a letter published without one: its body and where it first died."""
    headers = message.headers or {}
    origin = f"{headers.get('x-first-death-queue')!r}:{headers.get('x-first-death-reason')!r}".encode()
    return hashlib.sha256(message.body + b"\0" + origin).hexdigest()[:32]


def dead_letter_message(
    command: ApplyCommand, error: BaseException, *, hints: dict[str, Any], source_queue: str, now: float
) -> aio_pika.Message:
    """The message the worker dead-letters an apply with: the command, its history in headers."""
    message = command.message()
    message.message_id = uuid.uuid4().hex
    message.timestamp = dt.datetime.fromtimestamp(now, dt.UTC)
    letter = DeadLetter(
        id=message.message_id,
        payload=Payload.APPLY,
        connection=command.connection,
        kind=command.kind,
        side=command.side,
        object_id=command.object_id,
        attempts=command.attempt,
        error_category=error_category(error),
        error_message=str(error)[:_ERROR_MESSAGE_CHARS],
        first_failed_at=command.first_failed_at or now,
        last_failed_at=now,
        source_queue=source_queue,
        hints=hints,
    )
    message.headers = letter.headers()
    return message


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LetterFilter:
    """Which letters an action applies to; an empty filter matches every letter."""

    ids: frozenset[str] = frozenset()
    connection: str | None = None
    kind: str | None = None  # the store's Kind ("contact") or a provider object type ("customer")
    category: str | None = None
    since: float | None = None  # last failure at or after (epoch seconds)
    until: float | None = None  # last failure before

    @property
    def everything(self) -> bool:
        return self == LetterFilter()

    def matches(self, letter: DeadLetter) -> bool:
        at = letter.last_failed_at
        return (
            (not self.ids or letter.id in self.ids)
            and (self.connection is None or letter.connection == self.connection)
            and (self.kind is None or letter.kind == self.kind)
            and (self.category is None or letter.error_category == self.category)
            and (self.since is None or (at is not None and at >= self.since))
            and (self.until is None or (at is not None and at < self.until))
        )


@dataclasses.dataclass(slots=True)
class ReplayReport:
    replayed: list[DeadLetter] = dataclasses.field(default_factory=list)  # or, with dry_run, would be
    skipped: list[DeadLetter] = dataclasses.field(default_factory=list)  # unparseable: nothing to replay


class DeadLetters:
    """Actions over the dead-letter queue. `channel` must have publisher confirms on; `store` is needed to replay
    apply letters."""

    def __init__(
        self, channel: AbstractChannel, store: PendingWork | None = None, *, clock: Callable[[], float] = time.time
    ):
        self._channel = channel
        self._store = store
        self._clock = clock

    @property
    def channel(self) -> AbstractChannel:
        """The confirmed channel its actions publish on (the status page's "Sync now" publishes there too)."""
        return self._channel

    async def count(self) -> int:
        """How many letters the queue holds: its message count, read without taking any (a passive declare)."""
        queue = await self._channel.declare_queue(DEAD_QUEUE, passive=True)
        return queue.declaration_result.message_count or 0

    async def list_letters(
        self, where: LetterFilter = LetterFilter(), progress: Progress | None = None
    ) -> list[DeadLetter]:
        found: list[DeadLetter] = []

        async def keep(letter: DeadLetter, _message: AbstractIncomingMessage) -> bool:
            if where.matches(letter):
                found.append(letter)
            return False

        await self._scan(keep, progress)
        return found

    async def show(self, letter_id: str) -> DeadLetter | None:
        letters = await self.list_letters(LetterFilter(ids=frozenset({letter_id})))
        return letters[0] if letters else None

    async def replay(
        self, where: LetterFilter, *, dry_run: bool = False, progress: Progress | None = None
    ) -> ReplayReport:
        """Re-create the work of each matching letter, then remove it (only once the new work is confirmed)."""
        report = ReplayReport()

        async def replay_one(letter: DeadLetter, message: AbstractIncomingMessage) -> bool:
            if not where.matches(letter):
                return False
            if letter.payload is Payload.UNPARSEABLE:
                report.skipped.append(letter)
                return False
            report.replayed.append(letter)
            if dry_run:
                return False
            await self._resubmit(letter, message.body)
            DEAD_LETTERS_REPLAYED.labels(letter.payload).inc()
            return True

        await self._scan(replay_one, progress)
        return report

    async def purge(
        self, where: LetterFilter, *, dry_run: bool = False, progress: Progress | None = None
    ) -> list[DeadLetter]:
        purged: list[DeadLetter] = []

        async def purge_one(letter: DeadLetter, _message: AbstractIncomingMessage) -> bool:
            if not where.matches(letter):
                return False
            purged.append(letter)
            if not dry_run:
                DEAD_LETTERS_PURGED.inc()
            return not dry_run

        await self._scan(purge_one, progress)
        return purged

    async def _resubmit(self, letter: DeadLetter, body: bytes) -> None:
        if letter.payload is Payload.APPLY:
            if self._store is None:
                raise RuntimeError("replaying an apply needs the store")
            key = ApplyCommand.from_json(body).key
            await resync(self._store, self._channel, key, now=self._clock(), hints=letter.hints)
        else:
            envelopes = decode_changes(body)
            await self._publish(changes_message(envelopes), CHANGES_EXCHANGE, changes_routing_key(envelopes))

    async def _publish(self, message: aio_pika.Message, exchange_name: str, routing_key: str) -> None:
        exchange = (
            self._channel.default_exchange
            if exchange_name == ""
            else await self._channel.get_exchange(exchange_name, ensure=False)
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True)

    async def _keep(self, letter: DeadLetter, message: AbstractIncomingMessage) -> None:
        """Move the letter to the queue's tail, its history in our headers: the copy first, then the ack."""
        headers = {name: value for name, value in (message.headers or {}).items() if name != "x-delivery-count"}
        copy = aio_pika.Message(
            message.body,
            headers={**headers, **letter.headers()},
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=letter.id,
            timestamp=message.timestamp,
            type=message.type,
        )
        await self._publish(copy, "", DEAD_QUEUE)
        await message.ack()

    async def _scan(
        self, visit: Callable[[DeadLetter, AbstractIncomingMessage], Awaitable[bool]], progress: Progress | None
    ) -> None:
        """One pass over the letters queued when it began; `visit` returns True to remove the letter.

        If anything fails midway the letter in hand is still unacknowledged: the broker requeues it when the
        channel closes."""
        queue = await self._channel.declare_queue(DEAD_QUEUE, passive=True)
        total = queue.declaration_result.message_count or 0
        for scanned in range(1, total + 1):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            letter = DeadLetter.from_message(message)
            if await visit(letter, message):
                await message.ack()
            else:
                await self._keep(letter, message)
            if progress is not None:
                progress(scanned, total)


@contextlib.asynccontextmanager
async def open_dead_letters(settings: Settings, store: PendingWork | None = None) -> AsyncIterator[DeadLetters]:
    """A connection to the broker for one operator action, with the topology replay publishes into declared."""
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_worker_topology(
            channel, quiet_seconds=settings.debounce_quiet_seconds, retry_delays=settings.retry_delays
        )
        yield DeadLetters(channel, store)

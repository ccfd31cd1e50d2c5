"""Fault injection: make the emulated APIs and their webhooks misbehave on demand, all off by default.

`Faults` holds a `FaultConfig` that the control surface changes at run time (`update(**fields)`). The API side
is an ASGI middleware (`FaultMiddleware`, built with `Faults.middleware(...)`) that adds latency, answers a
fraction of requests with a 5xx, loses the answers of chosen writes (carried out, answered with a 5xx), answers
every request for a broken record (its path ends with one of `broken_paths`, e.g. `/customer/42`, or a QBO query
by ids names it) with a 5xx for as long as it is listed, and answers everything with a 429 until `throttle_until`;
it never touches `/_sandbox/*`. The error bodies are provider-specific, so each emulator passes the callables that
build them. The webhook side (drop / duplicate /
reorder / slow-ack timeout) is read by `WebhookDispatcher`; a refused batch item (`batch_item_fault`) by the emulator
that answers batches (QBO's `/batch`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hsqbo_sandbox._clock import SandboxClock

CONTROL_PREFIX = "/_sandbox"


@dataclasses.dataclass(frozen=True, slots=True)
class FaultConfig:
    latency_ms: tuple[float, float] = (0.0, 0.0)  # each API request waits uniform(min, max) milliseconds
    error_rate: float = 0.0  # fraction of API requests answered with a 5xx
    # Records the provider fails on for good: a request whose path ends with one of these is answered with a 5xx,
    # every time (a caller's retries cannot cure it; it is dead-lettered with its history).
    broken_paths: tuple[str, ...] = ()
    throttle_until: float = 0.0  # epoch seconds (sandbox clock): every API request gets a 429 until then
    webhook_drop_rate: float = 0.0  # fraction of webhook batches silently lost
    webhook_duplicate_rate: float = 0.0  # fraction of acknowledged batches sent a second time
    webhook_reorder: bool = False  # shuffle pending events before they are batched
    webhook_timeout_seconds: float | None = None  # how long the sender waits for an ack; None = provider's deadline
    # An ambiguous write: requests whose path contains `held_answer_path` are carried out at once, but their answer
    # is held back this long — a caller that times out or dies meanwhile does not know the write happened.
    held_answer_ms: float = 0.0
    held_answer_path: str = ""
    # A lost answer: the next `lost_answers` requests whose path contains `lost_answer_path` are carried out, and
    # their answer is replaced by a 5xx (as a gateway that lost the provider's answer): the write happened, its
    # caller cannot know.
    lost_answers: int = 0
    lost_answer_path: str = ""
    # A batch item whose JSON text (`json.dumps` of the item) contains this is refused alone, inside the batch's 200
    # (QBO: a Fault on the item, code 6000), its neighbours carried out: one item's fault, as the provider answers it.
    batch_item_fault: str = ""

    def __post_init__(self) -> None:
        low, high = self.latency_ms
        if not 0 <= low <= high:
            raise ValueError("latency_ms must be (min, max) with 0 <= min <= max")
        for name in ("error_rate", "webhook_drop_rate", "webhook_duplicate_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.webhook_timeout_seconds is not None and self.webhook_timeout_seconds <= 0:
            raise ValueError("webhook_timeout_seconds must be positive")

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["latency_ms"] = list(self.latency_ms)
        fields["broken_paths"] = list(self.broken_paths)
        return fields


class Faults:
    def __init__(self, clock: SandboxClock, config: FaultConfig | None = None, *, seed: int | None = None) -> None:
        self.clock = clock
        self.config = config or FaultConfig()
        self._random = random.Random(seed)

    def update(self, **fields: Any) -> FaultConfig:
        """Change some fields. Unknown names raise TypeError, invalid values ValueError (nothing changes)."""
        if "latency_ms" in fields:
            low, high = fields["latency_ms"]
            fields["latency_ms"] = (float(low), float(high))
        if "broken_paths" in fields:
            fields["broken_paths"] = tuple(str(path) for path in fields["broken_paths"])
        self.config = dataclasses.replace(self.config, **fields)
        return self.config

    def reset(self) -> FaultConfig:
        self.config = FaultConfig()
        return self.config

    def chance(self, rate: float) -> bool:
        """True with probability `rate` (0 never draws, so an unconfigured fault costs nothing)."""
        return rate > 0 and self._random.random() < rate

    def latency_seconds(self) -> float:
        low, high = self.config.latency_ms
        return self._random.uniform(low, high) / 1000 if high > 0 else 0.0

    def shuffle(self, items: list[Any]) -> None:
        self._random.shuffle(items)

    def throttled(self) -> bool:
        return self.clock.now() < self.config.throttle_until

    def refuses_batch_item(self, item_json: str) -> bool:
        return bool(self.config.batch_item_fault) and self.config.batch_item_fault in item_json

    def broken(self, path: str, query_string: bytes = b"") -> bool:
        """Whether the request is for a broken record: its path ends with a broken path, or it is a QBO query by ids
        (`select * from Customer where Id in ('42', ...)`, how a client reads several records at once) naming one."""
        if any(path.endswith(broken) for broken in self.config.broken_paths):
            return True
        if not path.endswith("/query") or not self.config.broken_paths:
            return False
        statement = " ".join(urllib.parse.parse_qs(query_string.decode("latin-1")).get("query", ())).lower()
        return any(
            re.search(rf"\bfrom\s+{re.escape(entity)}\b", statement) and f"'{record_id}'" in statement
            for entity, record_id in (broken.lower().rsplit("/", 2)[-2:] for broken in self.config.broken_paths)
        )

    def loses_answer(self, path: str) -> bool:
        """Whether this request's answer is lost (counting it against `lost_answers`)."""
        lost = self.config
        if lost.lost_answers <= 0 or not lost.lost_answer_path or lost.lost_answer_path not in path:
            return False
        self.config = dataclasses.replace(lost, lost_answers=lost.lost_answers - 1)
        return True

    def holds_answer(self, path: str) -> bool:
        held = self.config
        return held.held_answer_ms > 0 and bool(held.held_answer_path) and held.held_answer_path in path

    def middleware(
        self, *, throttled_response: Callable[[], Response], error_response: Callable[[], Response]
    ) -> Middleware:
        """The Starlette `Middleware` entry that applies these faults to an emulator's API routes."""
        return Middleware(
            FaultMiddleware, faults=self, throttled_response=throttled_response, error_response=error_response
        )


class FaultMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: Faults,
        throttled_response: Callable[[], Response],
        error_response: Callable[[], Response],
    ) -> None:
        self.app = app
        self.faults = faults
        self.throttled_response = throttled_response
        self.error_response = error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        faults = self.faults.config
        delay = self.faults.latency_seconds()
        if delay:
            await asyncio.sleep(delay)
        if self.faults.throttled():
            await self.throttled_response()(scope, receive, send)
        elif self.faults.broken(scope["path"], scope["query_string"]) or self.faults.chance(faults.error_rate):
            await self.error_response()(scope, receive, send)
        elif self.faults.loses_answer(scope["path"]):

            async def lose(message: Message) -> None:
                pass

            await self.app(scope, receive, lose)
            await self.error_response()(scope, receive, send)
        elif self.faults.holds_answer(scope["path"]):
            hold = self.faults.config.held_answer_ms / 1000

            async def send_late(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await asyncio.sleep(hold)
                await send(message)

            await self.app(scope, receive, send_late)
        else:
            await self.app(scope, receive, send)

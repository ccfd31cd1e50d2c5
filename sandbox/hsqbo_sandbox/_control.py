"""The control surface under `/_sandbox/` that both emulators share: one set of paths, one JSON convention
(snake_case; the emulated APIs keep their providers' own), one error shape. It is never faulted, throttled or
recorded in the request log.

GET    requests         the API request log, oldest first: {"count", "requests": [{"time", "method", "path",
                        "query", "status", "account", "client"}]}; filters ?account= (a portal or realm id)
                        &since= (epoch seconds) &method= &path_contains= &status=; ?bodies=true adds each
                        request's JSON "body" (text; null when not JSON, too big, or no longer kept)
DELETE requests         clears it -> {"cleared": n}
GET    faults           the FaultConfig
PUT    faults           {field: value, ...} changes those fields -> the FaultConfig
GET    clock            {"now": epoch seconds, "offset": seconds the clock was advanced}
POST   clock/advance    {"seconds"} -> {"now", "offset"}
GET    webhooks         the dispatcher's stats (counters, "pending", "retrying_batches", "url")
PUT    webhooks         {"url": ... | null} changes the target -> the stats
POST   webhooks/drain   {"timeout"?: seconds, default 10} waits until nothing is pending -> {"drained", "stats"}
GET    state            everything the emulator holds (accounts, tokens, "clock_offset"), as --state-file keeps it
PUT    state            replaces everything with such a dump -> the state

Each emulator adds its own routes (accounts, user-edit, seed, tokens, limits), documented in its `_control.py`,
and serves all of them with `control_routes`. Accounts are named by the provider's id: `portal_id` (HubSpot, an
integer) and `realm_id` (QBO, a string) — the ids hsqbo's connection settings use. Bodies are JSON objects (an
empty body is {}). Errors are {"error": message} with 400 (bad input: a missing or unknown field, a wrong value)
or 404 (an unknown account); when the emulator refuses an action by one of its provider's rules, the answer has
that rule's status and the provider's own error body in "provider_error".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox._faults import CONTROL_PREFIX, Faults
from hsqbo_sandbox._recorder import RequestLog
from hsqbo_sandbox._webhooks import WebhookDispatcher
from shared import money

Json = dict[str, Any]
ControlHandler = Callable[[Request], Awaitable[Response]]
# (HTTP status, the provider's error body) for an exception raised by one of the provider's rules, else None.
ProviderError = Callable[[Exception], tuple[int, Json] | None]

DEFAULT_DRAIN_TIMEOUT = 10.0


class Controlled(Protocol):
    """What the shared routes need from an emulator."""

    clock: SandboxClock
    faults: Faults
    requests: RequestLog
    webhooks: WebhookDispatcher

    def dump(self) -> Json: ...

    def load(self, state: Json) -> None: ...


def answer(body: Any, status: int = 200) -> Response:
    return Response(money.dumps(body), status_code=status, media_type="application/json")


async def read_object(request: Request, *, exact: bool = False) -> Json:
    """The request's JSON object; {} for an empty body. `exact`: numbers with a fraction as Decimals, for bodies that
    carry amounts (a user's edit); control settings (seconds, rates, a state dump's timestamps) stay floats."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = money.loads(raw) if exact else orjson.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        raise ValueError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def required(body: Json, name: str) -> Any:
    if body.get(name) is None:
        raise ValueError(f"{name} is required")
    return body[name]


def control_routes(
    sandbox: Controlled, own: Mapping[tuple[str, str], ControlHandler], *, provider_error: ProviderError
) -> list[Route]:
    """The shared routes plus the emulator's `own` ((method, path under /_sandbox/) -> handler), all answering
    errors the same way."""
    shared = _SharedRoutes(sandbox).handlers()
    clash = shared.keys() & own.keys()
    if clash:
        raise ValueError(f"routes defined twice: {sorted(clash)}")
    return [
        Route(f"{CONTROL_PREFIX}/{path}", _guarded(handler, provider_error), methods=[method])
        for (method, path), handler in {**shared, **own}.items()
    ]


def _guarded(handler: ControlHandler, provider_error: ProviderError) -> ControlHandler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            refused = provider_error(exc)
            if refused is not None:
                return answer({"error": str(exc), "provider_error": refused[1]}, refused[0])
            if isinstance(exc, KeyError):
                return answer({"error": f"unknown {exc.args[0]!r}"}, 404)
            if isinstance(exc, (TypeError, ValueError)):
                return answer({"error": str(exc)}, 400)
            raise

    return endpoint


class _SharedRoutes:
    def __init__(self, sandbox: Controlled) -> None:
        self.sandbox = sandbox

    def handlers(self) -> dict[tuple[str, str], ControlHandler]:
        return {
            ("GET", "requests"): self.list_requests,
            ("DELETE", "requests"): self.clear_requests,
            ("GET", "faults"): self.get_faults,
            ("PUT", "faults"): self.put_faults,
            ("GET", "clock"): self.get_clock,
            ("POST", "clock/advance"): self.advance_clock,
            ("GET", "webhooks"): self.webhook_stats,
            ("PUT", "webhooks"): self.set_webhook_url,
            ("POST", "webhooks/drain"): self.drain,
            ("GET", "state"): self.get_state,
            ("PUT", "state"): self.put_state,
        }

    async def list_requests(self, request: Request) -> Response:
        params = request.query_params
        entries = self.sandbox.requests.list(
            account=params.get("account"),
            since=float(params["since"]) if "since" in params else None,
            method=params.get("method"),
            path_contains=params.get("path_contains"),
            status=int(params["status"]) if "status" in params else None,
        )
        with_body = params.get("bodies", "").lower() in ("1", "true")
        return answer({"count": len(entries), "requests": [entry.to_dict(with_body=with_body) for entry in entries]})

    async def clear_requests(self, request: Request) -> Response:
        cleared = self.sandbox.requests.count()
        self.sandbox.requests.clear()
        return answer({"cleared": cleared})

    async def get_faults(self, request: Request) -> Response:
        return answer(self.sandbox.faults.config.to_dict())

    async def put_faults(self, request: Request) -> Response:
        return answer(self.sandbox.faults.update(**await read_object(request)).to_dict())

    async def get_clock(self, request: Request) -> Response:
        clock = self.sandbox.clock
        return answer({"now": clock.now(), "offset": clock.offset})

    async def advance_clock(self, request: Request) -> Response:
        self.sandbox.clock.advance(float(required(await read_object(request), "seconds")))
        return await self.get_clock(request)

    async def webhook_stats(self, request: Request) -> Response:
        return answer(self.sandbox.webhooks.stats())

    async def set_webhook_url(self, request: Request) -> Response:
        self.sandbox.webhooks.set_url((await read_object(request)).get("url"))
        return answer(self.sandbox.webhooks.stats())

    async def drain(self, request: Request) -> Response:
        timeout = float((await read_object(request)).get("timeout", DEFAULT_DRAIN_TIMEOUT))
        drained = await self.sandbox.webhooks.drain(timeout)
        return answer({"drained": drained, "stats": self.sandbox.webhooks.stats()})

    async def get_state(self, request: Request) -> Response:
        return answer(self.sandbox.dump())

    async def put_state(self, request: Request) -> Response:
        self.sandbox.load(await read_object(request))
        return answer(self.sandbox.dump())

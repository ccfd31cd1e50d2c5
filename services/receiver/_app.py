"""The receiver's HTTP surface. A 2xx means every event of the request is durably in RabbitMQ; anything else means
the sender should retry.

    POST /webhooks/hubspot   signature v3 (v1 if enabled) → JSON array of events
    POST /webhooks/intuit    intuit-signature → classic eventNotifications or CloudEvents
    GET  /healthz            process up
    GET  /readyz             broker connected and topology declared

Its /metrics are on a port of their own (HSQBO_METRICS_PORT, `services.receiver.main`), not on this public one.
X-Forwarded-Proto and -For are believed from HSQBO_TRUSTED_PROXIES only.

Order of checks: content type (415) → size (413) → signature over the raw bytes (401) → JSON shape (400) → publish
(503 when the broker does not confirm in time). Requests arriving together publish their events as one message
(`_coalesce.py`): each still answers only once the message holding its events is confirmed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.receiver import _hubspot, _intuit
from services.receiver._coalesce import CoalescingPublisher
from services.receiver._dedupe import DedupeWindow
from shared import signatures, tracing
from shared.asgi import ValidTarget
from shared.broker import Broker, EventPublisher
from shared.config import Settings, secret
from shared.domain import Provider
from shared.envelope import ChangeEnvelope
from shared.errors import (
    BusError,
    PayloadTooLarge,
    SignatureError,
    UnsupportedMediaType,
    WebhookError,
)
from shared.logging import get_logger
from shared.metrics import (
    EVENTS_DEDUPLICATED,
    EVENTS_IGNORED,
    EVENTS_PUBLISHED,
    SIGNATURE_FAILURES,
    WEBHOOK_LATENCY,
    WEBHOOK_REQUESTS,
)

log = get_logger("hsqbo.receiver")

HUBSPOT_CONTENT_TYPES = frozenset({"application/json"})
INTUIT_CONTENT_TYPES = frozenset(
    {"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"}
)


# This request's id, for the changes it queues (structlog's copy is for the log lines).
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("hsqbo_request_id", default=None)
# New request ids: this process's random prefix and a counter. Unique without a system call per request (a uuid4 was
# one, and a profile's visible share); an id only finds log lines, it grants nothing.
_REQUEST_ID_PREFIX = secrets.token_hex(8)
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):08x}"


class RequestIdMiddleware:
    """Binds a request id (the caller's X-Request-Id, else a new one) to every log line and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        request_id = given.decode("latin-1")[:64] or new_request_id()
        token = _REQUEST_ID.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)  # type: ignore[arg-type]
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            _REQUEST_ID.reset(token)


class Receiver:
    def __init__(self, settings: Settings, publisher: EventPublisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.dedupe = DedupeWindow(seconds=settings.dedupe_window_seconds, max_entries=settings.dedupe_max_entries)

    async def read_body(self, request: Request, allowed_types: frozenset[str]) -> bytes:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in allowed_types:
            raise UnsupportedMediaType(f"content type '{content_type[:60]}' is not one of {sorted(allowed_types)}")
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        return bytes(chunks)

    def signed_uri(self, request: Request) -> str:
        """The URI HubSpot signed: the public base URL when behind a proxy, else what this server saw."""
        path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        target = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        if self.settings.public_url is not None:
            return str(self.settings.public_url).rstrip("/") + target
        return f"{request.url.scheme}://{request.url.netloc}{target}"

    async def hubspot(self, request: Request) -> Response:
        body = await self.read_body(request, HUBSPOT_CONTENT_TYPES)
        client_secret = secret(self.settings.hubspot_client_secret)
        headers = request.headers
        if "x-hubspot-signature-v3" in headers or not self.settings.hubspot_allow_v1_signatures:
            signatures.verify_hubspot_v3(
                client_secret,
                request.method,
                self.signed_uri(request),
                body,
                headers.get("x-hubspot-request-timestamp"),
                headers.get("x-hubspot-signature-v3"),
                max_age_seconds=self.settings.signature_max_age_seconds,
            )
        else:
            signatures.verify_hubspot_v1(client_secret, body, headers.get("x-hubspot-signature"))
        envelopes, ignored = _hubspot.parse(body, request_id=_request_id())
        return await self.enqueue(Provider.HUBSPOT, envelopes, ignored)

    async def intuit(self, request: Request) -> Response:
        body = await self.read_body(request, INTUIT_CONTENT_TYPES)
        signatures.verify_intuit(
            secret(self.settings.intuit_verifier_token), body, request.headers.get("intuit-signature")
        )
        envelopes, ignored = _intuit.parse(body, received_at_ms=int(time.time() * 1000), request_id=_request_id())
        return await self.enqueue(Provider.QUICKBOOKS, envelopes, ignored)

    async def enqueue(self, provider: Provider, envelopes: Sequence[ChangeEnvelope], ignored: list[str]) -> Response:
        for event_type in ignored:
            EVENTS_IGNORED.labels(provider, event_type).inc()
        fresh: dict[str, ChangeEnvelope] = {}
        waiting = []
        duplicates = 0
        for envelope in envelopes:
            key = envelope.event_id
            if key in fresh or self.dedupe.seen(key):
                duplicates += 1
            elif (pending := self.dedupe.in_flight(key)) is not None:
                waiting.append(pending)  # a concurrent request is queueing the same event: its outcome is ours
            else:
                fresh[key] = envelope
        self.dedupe.begin(fresh)
        queued = False
        try:
            await self.publisher.publish(list(fresh.values()))  # one message, one confirm
            queued = True
        finally:
            self.dedupe.end(fresh, queued=queued)
        for pending in waiting:
            if not await pending:
                raise BusError("a concurrent delivery of the same event was not queued")
            duplicates += 1
        published: dict[str, int] = {}  # one increment per object type, not per event
        for envelope in fresh.values():
            published[envelope.object_type] = published.get(envelope.object_type, 0) + 1
        for object_type, count in published.items():
            _labelled_counter(EVENTS_PUBLISHED, provider, object_type).inc(count)
        _labelled_counter(EVENTS_DEDUPLICATED, provider).inc(duplicates)
        outcome = "accepted" if fresh or not duplicates else "duplicate"
        _labelled_counter(WEBHOOK_REQUESTS, provider, outcome).inc()
        # No line per request (a profile's visible share): the coalescer's `changes_queued` line names the requests
        # whose events each message holds.
        answer = {"queued": len(fresh), "duplicates": duplicates, "ignored": len(ignored)}
        return Response(orjson.dumps(answer), media_type="application/json")


def _request_id() -> str | None:
    """RequestIdMiddleware's: it travels with each change to the worker's log lines."""
    return _REQUEST_ID.get()


_UNTRACED = contextlib.nullcontext()


@functools.cache
def _labelled_counter(metric: Counter, *values: str) -> Counter:
    """`metric.labels(*values)`, looked up once: prometheus_client checks and locks at each lookup, a profile's
    visible share per request. Only for labels from bounded sets (providers, object types synced, outcomes)."""
    return metric.labels(*values)


@functools.cache
def _labelled_histogram(metric: Histogram, *values: str) -> Histogram:
    """As `_labelled_counter`, for a histogram."""
    return metric.labels(*values)


def _guarded(
    provider: Provider, handler: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """Turns refusals into their HTTP answers and counts every request by outcome."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            # No span's generator to run when tracing is off: a profile's visible share per request.
            traced = tracing.span(f"webhook {provider}", provider=str(provider)) if tracing.enabled() else _UNTRACED
            with traced:
                return await handler(request)
        except WebhookError as exc:
            if isinstance(exc, SignatureError):
                SIGNATURE_FAILURES.labels(provider, exc.reason).inc()
            WEBHOOK_REQUESTS.labels(provider, exc.code).inc()
            log.warning("webhook_refused", provider=provider, status=exc.status, error=exc.code, detail=str(exc))
            return JSONResponse({"error": exc.code, "detail": str(exc)}, status_code=exc.status)
        except BusError as exc:
            WEBHOOK_REQUESTS.labels(provider, "unavailable").inc()
            log.warning("webhook_not_queued", provider=provider, detail=str(exc))
            return JSONResponse(
                {"error": "unavailable", "detail": "events not queued; retry"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        finally:
            _labelled_histogram(WEBHOOK_LATENCY, provider).observe(time.perf_counter() - started)

    return endpoint


def create_app(settings: Settings, publisher: EventPublisher | None = None) -> Starlette:
    """The receiver app. `publisher` defaults to one on HSQBO_RABBITMQ_URL, started and closed with the app."""
    settings.require("hubspot_client_secret", "intuit_verifier_token")
    bus: EventPublisher = publisher or Broker.from_settings(settings)
    receiver = Receiver(settings, CoalescingPublisher(bus))  # concurrent requests' events: one message, one confirm

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = bus.ready
        return JSONResponse({"ready": ready, "broker": ready}, status_code=200 if ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await bus.start()
        try:
            yield
        finally:
            await bus.close()

    app = Starlette(
        routes=[
            Route("/webhooks/hubspot", _guarded(Provider.HUBSPOT, receiver.hubspot), methods=["POST"]),
            Route("/webhooks/intuit", _guarded(Provider.QUICKBOOKS, receiver.intuit), methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ValidTarget)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    app.state.receiver = receiver
    return app


__all__ = ["create_app"]

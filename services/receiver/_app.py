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
(`_coalesce.py`): each still answers only once the message holding its events is confirmed. The two webhook routes
are bare ASGI endpoints (`_request.py`), which a POST reaches without Starlette's middleware and router
(`ReceiverApp`); every answer of theirs carries the request id (the caller's X-Request-Id, else a new one), which
travels with each change to the worker's log lines.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.receiver import _hubspot, _intuit
from services.receiver._coalesce import CoalescingPublisher
from services.receiver._dedupe import DedupeWindow
from services.receiver._request import (
    Disconnected,
    WebhookRequest,
    check_content,
    read_body,
    read_headers,
    request_id,
    respond,
    signed_uri,
)
from shared import signatures, tracing
from shared.asgi import ValidTarget
from shared.broker import Broker, EventPublisher
from shared.config import Settings, secret
from shared.domain import Provider
from shared.envelope import ChangeEnvelope
from shared.errors import BusError, SignatureError, WebhookError
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


class Receiver:
    def __init__(self, settings: Settings, publisher: EventPublisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.dedupe = DedupeWindow(seconds=settings.dedupe_window_seconds, max_entries=settings.dedupe_max_entries)

    async def hubspot(self, request: WebhookRequest) -> bytes:
        client_secret = secret(self.settings.hubspot_client_secret)
        headers = request.headers
        if "x-hubspot-signature-v3" in headers or not self.settings.hubspot_allow_v1_signatures:
            signatures.verify_hubspot_v3(
                client_secret,
                request.method,
                request.uri,
                request.body,
                headers.get("x-hubspot-request-timestamp"),
                headers.get("x-hubspot-signature-v3"),
                max_age_seconds=self.settings.signature_max_age_seconds,
            )
        else:
            signatures.verify_hubspot_v1(client_secret, request.body, headers.get("x-hubspot-signature"))
        envelopes, ignored = _hubspot.parse(request.body, request_id=request.request_id)
        return await self.enqueue(Provider.HUBSPOT, envelopes, ignored)

    async def intuit(self, request: WebhookRequest) -> bytes:
        signatures.verify_intuit(
            secret(self.settings.intuit_verifier_token), request.body, request.headers.get("intuit-signature")
        )
        received_at_ms = int(time.time() * 1000)
        envelopes, ignored = _intuit.parse(request.body, received_at_ms=received_at_ms, request_id=request.request_id)
        return await self.enqueue(Provider.QUICKBOOKS, envelopes, ignored)

    async def enqueue(self, provider: Provider, envelopes: Sequence[ChangeEnvelope], ignored: list[str]) -> bytes:
        """Queue the events not seen yet; the answer's body (how many were queued, duplicates, ignored)."""
        for event_type in ignored:
            EVENTS_IGNORED.labels(provider, event_type).inc()
        event_ids = [envelope.event_id for envelope in envelopes]
        positions, waiting, duplicates = self.dedupe.triage(event_ids)
        fresh = [envelopes[position] for position in positions]
        keys = [event_ids[position] for position in positions]
        self.dedupe.begin(keys)
        queued = False
        try:
            await self.publisher.publish(fresh)  # one message, one confirm
            queued = True
        finally:
            self.dedupe.end(keys, queued=queued)
        for pending in waiting:
            if not await pending:
                raise BusError("a concurrent delivery of the same event was not queued")
            duplicates += 1
        published: dict[str, int] = {}  # one increment per object type, not per event
        for envelope in fresh:
            published[envelope.object_type] = published.get(envelope.object_type, 0) + 1
        for object_type, count in published.items():
            _labelled_counter(EVENTS_PUBLISHED, provider, object_type).inc(count)
        if duplicates:
            _labelled_counter(EVENTS_DEDUPLICATED, provider).inc(duplicates)
        outcome = "accepted" if fresh or not duplicates else "duplicate"
        _labelled_counter(WEBHOOK_REQUESTS, provider, outcome).inc()
        # No line per request (a profile's visible share): the coalescer's `changes_queued` line names the requests
        # whose events each message holds.
        return orjson.dumps({"queued": len(fresh), "duplicates": duplicates, "ignored": len(ignored)})


_UNTRACED = contextlib.nullcontext()
NO_HEADERS: tuple[tuple[bytes, bytes], ...] = ()


@functools.cache
def _labelled_counter(metric: Counter, *values: str) -> Counter:
    """`metric.labels(*values)`, looked up once: prometheus_client checks and locks at each lookup, a profile's
    visible share per request. Only for labels from bounded sets (providers, object types synced, outcomes)."""
    return metric.labels(*values)


@functools.cache
def _labelled_histogram(metric: Histogram, *values: str) -> Histogram:
    """As `_labelled_counter`, for a histogram."""
    return metric.labels(*values)


class WebhookEndpoint:
    """One provider's webhook route (POST): reads the request (`_request.py`), runs `handle`, answers. Turns
    refusals into their HTTP answers and counts every request by outcome."""

    def __init__(
        self,
        provider: Provider,
        handle: Callable[[WebhookRequest], Awaitable[bytes]],
        content_types: frozenset[str],
        settings: Settings,
    ) -> None:
        self.provider = provider
        self.handle = handle
        self.content_types = content_types
        self.max_body_bytes = settings.max_body_bytes
        self.public_url = None if settings.public_url is None else str(settings.public_url).rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        provider = self.provider
        headers = read_headers(scope["headers"])
        given_id = request_id(headers)
        status, extra_headers = 200, NO_HEADERS
        try:
            # No span's generator to run when tracing is off: a profile's visible share per request.
            traced = tracing.span(f"webhook {provider}", provider=str(provider)) if tracing.enabled() else _UNTRACED
            with traced:
                check_content(headers, self.content_types, self.max_body_bytes)
                body = await read_body(receive, self.max_body_bytes)
                uri = signed_uri(scope, headers, self.public_url)
                answer = await self.handle(WebhookRequest(scope["method"], uri, headers, body, given_id))
        except Disconnected:
            return
        except WebhookError as exc:
            if isinstance(exc, SignatureError):
                SIGNATURE_FAILURES.labels(provider, exc.reason).inc()
            WEBHOOK_REQUESTS.labels(provider, exc.code).inc()
            log.warning("webhook_refused", provider=provider, status=exc.status, error=exc.code, detail=str(exc),
                        request_id=given_id)  # fmt: skip
            status, answer = exc.status, orjson.dumps({"error": exc.code, "detail": str(exc)})
        except BusError as exc:
            WEBHOOK_REQUESTS.labels(provider, "unavailable").inc()
            log.warning("webhook_not_queued", provider=provider, detail=str(exc), request_id=given_id)
            status, answer = 503, orjson.dumps({"error": "unavailable", "detail": "events not queued; retry"})
            extra_headers = ((b"retry-after", b"5"),)
        finally:
            _labelled_histogram(WEBHOOK_LATENCY, provider).observe(time.perf_counter() - started)
        await respond(send, status, answer, given_id, extra_headers)


class ReceiverApp(Starlette):
    """Starlette, except that a POST to a webhook route in `webhooks` goes straight to its endpoint: Starlette's
    middleware stack and router, a tenth of a single-event request's time in a profile, add nothing to a route that
    answers every outcome itself. Any other request (another method on a webhook route too) takes the full stack, and
    so does every request when proxies are trusted (`webhooks` is empty then)."""

    def __init__(self, webhooks: Mapping[str, WebhookEndpoint], **starlette: Any) -> None:
        super().__init__(**starlette)
        self.webhooks = dict(webhooks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.webhooks.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, publisher: EventPublisher | None = None) -> ReceiverApp:
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

    hubspot = WebhookEndpoint(Provider.HUBSPOT, receiver.hubspot, HUBSPOT_CONTENT_TYPES, settings)
    intuit = WebhookEndpoint(Provider.QUICKBOOKS, receiver.intuit, INTUIT_CONTENT_TYPES, settings)
    # With trusted proxies every request takes the full stack, for the middleware's rewrite of the scheme and client.
    direct = {} if settings.trusted_proxies else {"/webhooks/hubspot": hubspot, "/webhooks/intuit": intuit}
    app = ReceiverApp(
        direct,
        routes=[
            Route("/webhooks/hubspot", hubspot, methods=["POST"]),
            Route("/webhooks/intuit", intuit, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.add_middleware(ValidTarget)
    if settings.trusted_proxies:  # without any, the middleware would only look and pass every request on
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    app.state.receiver = receiver
    return app


__all__ = ["create_app"]

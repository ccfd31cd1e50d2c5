"""OpenTelemetry traces of one change, optional: receiver → broker → worker → API calls.

On only when the `otel` extra is installed (`pip install 'hsqbo[otel]'`) and OTEL_EXPORTER_OTLP_ENDPOINT is set;
the SDK reads its other OTEL_* settings itself (OTEL_SERVICE_NAME, default `hsqbo-<command>`). Otherwise every
function here does nothing and costs nothing, and no message carries trace headers.

    receiver   span `webhook <provider>`; each published change carries the W3C `traceparent` in its message headers
    worker     span `change` (child of the webhook's), which leaves the trace context in the record's pending hints;
               span `apply <kind>` (child of the oldest change's, linked to the others coalesced into it)
    clients    span `<provider> <operation>` per API call, inside the apply's
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shared.logging import get_logger

log = get_logger("hsqbo.tracing")

Carrier = Mapping[str, str]  # W3C trace context headers: {"traceparent": "00-...", "tracestate": ...}

_tracer: Any = None  # an opentelemetry Tracer once configured; None: tracing off


def configure_tracing(service: str | None = None) -> bool:
    """Export spans over OTLP/HTTP when an endpoint is set and the SDK installed; True if tracing is on."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("tracing_unavailable", reason="OTEL_EXPORTER_OTLP_ENDPOINT is set: pip install 'hsqbo[otel]'")
        return False
    name = os.environ.get("OTEL_SERVICE_NAME") or f"hsqbo-{service or _command()}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use_tracer_provider(provider)
    log.info("tracing_on", service=name)
    return True


def use_tracer_provider(provider: Any) -> None:
    """Trace with `provider` (an SDK TracerProvider; tests give one with an in-memory exporter), None: off."""
    global _tracer
    _tracer = provider.get_tracer("hsqbo") if provider is not None else None


def enabled() -> bool:
    return _tracer is not None


@contextlib.contextmanager
def span(
    name: str, *, parent: Carrier | None = None, links: Sequence[Carrier] = (), **attributes: str | int
) -> Iterator[None]:
    """A span around the block: a child of `parent` (a carrier from another process) if given, else of the current
    span; `links` to other traces that led here. Nothing when tracing is off."""
    if _tracer is None:
        yield
        return
    from opentelemetry import propagate, trace

    context = propagate.extract(dict(parent)) if parent else None
    linked = [trace.Link(trace.get_current_span(propagate.extract(dict(c))).get_span_context()) for c in links]
    with _tracer.start_as_current_span(name, context=context, links=linked, attributes=attributes):
        yield


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers, to travel in a message; {} when tracing is off."""
    if _tracer is None:
        return {}
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def carrier_from(headers: Mapping[str, object] | None) -> dict[str, str]:
    """The trace headers of a received message ({} when it has none or tracing is off)."""
    if _tracer is None or not headers:
        return {}
    return {key: str(value) for key, value in headers.items() if key in ("traceparent", "tracestate")}


def _command() -> str:
    return sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "process"

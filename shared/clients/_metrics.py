"""Count and time every provider call: `with measured(provider, operation): ...`."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator

from shared import tracing
from shared.errors import ApiError
from shared.metrics import API_LATENCY, API_REQUESTS

_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def outcome(exc: BaseException | None) -> str:
    """ok, or the error kind in snake case (RateLimited -> rate_limited); anything unexpected is "error"."""
    if exc is None:
        return "ok"
    if isinstance(exc, asyncio.CancelledError):  # the caller gave up (shutdown, deadline): not the provider's fault
        return "cancelled"
    if isinstance(exc, ApiError):
        return _CAMEL_BOUNDARY.sub("_", type(exc).__name__).lower()
    return "error"


@contextlib.contextmanager
def measured(provider: str, operation: str) -> Iterator[None]:
    started = time.perf_counter()
    failure: BaseException | None = None
    try:
        with tracing.span(f"{provider} {operation}", provider=provider, operation=operation):
            yield
    except BaseException as exc:
        failure = exc
        raise
    finally:
        API_REQUESTS.labels(provider, operation, outcome(failure)).inc()
        API_LATENCY.labels(provider, operation).observe(time.perf_counter() - started)

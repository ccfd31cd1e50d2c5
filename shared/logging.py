"""structlog, JSON lines on stderr. Bind context (request_id, connection) with `structlog.contextvars`.

Never log a secret, a token or a whole payload: log ids, counts and reasons.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import orjson
import structlog


def configure_logging(level: str = "INFO") -> None:
    """Our events at `level`; the libraries' own logging at INFO at most verbose, since their DEBUG output carries
    what ours never may (AMQP frames with message bodies, SQL parameters, HTTP headers)."""
    ours = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(format="%(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(max(ours, logging.INFO))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(ours),
        logger_factory=structlog.BytesLoggerFactory(sys.stderr.buffer),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextlib.contextmanager
def bound(**values: object) -> Iterator[None]:
    """Bind `values` to every line logged inside the block (this task's context), leaving out the None ones."""
    with structlog.contextvars.bound_contextvars(**{name: v for name, v in values.items() if v is not None}):
        yield

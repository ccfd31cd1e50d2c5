"""structlog, JSON lines on stderr. Bind context (request_id, connection) with `structlog.contextvars`.

Never log a secret, a token or a whole payload: log ids, counts and reasons.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import structlog


def _json(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Our events at `level`; the libraries' own logging (aio-pika, aiormq, uvicorn, asyncio...) at INFO at most
    verbose, since their DEBUG output carries what ours never may (AMQP frames with message bodies, SQL parameters,
    HTTP headers), rendered as the same JSON lines through structlog's stdlib integration (`logger` names the
    library). A library's traceback stays inside its line (`exception`)."""
    ours = logging.getLevelNamesMapping()[level.upper()]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(serializer=_json),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(ours, logging.INFO))
    logging.captureWarnings(True)
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
        # Not cached: a module's logger obeys the configuration in force when it logs, not the one of its first line
        # (a command run in-process, or a test capturing lines, configures again).
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextlib.contextmanager
def bound(**values: object) -> Iterator[None]:
    """Bind `values` to every line logged inside the block (this task's context), leaving out the None ones."""
    with structlog.contextvars.bound_contextvars(**{name: v for name, v in values.items() if v is not None}):
        yield

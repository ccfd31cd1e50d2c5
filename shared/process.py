"""What `hsqbo` commands do alike: read their settings (a `--config` flag overrides HSQBO_CONFIG), set up logging,
stop gracefully on SIGINT or SIGTERM, and read times given on the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import re
import signal
import time
from pathlib import Path

from shared.config import Settings, load_settings
from shared.logging import configure_logging
from shared.tracing import configure_tracing

_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def process_settings(config: str | Path | None = None) -> Settings:
    """The environment's settings, with `config` as the sync rules file when given; logging configured."""
    settings = load_settings()
    if config:
        settings = settings.model_copy(update={"config": Path(config)})
    configure_logging(settings.log_level)
    configure_tracing()  # only with the `otel` extra and OTEL_EXPORTER_OTLP_ENDPOINT set
    return settings


def stop_on_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM, for the running event loop: the process's graceful stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # platforms without loop signal handlers
            loop.add_signal_handler(signum, stop.set)
    return stop


def parse_time(text: str, now: float | None = None) -> float:
    """`2025-01-31T12:00` (UTC unless it says otherwise) or a duration ago (`30m`, `2h`, `7d`) → epoch seconds. Raises
    `argparse.ArgumentTypeError`, so it serves as an argument's `type`."""
    if match := _AGO.fullmatch(text):
        return (time.time() if now is None else now) - float(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an ISO 8601 time nor a duration like 2h") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()

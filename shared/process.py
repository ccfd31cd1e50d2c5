"""What `hsqbo` commands do alike: read their settings (a `--config` flag overrides HSQBO_CONFIG), set up logging,
stop gracefully on SIGINT or SIGTERM (within HSQBO_SHUTDOWN_SECONDS, whatever is down), and read times given on the
command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import re
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from shared.config import Settings, load_settings
from shared.logging import configure_logging, get_logger
from shared.tracing import configure_tracing

# Past HSQBO_SHUTDOWN_SECONDS (in-flight work's time to finish), this long for the rest (closing connections) before
# the process gives up waiting and exits all the same.
SHUTDOWN_MARGIN_SECONDS = 5.0

log = get_logger("hsqbo.process")

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


def run_service(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]], settings: Settings) -> None:
    """Run `main(stop)` until it returns; `stop` is set on SIGINT or SIGTERM. From then on `main` has
    `shutdown_seconds` plus a margin to return, else it is cancelled and the process exits anyway: a broker or store
    that is down never holds a stop."""

    async def serve() -> None:
        stop = stop_on_signals()
        running = asyncio.create_task(main(stop))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            deadline = settings.shutdown_seconds + SHUTDOWN_MARGIN_SECONDS
            done, _ = await asyncio.wait({running}, timeout=deadline)
            if not done:
                log.warning("shutdown_forced", after_seconds=deadline)
                running.cancel()
                await asyncio.wait({running}, timeout=1.0)
                return
        stopping.cancel()
        running.result()

    asyncio.run(serve())


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

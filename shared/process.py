"""What every long-running `hsqbo` command does alike: read its settings (a `--config` flag overrides HSQBO_CONFIG),
set up logging, and stop gracefully on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from shared.config import Settings, load_settings
from shared.logging import configure_logging


def process_settings(config: str | Path | None = None) -> Settings:
    """The environment's settings, with `config` as the sync rules file when given; logging configured."""
    settings = load_settings()
    if config:
        settings = settings.model_copy(update={"config": Path(config)})
    configure_logging(settings.log_level)
    return settings


def stop_on_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM, for the running event loop: the process's graceful stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # platforms without loop signal handlers
            loop.add_signal_handler(signum, stop.set)
    return stop

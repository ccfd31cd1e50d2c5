"""A long-running command's settings (`--config` over HSQBO_CONFIG) and its graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from shared.process import process_settings, stop_on_signals

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_the_config_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSQBO_CONFIG", "/etc/hsqbo.toml")
    assert process_settings().config == Path("/etc/hsqbo.toml")
    assert process_settings("mine.toml").config == Path("mine.toml")


async def test_sigterm_sets_the_stop_event() -> None:
    stop = stop_on_signals()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(stop.wait(), 5.0)
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().remove_signal_handler(signum)

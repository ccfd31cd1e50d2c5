"""A long-running command's settings (`--config` over HSQBO_CONFIG) and its graceful stop on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
from pathlib import Path

import pytest

from shared.process import parse_time, process_settings, stop_on_signals

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


def test_times_are_iso_8601_in_utc_or_a_duration_ago() -> None:
    assert parse_time("2025-01-31T12:00:00") == dt.datetime(2025, 1, 31, 12, tzinfo=dt.UTC).timestamp()
    assert parse_time("2025-01-31T12:00:00+01:00") == dt.datetime(2025, 1, 31, 11, tzinfo=dt.UTC).timestamp()
    assert parse_time("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_time("30m", now=10_000.0) == 10_000.0 - 1800
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("yesterday")

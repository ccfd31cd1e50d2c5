"""Logging: our events go out at the configured level, never the libraries' DEBUG output (message bodies, SQL
parameters, headers)."""

from __future__ import annotations

import logging

import pytest
import structlog

from shared.logging import configure_logging

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_debug_turns_on_our_debug_events_but_not_the_libraries_debug_output() -> None:
    configure_logging("DEBUG")
    assert structlog.get_logger("hsqbo.worker").is_enabled_for(logging.DEBUG)
    for library in ("aiormq", "aio_pika", "aiosqlite", "aiohttp.client"):
        assert not logging.getLogger(library).isEnabledFor(logging.DEBUG)


def test_warning_quiets_the_libraries_too() -> None:
    configure_logging("WARNING")
    assert not logging.getLogger("aiormq").isEnabledFor(logging.INFO)

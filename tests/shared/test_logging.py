"""Logging: our events go out at the configured level, never the libraries' DEBUG output (message bodies, SQL
parameters, headers)."""

from __future__ import annotations

import logging

import orjson
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


def test_the_libraries_lines_are_json_like_ours(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    for library in ("aio_pika.robust_connection", "aiormq.connection", "uvicorn.error", "asyncio"):
        logging.getLogger(library).warning("Connection attempt to %s failed", "amqp://127.0.0.1:1/")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5  # the traceback stays inside its line
    parsed = [orjson.loads(line) for line in lines]
    assert [line["logger"] for line in parsed] == [
        "aio_pika.robust_connection", "aiormq.connection", "uvicorn.error", "asyncio", "asyncio",
    ]  # fmt: skip
    assert parsed[0]["event"] == "Connection attempt to amqp://127.0.0.1:1/ failed"
    assert parsed[0]["level"] == "warning"
    assert "timestamp" in parsed[0]
    assert "ValueError: boom" in parsed[-1]["exception"]

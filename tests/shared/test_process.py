"""Processes behave: a port in use or an unreachable broker is one line on stderr (a command exits 1; a service
retries with backoff, in JSON lines, no traceback), and a stop takes HSQBO_SHUTDOWN_SECONDS at most even with the
broker down. Real `hsqbo` processes; no RabbitMQ needed (the broker is a closed port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
NOWHERE = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1


def hsqbo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "hsqbo.env").touch()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("HSQBO_", "OTEL_"))}
    return {
        **env, "PYTHONPATH": str(REPO), "HSQBO_RABBITMQ_URL": NOWHERE, "HSQBO_ENV_FILE": str(tmp_path / "hsqbo.env"),
        "HSQBO_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}", "HSQBO_HUBSPOT_CLIENT_SECRET": "s",
        "HSQBO_INTUIT_VERIFIER_TOKEN": "t", **extra,
    }  # fmt: skip


def hsqbo(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *argv], cwd=REPO, env=hsqbo_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("command", ["receiver", "status"])
def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path, busy_port: int, command: str) -> None:
    done = hsqbo(tmp_path, command, "--port", str(busy_port))
    assert done.returncode == 1
    [line] = [line for line in done.stderr.splitlines() if "broker_" not in line]  # status may try its broker
    assert line == f"hsqbo {command}: cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    assert "Traceback" not in done.stderr


def test_an_unreachable_broker_is_one_line_for_a_command(tmp_path: Path) -> None:
    done = hsqbo(tmp_path, "dlq", "list")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("hsqbo dlq: RabbitMQ unreachable: ")
    assert done.stdout == ""


def test_a_worker_without_its_broker_retries_in_json_lines_and_stops_within_the_shutdown_time(tmp_path: Path) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "worker"], cwd=REPO, stderr=subprocess.PIPE, text=True,
        env=hsqbo_env(tmp_path, HSQBO_SHUTDOWN_SECONDS="1"),
    )  # fmt: skip
    try:
        time.sleep(4.0)  # imports, then a few attempts
        worker.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        _, err = worker.communicate(timeout=30)
        took = time.monotonic() - stopping
    finally:
        worker.kill()
    lines = [orjson.loads(line) for line in err.splitlines()]  # every line JSON
    attempts = [line for line in lines if line["event"] == "broker_unreachable"]
    assert len(attempts) >= 2
    assert attempts[0]["reason"].startswith(("AMQPConnectionError", "ConnectionRefusedError", "OSError"))
    assert attempts[1]["retry_in"] >= attempts[0]["retry_in"]  # backing off
    assert "Traceback" not in err
    assert took < 1 + 5 + 2  # HSQBO_SHUTDOWN_SECONDS, the closing margin, the interpreter's exit
    assert worker.returncode == 0

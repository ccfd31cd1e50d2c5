"""Worker processes killed mid-write: the store's lease, the sweep and QBO's `requestid` leave exactly one record."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.domain import Kind
from tests.conftest import REPO
from tests.integration.conftest import CONNECTION, Stack, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def in_process_worker() -> bool:
    return False


def worker_environment(stack: Stack, tmp_path: Path, **overrides: object) -> dict[str, str]:
    """The stack's settings as HSQBO_* variables, with a sync config file for its connections."""
    config = tmp_path / "hsqbo.toml"
    config.write_text(
        "".join(
            f'[[connection]]\nname = "{connection.name}"\nhubspot_portal_id = "{connection.hubspot_portal_id}"\n'
            f'qbo_realm_id = "{connection.qbo_realm_id}"\nsetup_date = {connection.setup_date.isoformat()}\n'
            "[connection.contacts]\nhubspot_to_qbo = {}\n"
            for connection in stack.sync.connection
        )
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("HSQBO_")}
    fields = {**stack.settings.model_dump(), "config": config, **overrides}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, tuple | list):
            value = json.dumps(list(value))
        env[f"HSQBO_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The worker processes a test starts, stopped after it; their warnings and errors are printed then, which pytest
    shows only when the test failed (CI keeps no tmp_path, and the reason is often in a worker's log)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    print(worker_troubles(tmp_path))


def worker_troubles(log_dir: Path, last: int = 10) -> str:
    """How many warnings and errors the worker logs in `log_dir` hold, by event, and the last few of them."""
    troubles: list[tuple[str, str]] = []  # (event, the line as logged)
    for log in sorted(log_dir.glob("worker-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("level") in ("warning", "error", "critical"):
                    troubles.append((str(event.get("event")), f"{log.stem}: {line}"))
    counts = collections.Counter(name for name, _ in troubles)
    return "\n".join([f"worker warnings and errors by event: {dict(counts)}", *(line for _, line in troubles[-last:])])


def start_worker(
    env: dict[str, str], started: list[subprocess.Popen[bytes]], command: str = "worker"
) -> subprocess.Popen[bytes]:
    """A worker process (or another `hsqbo` command's); its log goes next to its config, in the test's tmp_path
    (pytest keeps the last few)."""
    log = Path(env["HSQBO_CONFIG"]).parent / f"{command}-{len(started)}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", command], cwd=REPO, env=env, stdout=output, stderr=output
        )
    started.append(process)
    return process


async def test_a_crash_between_the_qbo_write_and_the_store_update_still_leaves_one_customer(
    stack: Stack, tmp_path: Path, worker_processes: list[subprocess.Popen[bytes]]
) -> None:
    env = worker_environment(stack, tmp_path, lease_seconds=2.0, sweep_seconds=0.5)
    # QBO carries out the create but holds its answer back: the worker is killed before it can record the link.
    stack.sandbox.qbo.faults.update(held_answer_ms=10_000, held_answer_path="/customer")
    first = start_worker(env, worker_processes)
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "crash@example.com", "firstname": "C"})

    def customers() -> list[dict[str, object]]:
        email = {"Address": "crash@example.com"}
        return [c for c in stack.qbo_entities("Customer") if c.get("PrimaryEmailAddr") == email]

    await eventually(lambda: len(customers()) == 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    intent = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert intent is not None  # what the customer will hold is recorded, not yet its id
    assert intent.qbo_id is None

    stack.sandbox.qbo.faults.update(held_answer_ms=0.0, held_answer_path="")
    start_worker(env, worker_processes)
    await stack.settle(within=60)

    [customer] = customers()
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    assert link.qbo_id == customer["Id"]

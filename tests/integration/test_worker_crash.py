"""Worker processes killed mid-write: the store's lease, the sweep and QBO's `requestid` leave exactly one record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.store import Kind
from tests.conftest import REPO
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration


@pytest.fixture
def in_process_worker() -> bool:
    return False


def worker_environment(stack: Stack, tmp_path: Path, **overrides: object) -> dict[str, str]:
    """The stack's settings as HSQBO_* variables, with a sync config file for its connection."""
    [connection] = stack.sync.connection
    config = tmp_path / "hsqbo.toml"
    config.write_text(
        f'[[connection]]\nname = "{connection.name}"\nhubspot_portal_id = "{connection.hubspot_portal_id}"\n'
        f'qbo_realm_id = "{connection.qbo_realm_id}"\nsetup_date = {connection.setup_date.isoformat()}\n'
        "[connection.contacts]\nhubspot_to_qbo = {}\n"
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
def worker_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def start_worker(env: dict[str, str], started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A worker process; its log goes next to its config, in the test's tmp_path (pytest keeps the last few)."""
    log = Path(env["HSQBO_CONFIG"]).parent / f"worker-{len(started)}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker"], cwd=REPO, env=env, stdout=output, stderr=output
        )
    started.append(process)
    return process


async def wait_for(condition: Callable[[], bool], *, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


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

    await wait_for(lambda: len(customers()) == 1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"]) is None

    stack.sandbox.qbo.faults.update(held_answer_ms=0.0, held_answer_path="")
    start_worker(env, worker_processes)
    await stack.settle(within=60)

    [customer] = customers()
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
    assert link is not None
    assert link.qbo_id == customer["Id"]

"""Delivery guarantees under faults (issue 5): worker processes SIGKILLed mid-write, a broker restart during a publish
burst, 5xx and 429 storms from both APIs, and the client's rate limits against the sandboxes' real ones. Each test
injects known changes as a user (`checker.Workload`) and, after quiescence, `checker.classify` sorts every change into
applied once, lost or duplicated.

Schedules are compressed (debounce, lease, sweep, retry delays); where a test is about faults rather than throughput,
both the sandboxes' limits and the client's are raised by `LIMIT_SCALE`, so the run takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from services.worker import Engine, Worker
from shared.broker import declare_topology
from shared.clients import AiohttpTransport
from shared.connections import ContextFactory
from shared.domain import Provider
from tests.conftest import Broker
from tests.integration.checker import Acknowledged, Outcome, Workload, assert_applied_once, classify
from tests.integration.conftest import Stack, eventually
from tests.integration.test_worker_crash import start_worker, worker_environment, worker_processes

pytestmark = pytest.mark.integration

__all__ = ["worker_processes"]  # a fixture, used by name

KILL_RUN_CHANGES = 1_000  # creates and edits during which worker processes are killed
KILLS = (3, 5)  # how many times, at least and at most
BURST_CHANGES = 300  # the other runs
CREATE_SHARE = 0.15  # of the changes, creates; the rest edit a record created earlier, on its own side
LIMITED_CREATE_SHARE = 0.5  # the rate-limit burst: enough new records that HubSpot's 10 s budget is not enough
LIMIT_SCALE = 10  # tests about faults, not throughput: both sides' rate limits times this
API_LATENCY_MS = (5.0, 30.0)  # keeps writes in flight, so a kill lands in the middle of some


@pytest.fixture
def in_process_worker() -> bool:
    return False  # each test starts the workers it needs, with its own settings


def raise_limits(stack: Stack) -> dict[str, Any]:
    """Both sandboxes' rate limits (every connection's portal) times LIMIT_SCALE; returns the client settings that
    match them."""
    stack.sandbox.qbo.limiter.limits.requests_per_minute *= LIMIT_SCALE
    for connection in stack.sync.connection:
        hubspot = stack.sandbox.hubspot.accounts.get(int(connection.hubspot_portal_id))
        hubspot.configure(burst_limit=hubspot.limits.burst_max * LIMIT_SCALE,
                          search_per_second=hubspot.limits.search_per_second * LIMIT_SCALE)  # fmt: skip
    names = (
        "qbo_requests_per_minute",
        "qbo_requests_per_second",
        "hubspot_burst_requests",
        "hubspot_search_per_second",
    )
    return {name: getattr(stack.settings, name) * LIMIT_SCALE for name in names}


@contextlib.asynccontextmanager
async def running_worker(stack: Stack, **settings: Any) -> AsyncIterator[Worker]:
    """A worker in this process with the stack's settings changed by `settings` (rate limits included)."""
    tuned = stack.settings.model_copy(update=settings)
    async with AiohttpTransport.from_settings(tuned) as transport:
        engine = Engine(stack.store, ContextFactory(tuned, stack.store, transport), stack.sync)
        worker = Worker(tuned, stack.sync, stack.store, engine)
        await worker.start()
        try:
            yield worker
        finally:
            await worker.stop()


async def pause(rng: random.Random) -> None:
    """Now and then, let webhooks go out and the workers sync between two changes."""
    if rng.random() < 0.3:
        await asyncio.sleep(rng.uniform(0.0, 0.03))


async def inject(workload: Workload, rng: random.Random, count: int, create_share: float = CREATE_SHARE) -> None:
    for _ in range(count):
        workload.step(create_share)
        await pause(rng)


async def writes_flowing(stack: Stack) -> None:
    """Until hsqbo writes to an API again: a kill now lands in the middle of writes."""
    writes = sum(stack.api_writes().values())
    await eventually(lambda: sum(stack.api_writes().values()) > writes)


async def receiver_refusing(stack: Stack, *, within: float = 30.0) -> None:
    """Until the receiver says it cannot queue events (its broker is down)."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            async with session.get(stack.receiver.url + "/readyz") as response:
                return response.status == 200

        while await ready():
            assert time.monotonic() < deadline, "the receiver never noticed the broker going down"
            await asyncio.sleep(0.05)


async def test_checker_counts_an_unsynced_change_as_lost_a_second_counterpart_as_duplicated(stack: Stack) -> None:
    async with await aio_pika.connect(stack.settings.rabbitmq_url) as connection:  # the queues a worker declares
        await declare_topology(
            await connection.channel(),
            delays=stack.settings.retry_delays,
            connections=[each.name for each in stack.sync.connection],
        )
    workload = Workload(stack, random.Random(5000), tag="check")
    workload.create(Provider.HUBSPOT)  # no worker runs: never synced
    doubled = workload.create(Provider.HUBSPOT)
    for n in range(2):  # what a worker creating twice would leave
        stack.qbo_edit(
            "Customer", "create", {"DisplayName": f"Twice {n}", "PrimaryEmailAddr": {"Address": doubled.email}}
        )
    stranger = {"DisplayName": "Stranger", "PrimaryEmailAddr": {"Address": "stranger@faults.test"}}
    stack.qbo_edit("Customer", "create", stranger)

    verdict = classify(stack, workload.changes)
    assert [outcome for _, outcome in verdict.outcomes] == [Outcome.LOST, Outcome.DUPLICATED]
    assert verdict.unexpected == ["stranger@faults.test"]


async def test_sigkilled_workers_lose_and_duplicate_no_change(
    stack: Stack, tmp_path: Path, worker_processes: list[subprocess.Popen[bytes]]
) -> None:
    rng = random.Random(5001)
    # The lease outlasts an apply that waits for the rate-limit slots a killed process held (they come back after
    # api_timeout_seconds + 5 s): a lease that expires mid-apply lets a second worker sync the record concurrently.
    env = worker_environment(
        stack, tmp_path, lease_seconds=10.0, sweep_seconds=0.5, api_timeout_seconds=3.0, **raise_limits(stack)
    )
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):
        sandbox.faults.update(latency_ms=API_LATENCY_MS)
    workers = [start_worker(env, worker_processes) for _ in range(2)]
    kills = sorted(rng.sample(range(KILL_RUN_CHANGES // 10, KILL_RUN_CHANGES), rng.randint(*KILLS)))
    workload = Workload(stack, rng, tag="kill")
    for n in range(KILL_RUN_CHANGES):
        workload.step(CREATE_SHARE)
        await pause(rng)
        if n in kills:
            await writes_flowing(stack)
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(timeout=10)
            workers[victim] = start_worker(env, worker_processes)
    await stack.settle(within=120)

    assert len(workload.changes) == KILL_RUN_CHANGES
    await assert_applied_once(stack, classify(stack, workload.changes))


async def test_a_crash_between_the_hubspot_write_and_the_store_update_does_not_revert_a_later_qbo_edit(
    stack: Stack, tmp_path: Path, worker_processes: list[subprocess.Popen[bytes]]
) -> None:
    env = worker_environment(stack, tmp_path, lease_seconds=2.0, sweep_seconds=0.5)
    first = start_worker(env, worker_processes)
    email = {"Address": "ahead@faults.test"}
    customer = stack.qbo_edit(
        "Customer", "create", {"DisplayName": "Ahead", "GivenName": "One", "PrimaryEmailAddr": email}
    )
    await eventually(lambda: [c.get("firstname") for c in stack.hubspot_records("contacts")] == ["One"])
    await stack.settle()
    [contact] = stack.hubspot_records("contacts")

    # HubSpot carries out the update but holds its answer back: the worker is killed before it records the link.
    stack.sandbox.hubspot.faults.update(held_answer_ms=5_000, held_answer_path=f"/contacts/{contact['id']}")
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "GivenName": "Two"})
    await eventually(lambda: stack.hubspot_records("contacts")[0]["firstname"] == "Two")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    stack.sandbox.hubspot.faults.reset()

    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "GivenName": "Three"})  # the user's latest word
    start_worker(env, worker_processes)
    await stack.settle(within=60)
    assert [c["GivenName"] for c in stack.qbo_entities("Customer")] == ["Three"]
    assert [c["firstname"] for c in stack.hubspot_records("contacts")] == ["Three"]


async def test_every_change_the_receiver_accepted_survives_a_broker_restart_during_a_publish_burst(
    stack: Stack, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5002)
    workload = Workload(stack, rng, tag="restart")
    acknowledged = Acknowledged(stack, workload, monkeypatch)
    async with running_worker(stack, **raise_limits(stack)):
        await inject(workload, rng, BURST_CHANGES // 3)
        restart = asyncio.ensure_future(asyncio.to_thread(broker.restart))
        await receiver_refusing(stack)
        await inject(workload, rng, BURST_CHANGES // 3)  # refused with 503 while the broker is down, then resent
        await restart
        await inject(workload, rng, BURST_CHANGES - len(workload.changes))
        await stack.settle(within=120)

    accepted = acknowledged.accepted(workload.changes)
    assert len(accepted) > 0
    await assert_applied_once(stack, classify(stack, accepted))


async def test_5xx_and_429_storms_from_both_apis_lose_and_duplicate_no_change(stack: Stack) -> None:
    rng = random.Random(5003)
    workload = Workload(stack, rng, tag="storm")
    storms = set(rng.sample(range(BURST_CHANGES), 2))
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):
        sandbox.faults.update(error_rate=0.1)
    # Client limits off: a QBO 429 would pause the realm for Intuit's 60 s, which no setting compresses; the
    # worker's own backoff is what this test is about. Attempts: enough that a 10 % error rate never exhausts them.
    async with running_worker(stack, api_rate_limits=False, max_attempts=12):
        for n in range(BURST_CHANGES):
            await inject(workload, rng, 1)
            if n in storms:
                for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):
                    sandbox.faults.update(throttle_until=stack.sandbox.clock.now() + 3.0)
        await stack.settle(within=120)

    await assert_applied_once(stack, classify(stack, workload.changes))
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):  # the faults did happen
        assert sandbox.requests.count(status=429) > 0
        assert sandbox.requests.count(status=500) > 0


@pytest.mark.long  # a minute of real limit windows; test_limits.py's shorter burst checks the same in `make test`
async def test_client_rate_limits_keep_a_burst_under_the_sandboxes_real_limits(stack: Stack) -> None:
    rng = random.Random(5004)
    workload = Workload(stack, rng, tag="limits")
    async with running_worker(stack):
        await inject(workload, rng, BURST_CHANGES, LIMITED_CREATE_SHARE)
        await stack.settle(within=180)

    await assert_applied_once(stack, classify(stack, workload.changes))
    # The burst asked for more than one window's budget: without pacing it would have been throttled.
    assert stack.sandbox.hubspot.requests.count() > stack.sandbox.hubspot.accounts.get(stack.portal_id).limits.burst_max
    assert stack.sandbox.hubspot.requests.count(status=429) == 0
    assert stack.sandbox.qbo.requests.count(status=429) == 0

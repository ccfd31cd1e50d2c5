"""The whole sync, end to end, out of the box (issue 5 and the roadmap's floors): how long a user's edit takes to
show on the other side, how many API calls one change costs, and how many records a minute sync at the providers'
real rate limits, counting every 429 the sandboxes answered (the client's own limits should leave none).

The stack runs in this process (`services.run.running_stack`: both sandboxes at their real limits, answering each
API call after 120 ± 40 ms, unseeded, the receiver, the worker and the poller, the private RabbitMQ node) with default
settings, so the 1 s debounce window is in every lag. Phases:

- **lag**: `LAG_RECORDS` contacts made in HubSpot and `LAG_RECORDS` customers in QBO are synced first; then
  `LAG_EDITS` phone edits, one at a time, alternating sides. An edit's lag runs from the user's edit to the other
  side holding the new value (looked at every 10 ms). API calls per change are the requests both sandboxes recorded
  during the edits, divided by the edits.
- **burst**: `BURST_RECORDS` contacts created in HubSpot at once; records/minute is that count over the time until
  every one has its QBO customer. HubSpot allows a portal 100 requests per 10 s, QBO a realm 500 per minute.

`sync` keeps the store in SQLite (the embedded default), `sync-postgres` in a scratch database on the Postgres server
`HSQBO_POSTGRES_URL` names (`make bench` starts the private one), as several hosts would share it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from benchmarks._load import run_load
from benchmarks._report import BenchmarkResult
from benchmarks._stats import percentile
from hsqbo_sandbox.hubspot._schema import BY_NAME
from services.run import RunningStack, StackOptions, run_connection, running_stack
from shared.config import Settings

LAG_RECORDS = 10
LAG_EDITS = 40
BURST_RECORDS = 300
LOOK_SECONDS = 0.01
# The sandboxes answer every API call at a real provider's round trip, 120 ± 40 ms, as over the internet.
SANDBOX_LATENCY_MS = 120.0
SANDBOX_LATENCY_JITTER_MS = 40.0
WAIT_SECONDS = 300.0  # give up on a phase after this long (the figure would be meaningless anyway)


async def until(condition: Callable[[], bool], *, within: float = WAIT_SECONDS) -> float:
    """Seconds until `condition()` holds, looking every LOOK_SECONDS."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > within:
            raise TimeoutError("the stack did not sync in time")
        await asyncio.sleep(LOOK_SECONDS)
    return time.perf_counter() - started


class Sides:
    """Both accounts as the sandboxes hold them, and a user's edits."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.realm = stack.sandbox.qbo.realms[stack.realm_id]
        self.portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal

    def customer_phones(self) -> dict[str, str | None]:
        customers = [r.data for r in self.realm.records["Customer"].values()]
        return {
            (c.get("PrimaryEmailAddr") or {}).get("Address", ""): (c.get("PrimaryPhone") or {}).get("FreeFormNumber")
            for c in customers
        }

    def contact_phones(self) -> dict[str, str | None]:
        contacts = self.portal.live(BY_NAME["contacts"]).values()
        return {str(r.properties.get("email")): r.properties.get("phone") for r in contacts}

    def create_contact(self, email: str) -> str:
        made = self.stack.sandbox.hubspot.user_edit(
            portal_id=self.stack.portal_id, object_type="contacts", action="create",
            properties={"email": email, "firstname": "Bench", "lastname": email.split("@")[0]},
        )  # fmt: skip
        return str(made["id"])

    def create_customer(self, email: str) -> str:
        body = {"DisplayName": email, "GivenName": "Bench", "PrimaryEmailAddr": {"Address": email}}
        return str(self.stack.sandbox.qbo.user_edit(self.stack.realm_id, "Customer", "create", body).body["Id"])

    def edit_contact_phone(self, contact_id: str, phone: str) -> None:
        self.stack.sandbox.hubspot.user_edit(portal_id=self.stack.portal_id, object_type="contacts", action="update",
                                             id=contact_id, properties={"phone": phone})  # fmt: skip

    def edit_customer_phone(self, customer_id: str, phone: str) -> None:
        body = {"Id": customer_id, "PrimaryPhone": {"FreeFormNumber": phone}}
        self.stack.sandbox.qbo.user_edit(self.stack.realm_id, "Customer", "update", body)

    def api_calls(self, since: float) -> collections.Counter[str]:
        """Requests each sandbox recorded since `since` (sandbox clock), by provider and status class."""
        counted: collections.Counter[str] = collections.Counter()
        sandbox = self.stack.sandbox
        for provider, log in (("hubspot", sandbox.hubspot.requests), ("quickbooks", sandbox.qbo.requests)):
            for entry in log.list(since=since):
                counted[provider] += 1
                counted[f"{provider} {entry.status}"] += 1
        return counted


def _holds(phones: Callable[[], dict[str, str | None]], email: str, phone: str) -> bool:
    return phones().get(email) == phone


async def lag_phase(sides: Sides) -> dict[str, Any]:
    contacts = {f"lag-h{n}@bench.test": sides.create_contact(f"lag-h{n}@bench.test") for n in range(LAG_RECORDS)}
    customers = {f"lag-q{n}@bench.test": sides.create_customer(f"lag-q{n}@bench.test") for n in range(LAG_RECORDS)}
    await until(lambda: set(contacts) <= set(sides.customer_phones()) and set(customers) <= set(sides.contact_phones()))
    await asyncio.sleep(2.0)  # the creations' echoes and the poller's first look settle
    since = sides.stack.sandbox.hubspot.clock.now()
    lags = []
    for n in range(LAG_EDITS):
        phone = f"+1 555 {n:06d}"
        from_hubspot = n % 2 == 0
        email, record_id = list((contacts if from_hubspot else customers).items())[n // 2 % LAG_RECORDS]
        if from_hubspot:
            sides.edit_contact_phone(record_id, phone)
        else:
            sides.edit_customer_phone(record_id, phone)
        other_side = sides.customer_phones if from_hubspot else sides.contact_phones
        lags.append(await until(functools.partial(_holds, other_side, email, phone)))
    await asyncio.sleep(2.0)  # the last edit's echo is part of its cost
    calls = sides.api_calls(since)
    ordered = sorted(lags)
    return {
        "edits": LAG_EDITS,
        "lag_p50_s": round(percentile(ordered, 0.50), 3),
        "lag_p99_s": round(percentile(ordered, 0.99), 3),
        "lag_max_s": round(ordered[-1], 3),
        "api_calls_per_change": round((calls["hubspot"] + calls["quickbooks"]) / LAG_EDITS, 2),
        "hubspot_calls": calls["hubspot"],
        "qbo_calls": calls["quickbooks"],
    }


async def burst_phase(sides: Sides) -> dict[str, Any]:
    since = sides.stack.sandbox.hubspot.clock.now()
    emails = [f"burst-{n}@bench.test" for n in range(BURST_RECORDS)]
    started = time.perf_counter()
    for email in emails:
        sides.create_contact(email)
    await until(lambda: set(emails) <= set(sides.customer_phones()))
    seconds = time.perf_counter() - started
    calls = sides.api_calls(since)
    return {
        "records": BURST_RECORDS,
        "seconds": round(seconds, 1),
        "records_per_minute": round(BURST_RECORDS / seconds * 60, 1),
        "hubspot_calls": calls["hubspot"],
        "qbo_calls": calls["quickbooks"],
        "hubspot_429": calls["hubspot 429"],
        "qbo_429": calls["quickbooks 429"],
    }


@contextlib.contextmanager
def sqlite_store() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="hsqbo-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'store.db'}"


@contextlib.contextmanager
def postgres_store() -> Iterator[str]:
    """A scratch database on the server HSQBO_POSTGRES_URL names (`make bench` starts a private one), dropped after:
    the sandboxes start empty, so the store must too."""
    server = os.environ.get("HSQBO_POSTGRES_URL")
    if not server:
        raise SystemExit("HSQBO_POSTGRES_URL is not set (a superuser's URL on a Postgres server): run `make bench`")
    database = f"hsqbo_bench_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield urlsplit(server)._replace(path=f"/{database}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as db:
            db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))


async def _run(name: str, store: contextlib.AbstractContextManager[str]) -> BenchmarkResult:
    with store as store_url:
        settings = Settings(store_url=store_url)
        options = StackOptions(
            port=0, hubspot_port=0, qbo_port=0, status_port=0, seed=False,
            sandbox_latency_ms=SANDBOX_LATENCY_MS, sandbox_latency_jitter_ms=SANDBOX_LATENCY_JITTER_MS,
        )  # fmt: skip
        async with running_stack(settings, options, run_connection) as stack:
            sides = Sides(stack)
            lag = await lag_phase(sides)
            burst = await burst_phase(sides)
    rows = [
        {"phase": "lag", "changes": lag["edits"], "p50 s": lag["lag_p50_s"], "p99 s": lag["lag_p99_s"],
         "calls/change": lag["api_calls_per_change"]},
        {"phase": "burst", "changes": burst["records"], "records/min": burst["records_per_minute"],
         "429 hubspot": burst["hubspot_429"], "429 qbo": burst["qbo_429"]},
    ]  # fmt: skip
    return BenchmarkResult(name, rows, {"store": store_url.partition(":")[0], "lag": lag, "burst": burst})


def run() -> BenchmarkResult:
    return run_load(_run("sync", sqlite_store()))


def run_postgres() -> BenchmarkResult:
    """The same with the Postgres store, as several hosts would share it."""
    return run_load(_run("sync-postgres", postgres_store()))

"""The whole sync, end to end, at the API ceilings (issue 13): how long a user's edit takes to show on the other side
beside its floor, how many API calls (and QBO reads) a change costs, how many records a minute sync each way at the
providers' real rate limits (counting every 429 the sandboxes answered), how fast an initial sync of 10,000 records
drains, and how long a live edit waits while it runs.

The stack runs in this process (`services.run.running_stack`: both sandboxes at their real limits, answering each
API call after 120 ± 40 ms, unseeded; the receiver, the worker and the poller; the RabbitMQ node) with default
settings and the store in a scratch database on the Postgres server HSQBO_POSTGRES_URL names, as several hosts would
share it. API calls are counted from the sandboxes' request logs. Each stack starts with the broker's queues empty.

Stack 1 (then torn down):
- **lag**: `LAG_RECORDS` contacts made in HubSpot and as many customers in QBO are synced first; then `LAG_EDITS`
  phone edits, one at a time, alternating sides. A lag runs from the user's edit to the other side holding the new
  value (looked at every 10 ms). Calls per change (`single`) are the requests both sandboxes recorded from the first
  edit to 2 s after the last, over the edits; a QBO read is any GET or query.
- **burst**: `BURST_RECORDS` contacts made in HubSpot and as many customers in QBO at once; calls per change (`burst`)
  are the requests from the first creation until every one has its counterpart (or `BURST_BOUND_SECONDS`) and 2 s
  more, over the records synced.
- **backfill**: `BACKFILL_PER_SIDE` contacts and as many customers already in both accounts (history: no webhooks),
  `BACKFILL_OVERLAP` of them with the same email on both sides (a match, not a creation); `hsqbo poller --backfill`'s
  pass (`run_pass` with `backfill`) queues them and the worker applies them. Records/minute counts every source
  record linked (an overlapping pair counts two) over the time from the pass's start until all are, or until
  `BACKFILL_BOUND_SECONDS` (then the count is what was linked by then). Meanwhile `LIVE_EDITS` phone edits of the
  lag phase's records, one at a time, measure `live_lag_during_backfill_ms`.

Stacks 2 and 3: **throughput**: `THROUGHPUT_RECORDS` contacts made in HubSpot at once (to QBO), then in a new stack as
many customers in QBO (to HubSpot); records/minute is those with a counterpart over the time until all have one, or
until `THROUGHPUT_BOUND_SECONDS` (then the count is what synced by then). A new stack each, so one phase's unfinished
work never runs into the next.

The floor of a change (`e2e_floor_ms`) is its minimal round trips at the injected latency: read the source, write
the target, 2 x 120 ms in either direction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import psycopg
from psycopg import sql

from benchmarks._latest import update_latest
from benchmarks._load import run_load
from benchmarks._processes import rss_kib
from benchmarks._report import BenchmarkResult
from benchmarks._stats import percentile
from hsqbo_sandbox.hubspot._schema import BY_NAME
from services.poller import backfill, run_pass
from services.run import RunningStack, StackOptions, local_connection, running_stack
from shared.broker import (
    APPLY_QUEUE,
    BULK_CHANGES_QUEUE,
    CHANGES_QUEUE,
    DEAD_QUEUE,
    bulk_apply_queue,
)
from shared.config import Settings
from shared.connections import SyncContext
from shared.domain import Kind
from shared.store import LinkStatus
from shared.syncconfig import ConnectionSettings, SyncSettings

LAG_RECORDS = 10
LAG_EDITS = 60  # 30 each way
BURST_RECORDS = 100  # each way
BURST_BOUND_SECONDS = 180.0  # 200 records at the slowest pace seen (about 150/min) take 80 s
THROUGHPUT_RECORDS = 2_000  # each way
THROUGHPUT_BOUND_SECONDS = 150.0
BACKFILL_PER_SIDE = 5_000
BACKFILL_OVERLAP = 1_000  # emails on both sides: 10,000 source records, 9,000 pairs
BACKFILL_BOUND_SECONDS = 240.0
LIVE_EDITS = 20
LOOK_SECONDS = 0.01  # how often a lag is looked at
COUNT_SECONDS = 0.5  # how often a many-record phase counts what synced
SETTLE_SECONDS = 2.0  # after a phase, for its echoes: they are part of its cost
# The sandboxes answer every API call at a real provider's round trip, 120 ± 40 ms, as over the internet.
SANDBOX_LATENCY_MS = 120.0
SANDBOX_LATENCY_JITTER_MS = 40.0
FLOOR_ROUND_TRIPS = 2  # read the source, write the target
WAIT_SECONDS = 120.0  # give up on one edit or one setup step after this long


async def until(condition: Callable[[], bool], *, within: float = WAIT_SECONDS, every: float = LOOK_SECONDS) -> float:
    """Seconds until `condition()` holds, looking every `every` seconds."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > within:
            raise TimeoutError("the stack did not sync in time")
        await asyncio.sleep(every)
    return time.perf_counter() - started


def bench_connection(portal_id: int, realm_id: str) -> ConnectionSettings:
    """The recommended settings, except that every contact syncs (the incumbent waits for a contact's first invoice,
    which these accounts never have), whenever it was made: an initial sync takes the accounts' history."""
    return local_connection(f"bench-{realm_id}", portal_id, realm_id, contacts={"hubspot_to_qbo": {}})


def is_qbo_read(method: str, path: str) -> bool:
    """A metered QBO read (Intuit's CorePlus calls): any GET, and a query however sent; writes and batches are not."""
    return method == "GET" or path.endswith("/query")


class Sides:
    """Both accounts as the sandboxes hold them, a user's edits, and the API calls hsqbo made."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.realm = stack.sandbox.qbo.realms[stack.realm_id]
        self.portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal

    def now(self) -> float:
        return float(self.stack.sandbox.hubspot.clock.now())

    def customer_emails(self) -> set[str]:
        return {
            (record.data.get("PrimaryEmailAddr") or {}).get("Address", "")
            for record in self.realm.records["Customer"].values()
        }

    def contact_emails(self) -> set[str]:
        return {str(record.properties.get("email")) for record in self.portal.live(BY_NAME["contacts"]).values()}

    def customer_id(self, email: str) -> str:
        for record in self.realm.records["Customer"].values():
            if (record.data.get("PrimaryEmailAddr") or {}).get("Address") == email:
                return str(record.data["Id"])
        raise KeyError(email)

    def contact_id(self, email: str) -> str:
        for record in self.portal.live(BY_NAME["contacts"]).values():
            if record.properties.get("email") == email:
                return str(record.id)
        raise KeyError(email)

    def customer_phone(self, customer_id: str) -> str | None:
        phone: str | None = (self.realm.records["Customer"][customer_id].data.get("PrimaryPhone") or {}).get(
            "FreeFormNumber"
        )
        return phone

    def contact_phone(self, contact_id: str) -> str | None:
        phone: str | None = self.portal.get(BY_NAME["contacts"], contact_id).properties.get("phone")
        return phone

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

    def api_calls(self, since: float, until_time: float | None = None) -> collections.Counter[str]:
        """Requests each sandbox recorded in [since, until_time): by provider, by provider and status, and QBO reads."""
        counted: collections.Counter[str] = collections.Counter()
        sandbox = self.stack.sandbox
        for provider, log in (("hubspot", sandbox.hubspot.requests), ("quickbooks", sandbox.qbo.requests)):
            for entry in log.list(since=since):
                if until_time is not None and entry.time >= until_time:
                    continue
                counted[provider] += 1
                counted[f"{provider} {entry.status}"] += 1
                if provider == "quickbooks" and is_qbo_read(entry.method, entry.path):
                    counted["quickbooks reads"] += 1
        return counted


class LinkedPair:
    """A contact and its customer, synced, whose phone the lag phases edit."""

    def __init__(self, sides: Sides, email: str) -> None:
        self.contact_id = sides.contact_id(email)
        self.customer_id = sides.customer_id(email)


async def edit_and_wait(sides: Sides, pair: LinkedPair, phone: str, *, from_hubspot: bool) -> float:
    """One user's edit of `pair`'s phone on one side; seconds until the other side holds it."""
    if from_hubspot:
        sides.edit_contact_phone(pair.contact_id, phone)
        return await until(lambda: sides.customer_phone(pair.customer_id) == phone)
    sides.edit_customer_phone(pair.customer_id, phone)
    return await until(lambda: sides.contact_phone(pair.contact_id) == phone)


def lag_ms(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags)
    return {name: round(percentile(ordered, q) * 1000, 1) for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


def create_both(sides: Sides, contacts: list[str], customers: list[str]) -> None:
    """Contacts made in HubSpot and customers in QBO, with these emails."""
    for email in contacts:
        sides.create_contact(email)
    for email in customers:
        sides.create_customer(email)


async def linked_pairs(sides: Sides) -> list[LinkedPair]:
    """`LAG_RECORDS` contacts made in HubSpot and as many customers in QBO, once synced."""
    from_hubspot = [f"lag-h{n}@bench.test" for n in range(LAG_RECORDS)]
    from_qbo = [f"lag-q{n}@bench.test" for n in range(LAG_RECORDS)]
    create_both(sides, from_hubspot, from_qbo)
    await until(lambda: set(from_hubspot) <= sides.customer_emails() and set(from_qbo) <= sides.contact_emails())
    await asyncio.sleep(SETTLE_SECONDS)  # the creations' echoes and the poller's first look settle
    return [LinkedPair(sides, email) for email in from_hubspot + from_qbo]


async def lag_phase(sides: Sides, pairs: list[LinkedPair]) -> dict[str, Any]:
    since = sides.now()
    lags: dict[str, list[float]] = {"to_qbo": [], "to_hubspot": []}
    for n in range(LAG_EDITS):
        from_hubspot = n % 2 == 0
        lag = await edit_and_wait(sides, pairs[n // 2 % len(pairs)], f"+1 555 {n:06d}", from_hubspot=from_hubspot)
        lags["to_qbo" if from_hubspot else "to_hubspot"].append(lag)
    await asyncio.sleep(SETTLE_SECONDS)
    calls = sides.api_calls(since)
    return {
        "edits": LAG_EDITS,
        "lag_ms": {direction: lag_ms(values) for direction, values in lags.items()},
        "hubspot_calls": calls["hubspot"],
        "qbo_calls": calls["quickbooks"],
        "qbo_reads": calls["quickbooks reads"],
        "api_calls_per_change": round((calls["hubspot"] + calls["quickbooks"]) / LAG_EDITS, 2),
        "qbo_reads_per_change": round(calls["quickbooks reads"] / LAG_EDITS, 2),
    }


async def burst_phase(sides: Sides) -> dict[str, Any]:
    since = sides.now()
    contacts = [f"burst-h{n}@bench.test" for n in range(BURST_RECORDS)]
    customers = [f"burst-q{n}@bench.test" for n in range(BURST_RECORDS)]
    create_both(sides, contacts, customers)

    def synced() -> int:
        return len(set(contacts) & sides.customer_emails()) + len(set(customers) & sides.contact_emails())

    records = 2 * BURST_RECORDS
    done, seconds = await count_until(synced, records, BURST_BOUND_SECONDS)
    await asyncio.sleep(SETTLE_SECONDS)
    calls = sides.api_calls(since)
    return {
        "records": records,
        "synced": done,
        "complete": done == records,  # else the calls are over the records synced, their work in flight included
        "seconds": round(seconds, 1),
        "hubspot_calls": calls["hubspot"],
        "qbo_calls": calls["quickbooks"],
        "qbo_reads": calls["quickbooks reads"],
        "api_calls_per_change": round((calls["hubspot"] + calls["quickbooks"]) / max(done, 1), 2),
        "qbo_reads_per_change": round(calls["quickbooks reads"] / max(done, 1), 2),
    }


async def count_until(count: Callable[[], int], target: int, bound: float) -> tuple[int, float]:
    """Count every COUNT_SECONDS until `count()` reaches `target` or `bound` seconds pass: (the last count, seconds
    until it reached the target or the bound)."""
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await until(lambda: count() >= target, within=bound, every=COUNT_SECONDS)
    return count(), time.perf_counter() - started


async def throughput_phase(sides: Sides, *, to_qbo: bool) -> dict[str, Any]:
    since = sides.now()
    emails = [f"tp-{'h' if to_qbo else 'q'}{n}@bench.test" for n in range(THROUGHPUT_RECORDS)]
    started = time.perf_counter()
    for email in emails:
        (sides.create_contact if to_qbo else sides.create_customer)(email)
    other_side = sides.customer_emails if to_qbo else sides.contact_emails
    wanted = set(emails)
    done, _ = await count_until(lambda: len(wanted & other_side()), len(wanted), THROUGHPUT_BOUND_SECONDS)
    seconds = time.perf_counter() - started
    calls = sides.api_calls(since)
    return {"records": THROUGHPUT_RECORDS, **pace(done, THROUGHPUT_RECORDS, seconds, calls)}


def pace(done: int, records: int, seconds: float, calls: dict[str, int]) -> dict[str, Any]:
    """How far a bounded phase got, how fast, and the API calls it cost."""
    return {
        "synced": done,
        "complete": done == records,
        "seconds": round(seconds, 1),
        "records_per_min": round(done / seconds * 60, 1),
        "hubspot_calls": calls["hubspot"],
        "qbo_calls": calls["quickbooks"],
        "hubspot_429": calls["hubspot 429"],
        "qbo_429": calls["quickbooks 429"],
    }


class Backfill:
    """The accounts' history for an initial sync: which source records it holds, and how many of them are linked."""

    def __init__(self, sides: Sides) -> None:
        hubspot = sides.stack.sandbox.hubspot
        qbo = sides.stack.sandbox.qbo
        # Contacts bf-0 .. bf-4999 in HubSpot; customers bf-4000 .. bf-8999 in QBO: 1,000 emails on both sides.
        first_qbo = BACKFILL_PER_SIDE - BACKFILL_OVERLAP
        contact_emails = [f"bf-{n}@bench.test" for n in range(BACKFILL_PER_SIDE)]
        customer_emails = [f"bf-{n}@bench.test" for n in range(first_qbo, first_qbo + BACKFILL_PER_SIDE)]
        self.contact_ids = set(hubspot.import_history(sides.stack.portal_id, "contacts", (
            {"email": email, "firstname": "Backfill", "lastname": email.split("@")[0]} for email in contact_emails
        )))  # fmt: skip
        self.customer_ids = set(qbo.import_history(sides.stack.realm_id, "Customer", (
            {"DisplayName": email, "GivenName": "Backfill", "PrimaryEmailAddr": {"Address": email}}
            for email in customer_emails
        )))  # fmt: skip
        self.records = len(self.contact_ids) + len(self.customer_ids)
        self.pairs = len(set(contact_emails) | set(customer_emails))

    def synced(self, links: Iterable[tuple[str | None, str | None]]) -> int:
        """Source records linked: a link counts each of its two records that is one of ours (a matched pair: two)."""
        return sum((hubspot_id in self.contact_ids) + (qbo_id in self.customer_ids) for hubspot_id, qbo_id in links)


async def synced_links(sides: Sides) -> list[tuple[str | None, str | None]]:
    links = await sides.stack.store.list_links(sides.stack.connection.name, Kind.CONTACT, LinkStatus.SYNCED,
                                               limit=1_000_000)  # fmt: skip
    return [(link.hubspot_id, link.qbo_id) for link in links]


async def backfill_phase(sides: Sides, pairs: list[LinkedPair]) -> dict[str, Any]:
    history = Backfill(sides)
    store, connection = sides.stack.store, sides.stack.connection.name
    links_before = (await store.count_links_by_status(connection)).get((Kind.CONTACT, LinkStatus.SYNCED), 0)
    since = sides.now()
    started = time.perf_counter()

    async def one_pass(ctx: SyncContext, publish: Any) -> Any:
        return await backfill(ctx, publish, since=None)

    # `hsqbo poller --backfill`'s pass, with its own store, clients and broker connection, as that process has.
    queueing = asyncio.create_task(
        run_pass(sides.stack.settings, SyncSettings(connection=[sides.stack.connection]), one_pass, dry_run=False)
    )
    live_lags: list[float] = []

    async def live_edits() -> None:
        await until(lambda: queueing.done() or time.perf_counter() - started > 15.0, within=60.0, every=0.1)
        for n in range(LIVE_EDITS):
            from_hubspot = n % 2 == 0
            pair = pairs[n % len(pairs)]
            live_lags.append(await edit_and_wait(sides, pair, f"+1 556 {n:06d}", from_hubspot=from_hubspot))
            await asyncio.sleep(1.0)

    editing = asyncio.create_task(live_edits())
    done = 0
    while time.perf_counter() - started < BACKFILL_BOUND_SECONDS:
        await asyncio.sleep(COUNT_SECONDS * 4)
        linked = (await store.count_links_by_status(connection)).get((Kind.CONTACT, LinkStatus.SYNCED), 0)
        if linked - links_before >= history.pairs:
            break
    seconds = time.perf_counter() - started
    done = history.synced(await synced_links(sides))
    queued = queueing.done() and not queueing.cancelled() and queueing.exception() is None
    results = queueing.result() if queued else None
    queueing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await queueing
    edits_done = editing.done()
    editing.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await editing
    calls = sides.api_calls(since)
    return {
        "records": history.records,
        "pairs": history.pairs,
        "overlapping_emails": BACKFILL_OVERLAP,
        **pace(done, history.records, seconds, calls),
        "queueing_finished": queued,
        "queued": _queued(results),
        "live_edits": len(live_lags),
        "live_edits_all_seen": edits_done and len(live_lags) == LIVE_EDITS,
        "live_lag_ms": lag_ms(live_lags) if live_lags else None,
    }


async def purge_queues(rabbitmq_url: str, connection: str) -> int:
    """Empty the queues a stack's connection uses (what an earlier stack left unfinished); how many messages went."""
    purged = 0
    async with await aio_pika.connect(rabbitmq_url) as amqp:
        channel = await amqp.channel()
        for name in (CHANGES_QUEUE, BULK_CHANGES_QUEUE, APPLY_QUEUE, DEAD_QUEUE, bulk_apply_queue(connection)):
            try:
                queue = await channel.get_queue(name, ensure=True)
            except aio_pika.exceptions.ChannelClosed:
                channel = await amqp.channel()  # a queue this node never had
                continue
            purged += int((await queue.purge()).message_count or 0)
    return purged


@contextlib.contextmanager
def postgres_store() -> Iterator[str]:
    """A scratch database on the server HSQBO_POSTGRES_URL names (`make bench` starts a private one), dropped after:
    the sandboxes start empty, so the store must too."""
    server = os.environ.get("HSQBO_POSTGRES_URL")
    if not server:
        raise SystemExit("HSQBO_POSTGRES_URL is not set (a superuser's URL on a Postgres server): run `make bench`")
    database = f"hsqbo_bench_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        yield urlsplit(server)._replace(path=f"/{database}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as db:
            db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))


@contextlib.asynccontextmanager
async def bench_stack() -> AsyncIterator[Sides]:
    """A new stack on a new database, with the broker's queues emptied first."""
    with postgres_store() as store_url:
        settings = Settings(store_url=store_url)
        options = StackOptions(
            port=0, hubspot_port=0, qbo_port=0, status_port=0, seed=False,
            sandbox_latency_ms=SANDBOX_LATENCY_MS, sandbox_latency_jitter_ms=SANDBOX_LATENCY_JITTER_MS,
        )  # fmt: skip

        def connection(portal_id: int, realm_id: str) -> ConnectionSettings:
            return bench_connection(portal_id, realm_id)

        async with running_stack(settings, options, connection) as stack:
            await purge_queues(settings.rabbitmq_url, stack.connection.name)
            yield Sides(stack)


def stack_rss_mb() -> float:
    return round(rss_kib(os.getpid()) / 1024, 1)


def headline(lag: dict[str, Any], burst: dict[str, Any], throughput: dict[str, dict[str, Any]],
             backfilled: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """latest.json's figures from the phases' details (issue 13's names)."""
    floor = FLOOR_ROUND_TRIPS * SANDBOX_LATENCY_MS
    live = backfilled["live_lag_ms"]
    return {
        "e2e_lag_ms": lag["lag_ms"],
        "e2e_floor_ms": {"to_qbo": floor, "to_hubspot": floor},
        "api_calls_per_change": {
            "single": lag["api_calls_per_change"],
            "burst": burst["api_calls_per_change"],
            "minimum": FLOOR_ROUND_TRIPS,
        },
        "qbo_reads_per_change": {"single": lag["qbo_reads_per_change"], "burst": burst["qbo_reads_per_change"]},
        "throughput": {
            "to_qbo_records_per_min": throughput["to_qbo"]["records_per_min"],
            "to_hubspot_records_per_min": throughput["to_hubspot"]["records_per_min"],
            "qbo_batch_ceiling_per_min": 1200,
            "http_429": sum(phase["hubspot_429"] + phase["qbo_429"] for phase in throughput.values()),
        },
        "backfill": {"records": backfilled["records"], "records_per_min": backfilled["records_per_min"]},
        "live_lag_during_backfill_ms": {"p95": live["p95"] if live and backfilled["live_edits_all_seen"] else None},
    }


async def _run() -> BenchmarkResult:
    started = time.perf_counter()
    async with bench_stack() as sides:
        pairs = await linked_pairs(sides)
        lag = await lag_phase(sides, pairs)
        burst = await burst_phase(sides)
        backfilled = await backfill_phase(sides, pairs)
        rss_mb = stack_rss_mb()
    throughput: dict[str, dict[str, Any]] = {}
    for direction in ("to_qbo", "to_hubspot"):
        async with bench_stack() as sides:
            throughput[direction] = await throughput_phase(sides, to_qbo=direction == "to_qbo")
    rss_mb = max(rss_mb, stack_rss_mb())
    figures = headline(lag, burst, throughput, backfilled)
    update_latest({**figures, "rss_mb": {"sync_stack": rss_mb}})
    rows = [
        {"phase": "lag to QBO", "records": LAG_EDITS // 2, **_ms(lag["lag_ms"]["to_qbo"])},
        {"phase": "lag to HubSpot", "records": LAG_EDITS // 2, **_ms(lag["lag_ms"]["to_hubspot"]),
         "calls/change": lag["api_calls_per_change"], "QBO reads/change": lag["qbo_reads_per_change"]},
        {"phase": "burst", "records": burst["records"], "calls/change": burst["api_calls_per_change"],
         "QBO reads/change": burst["qbo_reads_per_change"]},
        *({"phase": f"throughput {direction.replace('_', ' ')}", "records": phase["synced"],
           "records/min": phase["records_per_min"], "429": phase["hubspot_429"] + phase["qbo_429"]}
          for direction, phase in throughput.items()),
        {"phase": "backfill", "records": backfilled["synced"], "records/min": backfilled["records_per_min"],
         "429": backfilled["hubspot_429"] + backfilled["qbo_429"]},
        {"phase": "live during backfill", "records": backfilled["live_edits"],
         **(_ms(backfilled["live_lag_ms"]) if backfilled["live_lag_ms"] else {})},
    ]  # fmt: skip
    details = {
        "store": "postgres",
        "sandbox_latency_ms": [SANDBOX_LATENCY_MS, SANDBOX_LATENCY_JITTER_MS],
        "lag": lag,
        "burst": burst,
        "throughput": throughput,
        "backfill": backfilled,
        "rss_mb": rss_mb,
        "seconds": round(time.perf_counter() - started, 1),
        "headline": figures,
    }
    return BenchmarkResult("sync", rows, details)


def _queued(results: dict[str, Any] | None) -> int | str | None:
    """How many records the backfill pass queued (or why it skipped the connection)."""
    if not results:
        return None
    tallies = next(iter(results.values()))
    return sum(tally.queued for tally in tallies) if isinstance(tallies, list) else str(tallies)


def _ms(lags: dict[str, float]) -> dict[str, float]:
    return {"p50 ms": lags["p50"], "p95 ms": lags["p95"], "p99 ms": lags["p99"]}


def run() -> BenchmarkResult:
    return run_load(_run())

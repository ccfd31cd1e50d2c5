"""The chaos soak (issue 10's acceptance): random creates, edits, deletes and merges on both sides of two connections
through the sandboxes, synced by worker processes on a Postgres store while faults land, then judged by the checker.

`SoakOptions` says how much of everything; `fault_schedule` (pure) spreads the disruptive faults over the run; `Soak`
carries a run out on a `Stack` whose worker and poller run as processes:

- all along: `webhook_drop_rate` of the webhook batches are lost (the poller and its reconciliation must find those
  changes), `error_rate` of API requests answered 5xx, API latency so that kills land mid-write;
- at scheduled changes: a worker SIGKILLed and started again, a full broker restart, a 429 storm from both APIs for
  `storm_seconds`, the store's Postgres server stopped for `outage_seconds` then started;
- broken records, the first changes of the run (a record's retries then overlap the rest of it): a QBO customer
  created that QBO then answers with a 5xx every time it is read (`broken_paths`), until the soak mends it at the end.
  No retry can apply it: its changes must be dead-lettered, with the worker's history, and nothing else.

Then the faults end (broken records stay broken), the stack settles, the poller gets the time to find what webhooks
missed, and every change is classified (`checker.classify`, dead letters with their history;
`checker.dead_letter_problems`: exactly the broken records' changes dead-lettered, each letter explained). The broken
records are mended, the dead letters replayed, the stack settles again, every change is classified once more and
reconciliation compares every linked pair: both books must agree.
`SoakReport.figures()` is what `make soak` writes to `benchmarks/results/soak.json`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import psycopg

from services.poller import reconcile
from shared.broker import CHANGES_QUEUE, connected_broker
from shared.clients import AiohttpTransport
from shared.connections import ContextFactory
from shared.deadletters import DeadLetter, LetterFilter, open_dead_letters
from shared.domain import Provider
from tests.conftest import REPO, Broker
from tests.integration.checker import (
    Outcome,
    Verdict,
    Workload,
    classify,
    dead_letter_problems,
    explained,
    history,
)
from tests.integration.conftest import Stack
from tests.integration.test_faults import API_LATENCY_MS, raise_limits
from tests.integration.test_worker_crash import start_worker, worker_environment

POSTGRES_NODE = REPO / "deploy/postgres/node"
FAULT_KINDS = ("worker_kill", "broker_restart", "throttle_storm", "store_outage", "broken_record")
EARLY_KINDS = ("broken_record",)  # the first changes of the run: their retries run alongside the rest of it
STORM_MAX_SECONDS = 30.0
EXAMPLES = 10  # lost or duplicated changes per connection whose history the report keeps
LETTERS_SHOWN = 20  # dead letters whose history the figures keep


@dataclasses.dataclass(frozen=True, slots=True)
class SoakOptions:
    changes: int = 300  # across all connections
    seed: int = 10
    workers: int = 3
    rate: float = 20.0  # changes a second the users make
    create_share: float = 0.15
    delete_share: float = 0.04
    merge_share: float = 0.03
    faults: tuple[tuple[str, int], ...] = (  # (kind, how many times)
        ("worker_kill", 1), ("broker_restart", 1), ("throttle_storm", 1), ("store_outage", 1), ("broken_record", 1),
    )  # fmt: skip
    webhook_drop_rate: float = 0.3
    error_rate: float = 0.1
    storm_seconds: float = 3.0
    outage_seconds: float = 30.0
    poll_seconds: float = 1.0
    # A broken record is found again (and dead-lettered again) by every poll that looks back as far as its change.
    poll_overlap_seconds: float = 30.0
    settle_seconds: float = 600.0  # how long the stack may take to settle after the last change


def fault_schedule(options: SoakOptions, rng: random.Random) -> dict[int, str]:
    """Which fault lands after which change: distinct changes between the first and the last tenth of the run, the
    kinds interleaved in a random order; the early kinds (broken records) at the first changes of the run."""
    kinds = [kind for kind, times in options.faults for _ in range(times) if kind not in EARLY_KINDS]
    early = [kind for kind, times in options.faults for _ in range(times) if kind in EARLY_KINDS]
    rng.shuffle(kinds)
    first, last = max(options.changes // 10, len(early)), options.changes - options.changes // 10
    if last - first < len(kinds):
        raise ValueError(f"{len(kinds)} faults do not fit in {options.changes} changes")
    spread = sorted(rng.sample(range(first, last), len(kinds)))
    return dict(enumerate(early)) | dict(zip(spread, kinds, strict=True))


class PostgresNode:
    """The soak's own Postgres server (`deploy/postgres/node` on its own port), which the store outage stops."""

    def __init__(self, port: int) -> None:
        self.port = port

    def run(self, action: str) -> None:
        env = {"HSQBO_POSTGRES_PORT": str(self.port), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        subprocess.run([str(POSTGRES_NODE), action], check=True, env=env, capture_output=True)

    def running(self) -> bool:
        env = {"HSQBO_POSTGRES_PORT": str(self.port), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        return subprocess.run([str(POSTGRES_NODE), "status"], env=env, capture_output=True).returncode == 0


class Peaks:
    """The peak resident memory of each process, by role ("worker 1", "poller"), sampled while the soak runs (a
    killed worker's successor keeps its slot's role)."""

    def __init__(self) -> None:
        self.kib: dict[str, int] = collections.defaultdict(int)

    def sample(self, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        for role, process in processes.items():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):  # the kernel's own peak: nothing between samples is missed
                        self.kib[role] = max(self.kib[role], int(line.split()[1]))

    def mb(self) -> dict[str, float]:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {role: round(kib / 1024, 1) for role, kib in {**self.kib, "sandboxes+receiver": own}.items()}


@dataclasses.dataclass(slots=True)
class SoakReport:
    options: SoakOptions
    changes: int = 0
    faults: dict[str, int] = dataclasses.field(default_factory=dict)
    verdict: Verdict | None = None  # after settling, before the dead letters are replayed
    letters: list[DeadLetter] = dataclasses.field(default_factory=list)
    dead_letter_problems: list[str] = dataclasses.field(default_factory=list)  # see checker.dead_letter_problems
    final: Verdict | None = None  # after the replay
    reconciled: dict[str, dict[str, dict[str, int]]] = dataclasses.field(default_factory=dict)  # connection: kinds
    seconds: float = 0.0
    max_rss_mb: dict[str, float] = dataclasses.field(default_factory=dict)
    process_restarts: int = 0  # processes that exited (while the store or broker was down) and were started again
    histories: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # of lost and duplicated changes
    store_bytes: dict[str, int] = dataclasses.field(default_factory=dict)

    def apart(self) -> int:
        """Linked pairs reconciliation found drifted or missing."""
        return sum(c["drifted"] + c["missing"] for kinds in self.reconciled.values() for c in kinds.values())

    def figures(self) -> dict[str, Any]:
        assert self.verdict is not None
        assert self.final is not None
        counts = self.verdict.counts()
        return {
            "changes": self.changes,
            "faults": self.faults,
            "lost": counts[Outcome.LOST],
            "duplicated": counts[Outcome.DUPLICATED],
            "dead_letters": len(self.letters),
            "dead_letters_unexplained": sum(not explained(letter) for letter in self.letters),
            "dead_lettered_changes": counts[Outcome.DEAD_LETTERED],
            "dead_letter_problems": len(self.dead_letter_problems),
            "dead_letter_history": [_history(letter) for letter in self.letters[:LETTERS_SHOWN]],
            "applied_once": counts[Outcome.APPLIED_ONCE],
            "after_replay": self.final.counts(),
            "pairs_apart_after": self.apart(),
            "process_restarts": self.process_restarts,
            "seconds": round(self.seconds, 1),
            "max_rss_mb": self.max_rss_mb,
            "store_bytes": self.store_bytes,
            "options": {
                **{k: v for k, v in dataclasses.asdict(self.options).items() if k != "faults"},
                "scheduled_faults": dict(self.options.faults),
            },
        }


def _history(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter's history, as the figures keep it (no payload)."""
    fields = ("connection", "kind", "side", "object_id", "attempts", "error_category", "error_message",
              "first_failed_at", "last_failed_at", "source_queue")  # fmt: skip
    return {name: getattr(letter, name) for name in fields}


class Soak:
    def __init__(
        self, stack: Stack, broker: Broker, postgres: PostgresNode, store_url: str, tmp_path: Path,
        started: list[subprocess.Popen[bytes]], options: SoakOptions,
    ) -> None:  # fmt: skip
        self.stack = stack
        self.broker = broker
        self.postgres = postgres
        self.store_url = store_url
        self.started = started
        self.options = options
        self.rng = random.Random(options.seed)
        self.workloads = [
            Workload(stack.connection(c.name), random.Random(options.seed + n), tag=f"soak{n}")
            for n, c in enumerate(stack.sync.connection)
        ]
        # Client-side limits off (a QBO 429 pauses the realm for Intuit's 60 s, which no setting compresses: the
        # storm is about the worker's own backoff); attempts enough that a 10 % error rate never exhausts them.
        self.env = worker_environment(
            stack, tmp_path, lease_seconds=10.0, sweep_seconds=1.0, api_timeout_seconds=5.0, api_rate_limits=False,
            max_attempts=12, poll_seconds=options.poll_seconds, missed_webhook_grace_seconds=2.0,
            poll_overlap_seconds=options.poll_overlap_seconds, reconcile_seconds=10.0,
        )  # fmt: skip
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.faults: collections.Counter[str] = collections.Counter()
        self.restarts = 0  # processes the supervisor started again after they exited
        self.peaks = Peaks()
        self.histories: list[dict[str, Any]] = []  # of lost and duplicated changes, for the report
        self.broken: dict[str, set[tuple[Provider, str]]] = collections.defaultdict(set)  # by connection
        self.broken_paths: tuple[str, ...] = ()  # the QBO API paths answered with a 5xx, until mended
        self.verdicts: dict[str, Verdict] = {}  # the last judgement's, by connection

    # --- processes ------------------------------------------------------------------------------------------------

    def start(self, role: str) -> None:
        self.processes[role] = start_worker(self.env, self.started, "poller" if role == "poller" else "worker")

    async def supervise(self) -> None:
        """What Kubernetes would do: a process that exited (a worker cannot start while the store or the broker is
        down: it says so and exits) is started again, a second later; and the memory peaks are sampled."""
        while True:
            self.peaks.sample(self.processes)
            for role, process in list(self.processes.items()):
                if process.poll() is not None:
                    self.restarts += 1
                    self.start(role)
            await asyncio.sleep(1.0)

    async def workers_consuming(self) -> None:
        """Until every worker consumes the changes queue: faults land on a running system."""
        deadline = time.monotonic() + 120
        async with await aio_pika.connect(self.stack.settings.rabbitmq_url) as connection:
            while True:
                channel = await connection.channel()
                with contextlib.suppress(aiormq.exceptions.ChannelNotFoundEntity):
                    queue = await channel.declare_queue(CHANGES_QUEUE, passive=True)
                    if (queue.declaration_result.consumer_count or 0) >= self.options.workers:
                        return
                assert time.monotonic() < deadline, "the workers never started consuming"
                await asyncio.sleep(0.2)

    # --- faults -----------------------------------------------------------------------------------------------------

    async def worker_kill(self) -> None:
        role = f"worker {self.rng.randrange(self.options.workers) + 1}"
        self.peaks.sample(self.processes)
        self.processes[role].send_signal(signal.SIGKILL)
        self.processes[role].wait(10)  # at once, and no await before its successor starts: not the supervisor's
        self.start(role)

    async def broker_restart(self) -> None:
        await asyncio.to_thread(self.broker.restart)

    async def throttle_storm(self) -> None:
        """Both APIs answer 429 for `storm_seconds`, and on until each has answered one (bounded: a storm while
        the workers are down for the store is no storm)."""
        sandboxes = (self.stack.sandbox.hubspot, self.stack.sandbox.qbo)
        before = [sandbox.requests.count(status=429) for sandbox in sandboxes]
        ends = time.monotonic() + STORM_MAX_SECONDS
        seconds = self.options.storm_seconds
        while True:
            for sandbox in sandboxes:
                sandbox.faults.update(throttle_until=self.stack.sandbox.clock.now() + seconds)
            await asyncio.sleep(seconds)
            answered = [sandbox.requests.count(status=429) for sandbox in sandboxes]
            if all(now > then for now, then in zip(answered, before, strict=True)) or time.monotonic() > ends:
                return
            seconds = 0.5

    async def store_outage(self) -> None:
        await asyncio.to_thread(self.postgres.run, "stop")
        await asyncio.sleep(self.options.outage_seconds)
        await asyncio.to_thread(self.postgres.run, "start")

    def break_record(self, workload: Workload, connection: str) -> None:
        """A new QBO customer that QBO answers with a 5xx every time it is read, until `mend`."""
        change = workload.create(Provider.QUICKBOOKS, kept=False)  # no later change: its only change is this one
        self.broken[connection].add((change.side, change.record_id))
        self.broken_paths += (f"/company/{workload.stack.realm_id}/customer/{change.record_id}",)
        self.stack.sandbox.qbo.faults.update(broken_paths=self.broken_paths)

    def mend(self) -> None:
        self.broken_paths = ()
        self.stack.sandbox.qbo.faults.update(broken_paths=())

    def fault(self, kind: str) -> Callable[[], Coroutine[Any, Any, None]]:
        faults: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "worker_kill": self.worker_kill, "broker_restart": self.broker_restart,
            "throttle_storm": self.throttle_storm, "store_outage": self.store_outage,
        }  # fmt: skip
        return faults[kind]

    # --- the run ------------------------------------------------------------------------------------------------------

    async def store_bytes(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.store_url) as db:
            row = await (await db.execute("SELECT pg_database_size(current_database())")).fetchone()
        assert row is not None
        return int(row[0])

    async def inject(self) -> None:
        """The users' changes at `rate` a second, round-robin over the connections, faults landing as scheduled
        (each in the background, one of a kind at a time: the users do not wait for the broker to come back)."""
        options = self.options
        schedule = fault_schedule(options, self.rng)
        running: dict[str, asyncio.Task[None]] = {}
        started = time.monotonic()
        for n in range(options.changes):
            workload = self.workloads[n % len(self.workloads)]
            kind = schedule.get(n)
            if kind == "broken_record":
                self.break_record(workload, self.stack.sync.connection[n % len(self.workloads)].name)
                self.faults[kind] += 1
                kind = None
            else:
                workload.step(options.create_share, options.delete_share, options.merge_share)
            if kind is not None:
                if kind in running:
                    await running[kind]
                running[kind] = asyncio.create_task(self.fault(kind)())
                self.faults[kind] += 1
            ahead = started + (n + 1) / options.rate - time.monotonic()
            await asyncio.sleep(max(ahead, 0.0))
        await asyncio.gather(*running.values())

    async def run(self) -> SoakReport:
        options = self.options
        report = SoakReport(options)
        report.store_bytes["start"] = await self.store_bytes()
        for sandbox in (self.stack.sandbox.hubspot, self.stack.sandbox.qbo):
            sandbox.faults.update(
                latency_ms=API_LATENCY_MS, error_rate=options.error_rate, webhook_drop_rate=options.webhook_drop_rate
            )
        raise_limits(self.stack)
        started = time.monotonic()
        try:
            self.start("poller")
            await self.poller_watching()
            for n in range(options.workers):
                self.start(f"worker {n + 1}")
            await self.workers_consuming()
            supervising = asyncio.create_task(self.supervise())
            try:
                await self.inject()
                await self.quiesce()
            finally:
                supervising.cancel()
                self.peaks.sample(self.processes)
            report.changes = sum(len(workload.changes) for workload in self.workloads)
            report.faults = self.fault_counts()
            report.process_restarts = self.restarts
            report.verdict, report.letters = await self.judge()
            report.dead_letter_problems = self.dead_letter_problems(report.letters)
            self.mend()
            if report.letters:
                async with (
                    connected_broker(self.stack.settings) as broker,
                    open_dead_letters(broker, self.stack.store) as letters,
                ):
                    await letters.replay(LetterFilter())
                # The faults are off by now: no webhook of the replay's writes is lost, so settling is enough.
                await self.stack.settle(within=self.options.settle_seconds)
            report.histories = list(self.histories)
            report.final, _ = await self.judge()
            report.reconciled = await self.reconcile()
        finally:
            await asyncio.to_thread(self.stop_processes)
        report.seconds = time.monotonic() - started
        report.max_rss_mb = self.peaks.mb()
        report.store_bytes["end"] = await self.store_bytes()
        return report

    def stop_processes(self, within: float = 20.0) -> None:
        """Every process this soak started, asked to stop, then killed if it has not within `within` seconds (a
        worker whose broker vanished may not stop on its own): none outlives the run."""
        alive = [process for process in self.started if process.poll() is None]
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + within
        for process in alive:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    async def poller_watching(self) -> None:
        """Until the poller's first poll of every connection set its cursors: changes from then on are its to find."""
        deadline = time.monotonic() + 60
        for connection in self.stack.sync.connection:
            while await self.stack.store.get_cursor(connection.name, "quickbooks:Customer") is None:
                assert time.monotonic() < deadline, "the poller never polled"
                await asyncio.sleep(0.2)

    async def quiesce(self) -> None:
        """Faults off (broken records stay broken), then settled twice, a poll and reconciliation apart: what webhooks
        lost, the poller finds."""
        for sandbox in (self.stack.sandbox.hubspot, self.stack.sandbox.qbo):
            sandbox.faults.reset()
        self.stack.sandbox.qbo.faults.update(broken_paths=self.broken_paths)  # until mended
        await self.stack.settle(within=self.options.settle_seconds)
        await asyncio.sleep(float(self.env["HSQBO_RECONCILE_SECONDS"]) + 4 * self.options.poll_seconds + 2.0)
        await self.stack.settle(within=self.options.settle_seconds)

    def fault_counts(self) -> dict[str, int]:
        sandboxes = (self.stack.sandbox.hubspot, self.stack.sandbox.qbo)
        logged = [entry.status for sandbox in sandboxes for entry in sandbox.requests.list()]
        return {
            **{kind: self.faults[kind] for kind in FAULT_KINDS},
            "store_outage_seconds": int(self.faults["store_outage"] * self.options.outage_seconds),
            "webhook_events_dropped": sum(sandbox.webhooks.counters.dropped for sandbox in sandboxes),
            "api_5xx": sum(1 for status in logged if status >= 500),
            "api_429": sum(1 for status in logged if status == 429),
        }

    async def judge(self) -> tuple[Verdict, list[DeadLetter]]:
        """Every change classified; the store's history of the first few lost or duplicated ones kept."""
        async with connected_broker(self.stack.settings) as broker, open_dead_letters(broker) as dead:
            letters = await dead.list_letters()
        outcomes = []
        unexpected: list[str] = []
        by_record = {}
        for workload, connection in zip(self.workloads, self.stack.sync.connection, strict=True):
            named = [letter for letter in letters if letter.connection in (None, connection.name)]
            verdict = classify(workload.stack, workload.changes, named)
            self.verdicts[connection.name] = verdict
            outcomes += verdict.outcomes
            unexpected += verdict.unexpected
            by_record.update(verdict.letters)
            for outcome in (Outcome.LOST, Outcome.DUPLICATED):
                for change in verdict.examples(outcome, EXAMPLES):
                    self.histories.append(await history(workload.stack, change, connection=connection.name))
        return Verdict(outcomes, unexpected, by_record), letters

    def dead_letter_problems(self, letters: list[DeadLetter]) -> list[str]:
        """`checker.dead_letter_problems` of every connection, by its last verdict: its broken records' changes,
        and nothing else, dead-lettered with their history."""
        return [
            problem for name, verdict in self.verdicts.items()
            for problem in dead_letter_problems(verdict, letters, self.broken[name], connection=name)
        ]  # fmt: skip

    async def reconcile(self) -> dict[str, dict[str, dict[str, int]]]:
        """Every linked pair of every connection compared (a dry run: nothing queued)."""
        settings = self.stack.settings
        found = {}
        async with AiohttpTransport.from_settings(settings) as transport:
            contexts = ContextFactory(settings, self.stack.store, transport)
            for connection in self.stack.sync.connection:
                ctx = await contexts.get(connection)
                report = await reconcile(ctx, None, now=time.time())
                found[connection.name] = report.objects
        return found

"""The chaos soak (`soak.py`): 3 worker processes and a poller process, two connections, a Postgres store of its own
that the soak stops and starts, every fault of issue 10's acceptance at least once. `make test` runs a short soak
(150 changes, one of each fault, a broken record); `make soak` runs the long one (HSQBO_SOAK_CHANGES=10000,
several of each fault, a 30 s store outage) and writes its figures to `benchmarks/results/soak.json`.

The soak's Postgres server is started here with `deploy/postgres/node` on its own port (HSQBO_SOAK_POSTGRES_PORT,
5448), never the suite's shared server, since the outage stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from benchmarks._report import BenchmarkResult, write_result
from tests.conftest import Broker
from tests.integration.checker import Outcome, explained
from tests.integration.conftest import Stack
from tests.integration.soak import PostgresNode, Soak, SoakOptions
from tests.integration.test_worker_crash import worker_processes

pytestmark = pytest.mark.integration

__all__ = ["worker_processes"]  # a fixture, used by name

SOAK_CHANGES = int(os.environ.get("HSQBO_SOAK_CHANGES", "0"))  # 0: the short soak
SOAK_SEED = int(os.environ.get("HSQBO_SOAK_SEED", "10"))
DATABASE = "hsqbo_soak"
# Polls looking 10 s back: a broken record's retries (about 10 s) then end once, not three times (the sandboxes' search
# has no index lag for a longer overlap to cover).
SHORT = SoakOptions(changes=150, seed=SOAK_SEED, outage_seconds=3.0, poll_overlap_seconds=10.0)
LONG = SoakOptions(
    changes=SOAK_CHANGES, seed=SOAK_SEED, outage_seconds=30.0, settle_seconds=1800.0,
    faults=(
        ("worker_kill", 12), ("broker_restart", 3), ("throttle_storm", 6), ("store_outage", 1), ("broken_record", 4),
    ),
)  # fmt: skip


@pytest.fixture
def in_process_worker() -> bool:
    return False


@pytest.fixture
def connection_names() -> tuple[str, ...]:
    return ("acme", "globex")


@pytest.fixture(scope="module")
def soak_postgres() -> Iterator[PostgresNode]:
    """The soak's own Postgres server, started if it is not running (and then stopped after)."""
    node = PostgresNode(int(os.environ.get("HSQBO_SOAK_POSTGRES_PORT", "5448")))
    already = node.running()
    if not already:
        try:
            node.run("start")
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            message = f"the soak's Postgres server does not start on port {node.port}: {exc}"
            if os.environ.get("HSQBO_REQUIRE_POSTGRES") == "1":
                pytest.fail(message)
            pytest.skip(message)
    yield node
    if not already:
        node.run("stop")


@pytest.fixture
def store_url(soak_postgres: PostgresNode) -> Iterator[str]:
    """The database `hsqbo_soak` on the soak's server, made anew; kept after the run, to be looked into."""
    server = f"postgresql://postgres@127.0.0.1:{soak_postgres.port}/postgres"
    with psycopg.connect(server, autocommit=True) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    yield f"postgresql://postgres@127.0.0.1:{soak_postgres.port}/{DATABASE}"
    soak_postgres.run("start")  # a failed run may have left it stopped mid-outage


async def test_chaos_soak_loses_and_duplicates_no_change_and_both_books_agree_after(
    stack: Stack, broker: Broker, soak_postgres: PostgresNode, store_url: str, tmp_path: Path,
    worker_processes: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    options = LONG if SOAK_CHANGES else SHORT
    report = await Soak(stack, broker, soak_postgres, store_url, tmp_path, worker_processes, options).run()
    figures = report.figures()
    print(json.dumps(figures, indent=2))
    for lost_or_duplicated in report.histories:
        print(lost_or_duplicated)
    if SOAK_CHANGES:
        rows = [{key: figures[key] for key in ("changes", "lost", "duplicated", "dead_letters", "seconds")}]
        print(f"-> {write_result(BenchmarkResult('soak', rows, figures))}")

    assert report.verdict is not None
    assert report.final is not None
    problems: dict[str, Any] = {
        str(outcome): report.verdict.examples(outcome) for outcome in (Outcome.LOST, Outcome.DUPLICATED)
    }
    problems["histories"] = report.histories
    problems["unexplained dead letters"] = [letter.to_dict() for letter in report.letters if not explained(letter)][:5]
    problems["dead letters"] = report.dead_letter_problems[:10]
    assert figures["changes"] == options.changes
    assert all(figures["faults"][kind] == times for kind, times in options.faults), figures["faults"]
    assert figures["faults"]["webhook_events_dropped"] > 0
    assert figures["faults"]["api_5xx"] > 0
    assert figures["faults"]["api_429"] > 0
    assert (figures["lost"], figures["duplicated"]) == (0, 0), problems
    assert figures["dead_letters_unexplained"] == 0, problems
    # Exactly the broken records' changes dead-lettered, each with the worker's history of that record.
    assert report.dead_letter_problems == [], problems
    assert figures["dead_lettered_changes"] == figures["faults"]["broken_record"], problems
    assert report.verdict.unexpected == report.final.unexpected == [], report.final.unexpected[:5]
    assert report.final.counts()[Outcome.APPLIED_ONCE] == options.changes, (report.final.counts(), problems)
    assert report.apart() == 0, report.reconciled

"""QBO records read together (the coalescer's batch) are one `Id in` query; near the company's monthly read budget
one CDC call per entity first. A record read alone is one read; one neither answers is read on its own."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shared.budget import CallKind, UsageKey
from shared.clients import (
    Coalescer,
    DegradedReads,
    MockTransport,
    QboClient,
    Request,
    Response,
    StaticToken,
    UsageRecorder,
)
from shared.domain import Provider
from shared.store import Store, open_store
from tests.clients.answers import json_answer, path_of, query_of

NOW = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC).timestamp()
BUDGET = 100
CHANGED = {"1": "3", "2": "5", "3": "1"}  # customers CDC reports changed in the last hour, by id: SyncToken


def answer(request: Request) -> Response:
    if path_of(request).endswith("/cdc"):
        rows = [{"Id": i, "SyncToken": token} for i, token in CHANGED.items()] + [{"Id": "9", "status": "Deleted"}]
        return json_answer(200, {"CDCResponse": [{"QueryResponse": [{"Customer": rows}]}]})
    if path_of(request).endswith("/query"):
        statement = dict(query_of(request))["query"]
        ids = [i for i in re.findall(r"'(\d+)'", statement) if i != "9"]  # 9 is deleted: no row
        return json_answer(200, {"QueryResponse": {"Customer": [{"Id": i, "SyncToken": "queried"} for i in ids]}})
    customer_id = path_of(request).rsplit("/", 1)[1]
    return json_answer(200, {"Customer": {"Id": customer_id, "SyncToken": "read"}})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def client(store: Store, reads_spent: int) -> tuple[QboClient, MockTransport]:
    await store.add_api_calls({UsageKey(Provider.QUICKBOOKS, "9130", CallKind.READ, "2026-12"): reads_spent})
    meter = UsageRecorder(store, clock=lambda: NOW).meter("acme", Provider.QUICKBOOKS, "9130")
    transport = MockTransport(answer)
    degraded = DegradedReads(meter, BUDGET, connection="acme", clock=lambda: NOW)
    qbo = QboClient(
        "https://qbo.test", "9130", StaticToken("t"), transport, usage=meter, degraded=degraded, coalescer=Coalescer()
    )
    return qbo, transport


async def test_records_read_together_near_the_budget_are_one_cdc_call(store: Store) -> None:
    qbo, transport = await client(store, reads_spent=90)
    found = await asyncio.gather(*(qbo.read("Customer", i) for i in ("1", "2", "3", "4", "5", "9")))
    assert [record["SyncToken"] for record in found] == ["3", "5", "1", "queried", "queried", "read"]
    calls = [path_of(request).rsplit("/", 2)[-1] for request in transport.requests]
    assert calls == ["cdc", "query", "9"]  # one CDC call, one query for the records it lacks; the deleted one alone
    assert REGISTRY.get_sample_value("hsqbo_qbo_reads_degraded", {"connection": "acme"}) == 1


async def test_a_record_read_alone_is_one_read(store: Store) -> None:
    qbo, transport = await client(store, reads_spent=95)
    assert (await qbo.read("Customer", "1"))["SyncToken"] == "read"
    assert [path_of(request).rsplit("/", 1)[-1] for request in transport.requests] == ["1"]


async def test_below_the_degraded_share_records_read_together_are_one_query(store: Store) -> None:
    qbo, transport = await client(store, reads_spent=80)
    found = await asyncio.gather(*(qbo.read("Customer", i) for i in ("1", "2", "3")))
    assert [record["Id"] for record in found] == ["1", "2", "3"]
    (query,) = transport.requests
    statement = dict(query_of(query))["query"]
    assert statement == "SELECT * FROM Customer WHERE Id IN ('1', '2', '3') AND Active IN (true, false) MAXRESULTS 3"
    assert REGISTRY.get_sample_value("hsqbo_qbo_reads_degraded", {"connection": "acme"}) == 0

"""Every provider call is counted per account, provider, kind (read / write) and month, in the store every process
shares, and the month's totals set the gauges the read-budget alert compares."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from shared.budget import ApiUsage, CallKind, UsageKey, call_kind
from shared.clients import BatchOperation, MockTransport, QboClient, Request, Response, StaticToken, UsageRecorder
from shared.domain import Provider
from shared.store import Store, open_store
from tests.clients.answers import json_answer

DECEMBER = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC).timestamp()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def qbo_answer(request: Request) -> Response:
    if request.method == "GET":
        return json_answer(200, {"Customer": {"Id": "58", "SyncToken": "0"}, "time": "2026-12-07T04:00:00-08:00"})
    return json_answer(200, {"Customer": {"Id": "58", "SyncToken": "1"}})


def test_reads_are_the_calls_that_only_fetch_and_oauth_is_not_counted() -> None:
    for operation in ("read", "query", "count", "cdc", "preferences", "companyinfo", "exchangerate"):
        assert call_kind(Provider.QUICKBOOKS, operation) is CallKind.READ, operation
    for operation in ("create", "update", "delete", "void"):
        assert call_kind(Provider.QUICKBOOKS, operation) is CallKind.WRITE, operation
    for operation in ("get", "batch_read", "search", "list_associations", "account_details", "get_property"):
        assert call_kind(Provider.HUBSPOT, operation) is CallKind.READ, operation
    for operation in ("create", "update", "archive", "batch_upsert", "associate", "create_property"):
        assert call_kind(Provider.HUBSPOT, operation) is CallKind.WRITE, operation
    assert call_kind(Provider.QUICKBOOKS, "oauth_token") is None
    assert call_kind(Provider.QUICKBOOKS, "batch") is None  # counted per item


async def test_a_batch_counts_each_item_as_the_call_it_stands_for(store: Store) -> None:
    def batch_answer(request: Request) -> Response:
        return json_answer(200, {"BatchItemResponse": [
            {"bId": "q1", "QueryResponse": {}}, {"bId": "q2", "QueryResponse": {}},
            {"bId": "c1", "Customer": {"Id": "60", "SyncToken": "0"}},
        ]})  # fmt: skip

    recorder = UsageRecorder(store, clock=lambda: DECEMBER)
    qbo = QboClient(
        "https://qbo.test", "9130", StaticToken("t"), MockTransport(batch_answer),
        usage=recorder.meter("acme", Provider.QUICKBOOKS, "9130"),
    )  # fmt: skip
    operations = [
        BatchOperation.query("q1", "SELECT * FROM Customer WHERE Id IN ('1', '2')"),
        BatchOperation.query("q2", "SELECT * FROM Item WHERE Id IN ('3')"),
        BatchOperation.create("c1", "Customer", {"DisplayName": "Acme"}),
    ]
    await qbo.batch(operations, request_id="b-1")
    await recorder.flush()
    reads = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.READ, "2026-12")
    writes = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.WRITE, "2026-12")
    assert await store.api_usage("2026-12") == [ApiUsage(reads, 2), ApiUsage(writes, 1)]


async def test_calls_are_added_to_the_store_per_kind_and_month_and_set_the_gauges(store: Store) -> None:
    now = [DECEMBER]
    recorder = UsageRecorder(store, flush_seconds=60.0, clock=lambda: now[0])
    qbo = QboClient(
        "https://qbo.test", "9130", StaticToken("t"), MockTransport(qbo_answer),
        usage=recorder.meter("acme", Provider.QUICKBOOKS, "9130"),
    )  # fmt: skip
    for _ in range(3):
        await qbo.read("Customer", "58")
    await qbo.update("Customer", {"Id": "58", "SyncToken": "0"}, request_id="r-1")
    assert await store.api_usage("2026-12") == []  # counted in memory until the flush is due
    now[0] += 60.0
    await qbo.read("Customer", "58")  # the flush is due: the counts go to the store in the background
    await until_saved(store, "2026-12")
    await recorder.flush()  # waits for the background flush to finish (gauges set), adds nothing

    reads = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.READ, "2026-12")
    writes = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.WRITE, "2026-12")
    assert await store.api_usage("2026-12") == [ApiUsage(reads, 4), ApiUsage(writes, 1)]
    labels = {"connection": "acme", "provider": "quickbooks", "kind": "read"}
    assert REGISTRY.get_sample_value("hsqbo_api_calls_this_month", labels) == 4

    await store.add_api_calls({reads: 10})  # another process's calls
    other = UsageRecorder(store, clock=lambda: now[0])
    assert await other.meter("acme", Provider.QUICKBOOKS, "9130").month_calls(CallKind.READ) == 14

    now[0] = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()  # a new month counts from zero
    await qbo.read("Customer", "58")
    await recorder.flush()
    assert await store.api_usage("2027-01") == [ApiUsage(dataclasses.replace(reads, month="2027-01"), 1)]


async def until_saved(store: Store, month: str) -> None:
    for _ in range(200):
        if await store.api_usage(month):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the counts never reached the store")


async def test_a_store_that_fails_keeps_the_counts_for_the_next_flush(store: Store) -> None:
    class Failing:
        fail = True

        async def add_api_calls(self, counts: dict[UsageKey, int]) -> dict[UsageKey, int]:
            if self.fail:
                raise OSError("store down")
            return await store.add_api_calls(counts)

        async def api_usage(self, month: str, **where: object) -> list[ApiUsage]:
            return await store.api_usage(month)

    backend = Failing()
    recorder = UsageRecorder(backend, clock=lambda: DECEMBER)  # type: ignore[arg-type]
    recorder.count(Provider.HUBSPOT, "62515", "search")
    await recorder.flush()
    backend.fail = False
    await recorder.flush()
    assert await store.api_usage("2026-12") == [
        ApiUsage(UsageKey(Provider.HUBSPOT, "62515", CallKind.READ, "2026-12"), 1)
    ]

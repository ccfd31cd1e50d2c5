"""Throttling (qbo-api.md §6.3): 429 with Fault 3001 past the per-realm limits, checked with lowered limits."""

from __future__ import annotations

import asyncio

import pytest

from hsqbo_sandbox.qbo import RealmLimits
from tests.sandbox.qbo.conftest import QboHttp


@pytest.fixture
def limits() -> RealmLimits:
    return RealmLimits(requests_per_minute=3, max_concurrent=2, batch_per_minute=1)


async def test_requests_past_the_per_minute_limit_get_429_fault_3001_until_the_window_passes(qbo: QboHttp) -> None:
    for _ in range(3):
        assert (await qbo.get("customer/1"))[0] == 400  # 610, but admitted
    status, answer = await qbo.get("customer/1")
    assert status == 429
    error = answer["Fault"]["Error"][0]
    assert (error["code"], answer["Fault"]["type"]) == ("3001", "SERVICE")
    assert error["Message"] == "message=ThrottleExceeded; errorCode=003001; statusCode=429"
    qbo.sandbox.clock.advance(60)
    assert (await qbo.get("customer/1"))[0] == 400


async def test_more_concurrent_requests_than_allowed_get_429(qbo: QboHttp) -> None:
    qbo.sandbox.faults.update(latency_ms=(300, 300))  # keeps the first two in flight while the third arrives
    statuses = sorted(status for status, _ in await asyncio.gather(*(qbo.get("customer/1") for _ in range(3))))
    assert statuses == [400, 400, 429]


async def test_batch_requests_have_their_own_per_minute_limit(qbo: QboHttp) -> None:
    body = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Customer"}]}
    assert (await qbo.post("batch", body))[0] == 200
    assert (await qbo.post("batch", body))[0] == 429


async def test_fault_storm_answers_429_and_error_rate_answers_500_system_fault(qbo: QboHttp) -> None:
    qbo.sandbox.faults.update(throttle_until=qbo.sandbox.clock.now() + 10)
    status, answer = await qbo.get("customer/1")
    assert (status, answer["Fault"]["Error"][0]["code"]) == (429, "3001")
    qbo.sandbox.faults.update(throttle_until=0, error_rate=1.0)
    status, answer = await qbo.get("customer/1")
    assert (status, answer["Fault"]["type"]) == (500, "SystemFault")

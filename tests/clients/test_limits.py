"""Client-side rate limits on a mocked clock: windows, the in-flight cap, leases, pauses after a 429, HubSpot's
rate-limit headers, and which quota each operation takes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from pydantic import SecretStr

from shared.clients import (
    BatchOperation,
    CallLimits,
    HubSpotClient,
    MemoryLimits,
    MockTransport,
    QboClient,
    RateLimiter,
    Request,
    Response,
    StaticToken,
    bulk_calls,
)
from shared.config import Settings
from shared.errors import RateLimited
from shared.quotas import Quota, Window
from tests.clients.answers import json_answer

HOLD = 40.0  # seconds a slot may be held
POLL = 0.05


class FakeTime:
    """The limiter's clock and sleep. `auto`: a sleep moves the clock at once (one task at a time); otherwise a
    sleeper waits until the test calls `advance`."""

    def __init__(self, *, auto: bool = True) -> None:
        self.now = 1_000.0
        self.auto = auto
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.auto:
            self.now += seconds
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        await wake

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, wake in self._sleepers:
            if due <= self.now and not wake.done():
                wake.set_result(None)


def limiter(time: FakeTime, backend: MemoryLimits | None = None) -> RateLimiter:
    return RateLimiter(backend or MemoryLimits(), hold_seconds=HOLD, poll_seconds=POLL, clock=time.clock,
                       sleep=time.sleep)  # fmt: skip


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def settings(**fields: object) -> Settings:
    return Settings.model_validate({"qbo_client_secret": SecretStr("s"), **fields})


async def test_window_admits_at_most_limit_calls_in_any_window_of_its_length() -> None:
    time = FakeTime()
    rate = limiter(time)
    quota = Quota((Window("k", 3, 10.0),))
    admitted = []
    for _ in range(7):
        async with rate.admitted(quota):
            admitted.append(time.now)
    assert admitted == [1000.0, 1000.0, 1000.0, 1010.0, 1010.0, 1010.0, 1020.0]


async def test_a_use_counts_until_a_window_after_its_call_ended() -> None:
    time = FakeTime()
    rate = limiter(time)
    quota = Quota((Window("k", 1, 10.0),))
    async with rate.admitted(quota):
        time.now += 5.0  # a slow call: the provider may have counted it only when it arrived
    async with rate.admitted(quota):
        assert time.now == 1015.0


async def test_a_call_takes_every_window_of_its_quota_or_none() -> None:
    time = FakeTime()
    backend = MemoryLimits()
    rate = limiter(time, backend)
    realm = Window("realm", 10, 60.0)
    batch = Window("batch", 1, 60.0)
    async with rate.admitted(Quota((realm, batch))):
        pass
    refused = await backend.take_quota(Quota((realm, batch)), 7, time.now, HOLD)
    assert not refused.granted
    assert refused.wait == 60.0
    assert len(backend.uses["realm"]) == 1  # the refused call took nothing
    async with rate.admitted(Quota((realm,))):  # other calls of the realm still go
        assert time.now == 1000.0


async def test_in_flight_cap_holds_calls_until_one_ends() -> None:
    time = FakeTime(auto=False)
    rate = limiter(time)
    quota = Quota((Window("k", 100, 60.0),), "k", 2)
    inside: set[int] = set()
    peak = 0
    release = {n: asyncio.Event() for n in range(5)}

    async def call(n: int) -> None:
        nonlocal peak
        async with rate.admitted(quota):
            inside.add(n)
            peak = max(peak, len(inside))
            await release[n].wait()
            inside.discard(n)

    tasks = [asyncio.create_task(call(n)) for n in range(5)]
    await settle()
    assert inside == {0, 1}
    release[0].set()
    await settle()  # woken by the end of a call in this process, not by the clock
    assert inside == {1, 2}
    for event in release.values():
        event.set()
    await asyncio.gather(*tasks)
    assert peak == 2


async def test_slot_of_a_call_that_never_finished_comes_back_after_its_lease() -> None:
    time = FakeTime()
    backend = MemoryLimits()
    quota = Quota((Window("k", 100, 60.0),), "k", 1)
    assert (await backend.take_quota(quota, 1, time.now, HOLD)).granted  # its process died mid-call
    refused = await backend.take_quota(quota, 2, time.now, HOLD)
    assert not refused.granted
    assert not refused.exact  # a slot may come back before its lease ends: look again soon
    assert refused.wait == HOLD
    async with limiter(time, backend).admitted(quota):
        assert time.now >= 1000.0 + HOLD


async def test_pause_stops_every_call_on_the_key_until_it_ends() -> None:
    time = FakeTime()
    rate = limiter(time)
    await rate.pause("k", 60.0)
    await rate.pause("k", 5.0)  # a shorter pause does not cut a longer one
    async with rate.admitted(Quota((Window("k", 100, 60.0),))):
        assert time.now == 1060.0


def _qbo(time: FakeTime, handler: MockTransport) -> QboClient:
    limits = CallLimits.for_qbo(limiter(time), "r1", settings())
    return QboClient("https://qbo.example", "r1", StaticToken("t"), handler, limits=limits)


async def test_qbo_429_pauses_the_realm_for_the_advised_time() -> None:
    time = FakeTime()
    sent: list[float] = []
    throttle = json_answer(429, {"Fault": {"Error": [{"code": "3001", "Message": "ThrottleExceeded"}]}},
                           {"Retry-After": "30"})  # fmt: skip
    answers = [throttle, json_answer(200, {"Customer": {"Id": "1"}})]

    def handler(request: Request) -> Response:
        sent.append(time.now)
        return answers.pop(0)

    qbo = _qbo(time, MockTransport(handler))
    with pytest.raises(RateLimited) as throttled:
        await qbo.read("Customer", "1")
    assert throttled.value.retry_after == 30.0
    await qbo.read("Customer", "1")
    assert sent == [1000.0, 1030.0]


async def test_qbo_batch_also_takes_the_batch_window() -> None:
    time = FakeTime()
    sent: list[float] = []

    def handler(request: Request) -> Response:
        sent.append(time.now)
        return json_answer(200, {"BatchItemResponse": [], "QueryResponse": {}})

    limits = CallLimits.for_qbo(limiter(time), "r1", settings(qbo_batch_per_minute=1))
    qbo = QboClient("https://qbo.example", "r1", StaticToken("t"), MockTransport(handler), limits=limits)
    operation = [BatchOperation.query("1", "SELECT * FROM Customer")]
    await qbo.batch(operation, request_id="a")
    await qbo.query("SELECT * FROM Customer")
    await qbo.batch(operation, request_id="b")
    assert sent == [1000.0, 1000.0, 1060.0]


def _hubspot(time: FakeTime, handler: MockTransport, **fields: object) -> HubSpotClient:
    limits = CallLimits.for_hubspot(limiter(time), "62515", settings(**fields))
    return HubSpotClient("https://hubspot.example", StaticToken("t"), handler, limits=limits)


async def test_hubspot_searches_share_the_burst_and_keep_their_own_per_second_limit() -> None:
    time = FakeTime()
    sent: list[tuple[str, float]] = []

    def handler(request: Request) -> Response:
        sent.append(("search" if request.url.endswith("/search") else "get", time.now))
        return json_answer(200, {"results": [], "total": 0, "id": "1", "properties": {}})

    hubspot = _hubspot(time, MockTransport(handler), hubspot_search_per_second=2)
    for _ in range(3):
        await hubspot.search("contacts")
    await hubspot.get("contacts", "1")
    assert sent == [("search", 1000.0), ("search", 1000.0), ("search", 1001.0), ("get", 1001.0)]


async def test_hubspot_search_429_pauses_searches_only() -> None:
    time = FakeTime()
    sent: list[tuple[str, float]] = []
    answers = [json_answer(429, {"errorType": "RATE_LIMIT", "policyName": "SECONDLY", "message": "secondly"})]

    def handler(request: Request) -> Response:
        sent.append(("search" if request.url.endswith("/search") else "get", time.now))
        return answers.pop(0) if answers else json_answer(200, {"results": [], "id": "1", "properties": {}})

    hubspot = _hubspot(time, MockTransport(handler))
    with pytest.raises(RateLimited) as throttled:
        await hubspot.search("contacts")
    assert throttled.value.retry_after == 1.0
    await hubspot.get("contacts", "1")
    await hubspot.search("contacts")
    assert sent == [("search", 1000.0), ("get", 1000.0), ("search", 1001.0)]


async def test_hubspot_burst_429_pauses_the_portal_for_the_interval() -> None:
    time = FakeTime()
    sent: list[float] = []
    answers = [json_answer(429, {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", "message": "m"},
                           {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})]  # fmt: skip

    def handler(request: Request) -> Response:
        sent.append(time.now)
        return answers.pop(0) if answers else json_answer(200, {"id": "1", "properties": {}})

    hubspot = _hubspot(time, MockTransport(handler))
    with pytest.raises(RateLimited):
        await hubspot.get("contacts", "1")
    await hubspot.get("contacts", "1")
    assert sent == [1000.0, 1010.0]


async def test_hubspot_remaining_zero_while_we_counted_room_pauses_the_burst_window() -> None:
    time = FakeTime()
    sent: list[float] = []
    exhausted = {"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}

    def handler(request: Request) -> Response:
        sent.append(time.now)
        return json_answer(200, {"id": "1", "properties": {}}, exhausted if len(sent) == 1 else {})

    hubspot = _hubspot(time, MockTransport(handler))  # 100 per 10 s: our count has room after one call
    await hubspot.get("contacts", "1")
    await hubspot.get("contacts", "1")
    assert sent == [1000.0, 1010.0]


async def test_hubspot_remaining_zero_on_the_call_that_filled_our_own_window_costs_no_pause() -> None:
    time = FakeTime()
    sent: list[float] = []

    def handler(request: Request) -> Response:
        sent.append(time.now)
        remaining = str(max(0, 2 - len(sent)))
        return json_answer(200, {"id": "1", "properties": {}}, {"X-HubSpot-RateLimit-Remaining": remaining})

    hubspot = _hubspot(time, MockTransport(handler), hubspot_burst_requests=2)
    for _ in range(3):
        await hubspot.get("contacts", "1")
    assert sent == [1000.0, 1000.0, 1010.0]  # our own window waits; no extra pause on top


def caller(sent: list[tuple[str, float]], time: FakeTime) -> Callable[[str], Awaitable[None]]:
    """A QBO client on a realm allowing 10 calls a minute: each call notes who made it and when it went."""
    tight = settings(qbo_requests_per_minute=10, qbo_requests_per_second=10)
    answer = MockTransport(lambda request: json_answer(200, {"QueryResponse": {}}))
    qbo = QboClient(
        "https://qbo.example", "r1", StaticToken("t"), answer, limits=CallLimits.for_qbo(limiter(time), "r1", tight)
    )

    async def call(who: str) -> None:
        await qbo.query("SELECT * FROM Customer")
        sent.append((who, time.now))

    return call


async def test_catch_up_calls_leave_a_fifth_of_each_limit_to_live_ones() -> None:
    sent: list[tuple[str, float]] = []
    call = caller(sent, FakeTime())
    with bulk_calls():
        for _ in range(9):
            await call("backfill")  # the 9th waits: catch-up work takes 8 of the minute's 10
    assert sent == [("backfill", 1000.0)] * 8 + [("backfill", 1060.0)]

    sent.clear()
    call = caller(sent, FakeTime())
    with bulk_calls():
        for _ in range(8):
            await call("backfill")
    for _ in range(2):
        await call("live")  # the minute's last 2 are the live changes', at once
    assert sent == [("backfill", 1000.0)] * 8 + [("live", 1000.0)] * 2

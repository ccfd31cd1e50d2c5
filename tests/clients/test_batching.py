"""The coalescer: concurrent single calls meet in one batch call when every apply in flight waits, or when the batch
is full; each caller gets its own answer or error; a lone call goes at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.clients import Coalescer
from shared.clients._limits import bulk_calls, in_bulk_calls
from shared.errors import ApiError, NotFound, ServerError


class Recorder:
    """A batch call answering each item doubled, or its own NotFound for the items named `missing`."""

    def __init__(self, *, fail: Exception | None = None, missing: frozenset[int] = frozenset()) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail
        self.missing = missing

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.calls.append(list(items))
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return [NotFound(f"no {i}", provider="test") if i in self.missing else i * 2 for i in items]


class FirstCallHeld:
    """A scarce batch call answering each item doubled, its calls recorded; the first ends once `first_may_end`."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.first_may_end = asyncio.Event()

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            await self.first_may_end.wait()
        return [item * 2 for item in items]


async def applies(coalescer: Coalescer, run: Recorder, items: Sequence[int], *, limit: int = 30) -> list[object]:
    """One apply per item, each making one call, all in flight together."""

    async def apply(item: int) -> object:
        with coalescer.applying():
            await asyncio.sleep(0.001 * item)  # each apply reaches its call at its own time
            try:
                return await coalescer.submit("group", item, run, limit=limit)
            except ApiError as exc:
                return exc

    return list(await asyncio.gather(*(apply(item) for item in items)))


async def test_calls_go_together_once_every_apply_in_flight_waits() -> None:
    coalescer, run = Coalescer(window_seconds=10.0), Recorder()
    assert await applies(coalescer, run, [1, 2, 3, 4, 5]) == [2, 4, 6, 8, 10]
    assert run.calls == [[1, 2, 3, 4, 5]]  # no time window: the last arrival let them go


async def test_a_full_batch_goes_at_once() -> None:
    coalescer, run = Coalescer(window_seconds=10.0), Recorder()
    assert await applies(coalescer, run, list(range(1, 8)), limit=3) == [2, 4, 6, 8, 10, 12, 14]
    assert run.calls == [[1, 2, 3], [4, 5, 6], [7]]


async def test_an_items_error_is_its_callers_alone() -> None:
    coalescer, run = Coalescer(window_seconds=10.0), Recorder(missing=frozenset({2}))
    answers = await applies(coalescer, run, [1, 2, 3])
    assert answers[::2] == [2, 6]
    assert isinstance(answers[1], NotFound)
    assert run.calls == [[1, 2, 3]]


async def test_a_failed_call_fails_every_caller_with_its_error() -> None:
    outage = ServerError("down", provider="test", status=503)
    coalescer, run = Coalescer(window_seconds=10.0), Recorder(fail=outage)
    assert await applies(coalescer, run, [1, 2, 3]) == [outage, outage, outage]
    assert run.calls == [[1, 2, 3]]


async def test_a_lone_call_goes_at_once() -> None:
    coalescer, run = Coalescer(window_seconds=10.0), Recorder()
    async with asyncio.timeout(1.0):
        assert await applies(coalescer, run, [4]) == [8]
        assert await coalescer.submit("group", 5, run, limit=30) == 10  # outside any apply: nothing to wait for
    assert run.calls == [[4], [5]]


async def test_an_apply_busy_elsewhere_holds_its_neighbours_no_longer_than_the_window() -> None:
    coalescer, run = Coalescer(window_seconds=0.02), Recorder()
    release = asyncio.Event()

    async def busy() -> None:
        with coalescer.applying():
            await release.wait()  # e.g. an unbatched call

    holding = asyncio.create_task(busy())
    await asyncio.sleep(0)
    async with asyncio.timeout(1.0):
        assert await applies(coalescer, run, [1, 2]) == [2, 4]
    assert run.calls == [[1, 2]]
    release.set()
    await holding


async def test_a_cancelled_caller_leaves_the_batch() -> None:
    coalescer, run = Coalescer(window_seconds=10.0), Recorder()
    with coalescer.applying(), coalescer.applying(), coalescer.applying():  # the third apply is busy elsewhere
        first = asyncio.create_task(coalescer.submit("group", 1, run, limit=30))
        second = asyncio.create_task(coalescer.submit("group", 2, run, limit=30))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0.01)
        assert not second.done()
    assert await second == 4
    assert run.calls == [[2]]


async def test_live_changes_and_catch_up_work_never_share_a_batch_each_call_made_as_its_lanes() -> None:
    coalescer = Coalescer(window_seconds=10.0)
    lanes: dict[int, bool] = {}

    async def run(items: Sequence[int]) -> list[int | Exception]:
        for item in items:
            lanes[item] = in_bulk_calls()
        return [item * 2 for item in items]

    async def apply(item: int, *, bulk: bool) -> int:
        with coalescer.applying(), bulk_calls(bulk):
            await asyncio.sleep(0.001 * item)
            return await coalescer.submit("group", item, run, limit=30)

    assert list(await asyncio.gather(apply(1, bulk=True), apply(2, bulk=False), apply(3, bulk=True))) == [2, 4, 6]
    assert lanes == {1: True, 2: False, 3: True}  # the live change went alone, as a live call


async def test_a_one_at_a_time_group_gathers_while_its_call_is_in_flight_and_goes_when_it_ends() -> None:
    coalescer = Coalescer(window_seconds=10.0)
    scarce = FirstCallHeld()

    async def call(item: int) -> object:
        return await coalescer.submit("scarce", item, scarce, limit=30, one_at_a_time=True)

    first = asyncio.ensure_future(call(1))  # nothing in flight: goes alone, at once
    await asyncio.sleep(0.01)
    assert scarce.calls == [[1]]
    later = [asyncio.ensure_future(call(item)) for item in (2, 3, 4)]  # while it is in flight: they gather
    await asyncio.sleep(0.01)
    assert scarce.calls == [[1]]
    scarce.first_may_end.set()
    assert await asyncio.gather(first, *later) == [2, 4, 6, 8]
    assert scarce.calls == [[1], [2, 3, 4]]  # sent when the call in flight ended, as one


async def test_a_full_one_at_a_time_batch_goes_without_waiting() -> None:
    coalescer = Coalescer(window_seconds=10.0)
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def scarce(items: Sequence[int]) -> list[int | Exception]:
        calls.append(list(items))
        await release.wait()
        return [item * 2 for item in items]

    tasks = [asyncio.ensure_future(coalescer.submit("s", i, scarce, limit=2, one_at_a_time=True)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert calls == [[0, 1], [2, 3]]  # full ones go at once; the part-filled one waits for a call to end
    release.set()
    assert await asyncio.gather(*tasks) == [0, 2, 4, 6, 8]
    assert calls == [[0, 1], [2, 3], [4]]


async def test_a_one_at_a_time_batch_gathers_on_after_its_groups_call_while_applies_still_run() -> None:
    """When the group's call ends with applies still running (they may join), the batch waits for them, up to the
    hold; once every apply in flight waits, it goes."""
    coalescer = Coalescer(window_seconds=10.0, hold_seconds=10.0)
    scarce, still_running = FirstCallHeld(), asyncio.Event()

    async def apply(item: int, *, busy_until: asyncio.Event | None = None) -> object:
        with coalescer.applying():
            if busy_until is not None:
                await busy_until.wait()
            return await coalescer.submit("scarce", item, scarce, limit=30, one_at_a_time=True)

    first = asyncio.ensure_future(apply(1))
    await asyncio.sleep(0.01)
    gathered = [asyncio.ensure_future(apply(item)) for item in (2, 3)]
    late = asyncio.ensure_future(apply(4, busy_until=still_running))  # in flight, not at its call yet
    await asyncio.sleep(0.01)
    scarce.first_may_end.set()
    await asyncio.sleep(0.01)
    assert scarce.calls == [[1]]  # 2 and 3 wait for the apply still running
    still_running.set()
    assert list(await asyncio.gather(first, *gathered, late)) == [2, 4, 6, 8]
    assert scarce.calls == [[1], [2, 3, 4]]


async def test_a_one_at_a_time_batch_gathers_on_no_longer_than_the_hold() -> None:
    coalescer = Coalescer(window_seconds=10.0, hold_seconds=0.02)
    scarce, never = FirstCallHeld(), asyncio.Event()

    async def apply(item: int) -> object:
        with coalescer.applying():
            return await coalescer.submit("scarce", item, scarce, limit=30, one_at_a_time=True)

    async def busy_elsewhere() -> None:
        with coalescer.applying():
            await never.wait()

    first = asyncio.ensure_future(apply(1))  # alone: goes at once
    await asyncio.sleep(0.01)
    blocker = asyncio.ensure_future(busy_elsewhere())
    second = asyncio.ensure_future(apply(2))
    await asyncio.sleep(0.01)
    scarce.first_may_end.set()
    assert list(await asyncio.gather(first, second)) == [2, 4]
    assert scarce.calls == [[1], [2]]  # the hold ran out: the apply busy elsewhere never came
    blocker.cancel()

"""One apply at a time per linked pair in a process; an apply does not wait for itself; the locks are let go."""

from __future__ import annotations

import asyncio

from services.worker._pairs import PairLocks


async def test_the_pairs_two_applies_run_one_after_the_other_and_the_second_knows_it_waited() -> None:
    pairs = PairLocks()
    order: list[str] = []
    first_in = asyncio.Event()

    async def apply(name: str, link_id: int | None) -> bool:
        async with pairs.holding(link_id) as waited:
            order.append(f"{name} in")
            first_in.set()
            await asyncio.sleep(0.01)
            order.append(f"{name} out")
            return waited

    first = asyncio.create_task(apply("from hubspot", 5))
    await first_in.wait()
    second = asyncio.create_task(apply("from qbo", 5))
    other = asyncio.create_task(apply("another pair", 6))
    assert list(await asyncio.gather(first, second, other)) == [False, True, False]
    assert order.index("from hubspot out") < order.index("from qbo in")
    assert order.index("another pair in") < order.index("from hubspot out")  # other pairs never wait
    assert len(pairs) == 0


async def test_no_link_holds_nothing_and_an_apply_holding_its_pair_does_not_wait_for_itself() -> None:
    pairs = PairLocks()
    async with pairs.holding(None) as waited:
        assert not waited
        assert len(pairs) == 0
    async with pairs.holding(5), pairs.holding(5) as inner:
        assert not inner
    assert len(pairs) == 0

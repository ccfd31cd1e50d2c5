"""Two OS processes on one store (a file, a Postgres database): they open (and so migrate) it at once, then touch
and claim the same keys."""

from __future__ import annotations

import asyncio
from multiprocessing.synchronize import Event

from shared.domain import Kind, PendingKey, Provider
from shared.store import open_store
from tests.store.conftest import race_processes

TOUCHED = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "touched")
COUNTED = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "counted")
TOUCHES = 100  # per process
CYCLES = 25  # per process: claim, read-increment-write a cursor under the lease, finish


def _work(url: str, owner: str, start: Event) -> None:
    start.wait()
    asyncio.run(_work_async(url, owner))


async def _work_async(url: str, owner: str) -> None:
    async with open_store(url) as store:
        for n in range(TOUCHES):
            await store.touch_pending(TOUCHED, float(n), {owner: n})
        cycles = 0
        while cycles < CYCLES:
            await store.touch_pending(COUNTED, 0.0)
            claimed = await store.claim_pending(COUNTED, owner, 0.0, lease_seconds=1e9)
            if claimed is None:
                await asyncio.sleep(0)  # the other process holds the lease
                continue
            # Deliberately not atomic: only the lease keeps the two processes from losing increments.
            count = int(await store.get_cursor("acme", "count") or 0)
            await store.set_cursor("acme", "count", str(count + 1))
            await store.finish_pending(COUNTED, owner, claimed.generation)
            cycles += 1


async def test_two_processes_lose_no_touches_and_share_the_lease(shared_url: str) -> None:
    assert await race_processes(_work, [(shared_url, f"process-{n}") for n in range(2)]) == [0, 0]
    async with open_store(shared_url) as store:
        touched = await store.get_pending(TOUCHED)
        assert touched is not None
        assert touched.generation == 2 * TOUCHES
        assert touched.hints == {"process-0": TOUCHES - 1, "process-1": TOUCHES - 1}
        assert await store.get_cursor("acme", "count") == str(2 * CYCLES)

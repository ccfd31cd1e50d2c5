"""One apply at a time per linked pair in this process: a change from HubSpot and one from QBO to the two records of
one link wait for each other instead of racing.

Their pending keys differ (one per side), so leases let both run at once; the one saving the link second was then
refused (`StaleLink`) and ran again, its API reads made twice, and a second refusal waited the retry policy's first
delay (the bench's edit in QBO right after our write to that record met this: its lag was seconds). Waiting for the
other apply instead costs the rest of that apply, and the link is read again after the wait. Applies in other
processes still meet the store's optimistic lock, as before; an apply already holding the pair (run inside it) does
not wait for itself."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator

_HELD: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("hsqbo_pairs_held", default=frozenset())


class PairLocks:
    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}  # link id -> its lock, the applies holding or waiting

    @contextlib.asynccontextmanager
    async def holding(self, link_id: int | None) -> AsyncIterator[bool]:
        """Hold the pair of link `link_id` (None: no link yet, nothing to hold) while the block runs; yields whether
        another apply held it first (the link may have changed meanwhile: read it again)."""
        if link_id is None or link_id in _HELD.get():
            yield False
            return
        lock, users = self._locks.get(link_id, (asyncio.Lock(), 0))
        self._locks[link_id] = (lock, users + 1)
        try:
            waited = lock.locked()
            async with lock:
                token = _HELD.set(_HELD.get() | {link_id})
                try:
                    yield waited
                finally:
                    _HELD.reset(token)
        finally:
            lock, users = self._locks[link_id]
            if users == 1:
                del self._locks[link_id]
            else:
                self._locks[link_id] = (lock, users - 1)

    def __len__(self) -> int:
        """The pairs held or waited for now."""
        return len(self._locks)

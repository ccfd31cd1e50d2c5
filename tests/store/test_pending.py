from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from shared.domain import Kind, PendingKey, Provider
from shared.store import Store, open_store

KEY = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "101")
OTHER = PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "101")  # same id, other system: another key
LEASE = 30.0


async def test_touch_reports_a_new_row_only_once(store: Store) -> None:
    assert await store.touch_pending(KEY, 10.0) is True
    assert await store.touch_pending(KEY, 11.0) is False
    assert await store.touch_pending(OTHER, 11.0) is True


async def test_touch_keeps_first_seen_moves_last_seen_and_counts_generations(store: Store) -> None:
    await store.touch_pending(KEY, 10.0)
    await store.touch_pending(KEY, 12.0)
    await store.touch_pending(KEY, 11.0)  # a late arrival from a skewed clock never moves last_seen back

    pending = await store.get_pending(KEY)

    assert pending is not None
    assert (pending.first_seen, pending.last_seen, pending.generation) == (10.0, 12.0, 3)
    assert (pending.owner, pending.lease_expires_at) == (None, None)


async def test_touch_merges_hints_as_a_json_merge_patch(store: Store) -> None:
    await store.touch_pending(KEY, 1.0, {"merged_ids": {"7": True}, "deleted": True, "note": "x"})
    await store.touch_pending(KEY, 2.0, {"merged_ids": {"8": True}, "deleted": False, "note": None})

    pending = await store.get_pending(KEY)

    assert pending is not None
    assert pending.hints == {"merged_ids": {"7": True, "8": True}, "deleted": False}


async def test_touch_patches_other_values_whole_and_drops_nulls_at_every_depth(store: Store) -> None:
    await store.touch_pending(KEY, 1.0, {"gone": None, "list": [1, None], "object": {"a": 1, "b": {"c": 1}}})
    await store.touch_pending(KEY, 2.0, {"list": {"x": None, "y": 2}, "object": {"a": None, "b": {"d": None}}})

    pending = await store.get_pending(KEY)

    assert pending is not None
    assert pending.hints == {"list": {"y": 2}, "object": {"b": {"c": 1}}}


async def test_one_of_two_owners_gets_the_lease(store: Store) -> None:
    await store.touch_pending(KEY, 1.0)

    first = await store.claim_pending(KEY, "worker-a", 2.0, LEASE)
    second = await store.claim_pending(KEY, "worker-b", 3.0, LEASE)

    assert first is not None
    assert (first.key, first.owner, first.lease_expires_at, first.generation) == (KEY, "worker-a", 32.0, 1)
    assert second is None


async def test_the_owner_may_renew_its_lease(store: Store) -> None:
    await store.touch_pending(KEY, 1.0)
    await store.claim_pending(KEY, "worker-a", 2.0, LEASE)

    renewed = await store.claim_pending(KEY, "worker-a", 20.0, LEASE)

    assert renewed is not None
    assert renewed.lease_expires_at == 50.0


async def test_an_expired_lease_can_be_claimed_by_another_owner(store: Store) -> None:
    await store.touch_pending(KEY, 1.0)
    await store.claim_pending(KEY, "worker-a", 2.0, LEASE)

    assert await store.claim_pending(KEY, "worker-b", 31.9, LEASE) is None
    taken = await store.claim_pending(KEY, "worker-b", 32.0, LEASE)

    assert taken is not None
    assert taken.owner == "worker-b"


async def test_claim_of_a_missing_row_is_none(store: Store) -> None:
    assert await store.claim_pending(KEY, "worker-a", 1.0, LEASE) is None


async def test_finish_at_the_claimed_generation_removes_the_row(store: Store) -> None:
    await store.touch_pending(KEY, 1.0)
    claimed = await store.claim_pending(KEY, "worker-a", 2.0, LEASE)
    assert claimed is not None

    assert await store.finish_pending(KEY, "worker-a", claimed.generation) is True
    assert await store.get_pending(KEY) is None
    assert await store.touch_pending(KEY, 3.0) is True


async def test_finish_after_new_changes_keeps_the_row_and_frees_the_lease(store: Store) -> None:
    await store.touch_pending(KEY, 1.0, {"deleted": False})
    claimed = await store.claim_pending(KEY, "worker-a", 2.0, LEASE)
    assert claimed is not None
    await store.touch_pending(KEY, 3.0, {"deleted": True})

    assert await store.finish_pending(KEY, "worker-a", claimed.generation) is False

    left = await store.get_pending(KEY)
    assert left is not None
    assert (left.generation, left.owner, left.hints) == (2, None, {"deleted": True})
    assert await store.claim_pending(KEY, "worker-b", 4.0, LEASE) is not None


async def test_finish_by_an_owner_who_lost_the_lease_leaves_the_new_owner_alone(store: Store) -> None:
    await store.touch_pending(KEY, 1.0)
    stale = await store.claim_pending(KEY, "worker-a", 2.0, LEASE)
    assert stale is not None
    await store.claim_pending(KEY, "worker-b", 100.0, LEASE)  # worker-a's lease expired

    assert await store.finish_pending(KEY, "worker-a", stale.generation) is False

    left = await store.get_pending(KEY)
    assert left is not None
    assert left.owner == "worker-b"


async def test_release_keeps_the_row_and_frees_the_lease_for_its_owner_only(store: Store) -> None:
    await store.touch_pending(KEY, 1.0)
    await store.claim_pending(KEY, "worker-a", 2.0, LEASE)

    await store.release_pending(KEY, "worker-b")
    assert await store.claim_pending(KEY, "worker-b", 3.0, LEASE) is None

    await store.release_pending(KEY, "worker-a")
    released = await store.get_pending(KEY)
    assert released is not None
    assert (released.owner, released.generation) == (None, 1)
    assert await store.claim_pending(KEY, "worker-b", 3.0, LEASE) is not None


async def test_due_lists_quiet_or_overdue_unleased_keys_oldest_first(store: Store) -> None:
    quiet = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "quiet")
    busy = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "busy")
    overdue = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "overdue")
    leased = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "leased")
    lease_expired = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "lease_expired")
    await store.touch_pending(overdue, 0.0)
    await store.touch_pending(overdue, 99.0)  # still changing, but waiting since 0
    await store.touch_pending(lease_expired, 10.0)
    await store.claim_pending(lease_expired, "gone", 10.0, LEASE)
    await store.touch_pending(quiet, 50.0)
    await store.touch_pending(leased, 50.0)
    await store.claim_pending(leased, "worker-a", 90.0, LEASE)
    await store.touch_pending(busy, 95.0)

    due = await store.due_pending(now=100.0, quiet_seconds=10.0, max_wait_seconds=60.0)

    assert due == [overdue, lease_expired, quiet]
    assert await store.due_pending(now=100.0, quiet_seconds=10.0, max_wait_seconds=60.0, limit=1) == [overdue]


async def test_due_leaves_out_the_unclaimed_keys_of_connections_whose_commands_are_still_queued(store: Store) -> None:
    queued = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "queued")
    retry_due = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "retry_due")
    worker_died = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "worker_died")
    elsewhere = PendingKey("zeta", Kind.CONTACT, Provider.HUBSPOT, "elsewhere")
    for key in (queued, retry_due, worker_died, elsewhere):
        await store.touch_pending(key, 0.0)
    await store.defer_pending(retry_due, 50.0)
    await store.claim_pending(worker_died, "gone", 10.0, LEASE)

    due = await store.due_pending(now=100.0, quiet_seconds=10.0, max_wait_seconds=60.0, still_queued=["acme"])

    assert set(due) == {retry_due, worker_died, elsewhere}
    assert len(await store.due_pending(now=100.0, quiet_seconds=10.0, max_wait_seconds=60.0)) == 4


async def test_two_connections_claiming_at_once_give_one_lease(shared_url: str, encryption_key: SecretStr) -> None:
    async with (
        open_store(shared_url, encryption_key=encryption_key) as first,
        open_store(shared_url, encryption_key=encryption_key) as second,
    ):
        await first.touch_pending(KEY, 1.0)

        claims = await asyncio.gather(
            *(store.claim_pending(KEY, f"worker-{n}", 2.0, LEASE) for n, store in enumerate([first, second] * 5))
        )

    winners = {claim.owner for claim in claims if claim is not None}
    assert len(winners) == 1


@pytest.mark.parametrize("hints", [None, {}])
async def test_touch_without_hints_stores_an_empty_object(store: Store, hints: dict[str, object] | None) -> None:
    await store.touch_pending(KEY, 1.0, hints)

    pending = await store.get_pending(KEY)
    assert pending is not None
    assert pending.hints == {}

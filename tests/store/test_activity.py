from __future__ import annotations

from shared.domain import Direction, Kind
from shared.store import Store, open_store
from tests.store.conftest import FakeClock, query


async def test_activity_reads_a_records_lines_newest_first(store: Store, clock: FakeClock) -> None:
    first = await store.log_activity(
        "acme", Kind.CONTACT, "created", hubspot_id="hs-1", qbo_id="qb-1", direction=Direction.HUBSPOT_TO_QBO
    )
    clock.now += 1
    second = await store.log_activity("acme", Kind.CONTACT, "updated", qbo_id="qb-1", detail="email changed")

    lines = await store.activity("acme", Kind.CONTACT, qbo_id="qb-1")

    assert [line.id for line in lines] == [second, first]
    assert (lines[0].action, lines[0].detail, lines[0].direction, lines[0].at) == (
        "updated",
        "email changed",
        None,
        clock.now,
    )
    assert (lines[1].hubspot_id, lines[1].direction) == ("hs-1", Direction.HUBSPOT_TO_QBO)


async def test_activity_matches_any_of_the_given_ids(store: Store) -> None:
    await store.log_activity("acme", Kind.CONTACT, "created", hubspot_id="hs-1", at=1.0)
    await store.log_activity("acme", Kind.CONTACT, "updated", qbo_id="qb-1", at=2.0)
    await store.log_activity("acme", Kind.CONTACT, "linked", link_id=None, hubspot_id="hs-2", at=3.0)
    await store.log_activity("acme", Kind.PRODUCT, "created", hubspot_id="hs-1", at=4.0)
    await store.log_activity("other", Kind.CONTACT, "created", hubspot_id="hs-1", at=5.0)

    both = await store.activity("acme", Kind.CONTACT, hubspot_id="hs-1", qbo_id="qb-1")
    every = await store.activity("acme", Kind.CONTACT)

    assert [line.action for line in both] == ["updated", "created"]
    assert [line.at for line in every] == [3.0, 2.0, 1.0]


async def test_activity_filters_by_link_and_limits(store: Store) -> None:
    for at in range(5):
        await store.log_activity("acme", Kind.INVOICE, "updated", link_id=None, qbo_id="qb-9", at=float(at))

    lines = await store.activity("acme", Kind.INVOICE, qbo_id="qb-9", limit=2)

    assert [line.at for line in lines] == [4.0, 3.0]
    assert await store.activity("acme", Kind.INVOICE, link_id=12345) == []


async def test_activity_detail_is_cut_short(store: Store) -> None:
    await store.log_activity("acme", Kind.CONTACT, "failed", hubspot_id="hs-1", detail="x" * 10_000)

    (line,) = await store.activity("acme", Kind.CONTACT, hubspot_id="hs-1")

    assert 0 < len(line.detail) <= 500


async def test_prune_removes_lines_older_than_the_cutoff(store: Store) -> None:
    for at in (1.0, 2.0, 3.0):
        await store.log_activity("acme", Kind.CONTACT, "updated", hubspot_id="hs-1", at=at)

    assert await store.prune_activity(older_than=3.0, keep=10) == 2
    assert [line.at for line in await store.activity("acme", Kind.CONTACT)] == [3.0]


async def test_prune_keeps_only_the_newest_lines_beyond_the_count(store: Store) -> None:
    for at in (1.0, 2.0, 3.0, 4.0):
        await store.log_activity("acme", Kind.CONTACT, "updated", hubspot_id="hs-1", at=at)

    assert await store.prune_activity(older_than=0.0, keep=2) == 2
    assert [line.at for line in await store.activity("acme", Kind.CONTACT)] == [4.0, 3.0]
    assert await store.prune_activity(older_than=0.0, keep=2) == 0


async def test_activity_stays_bounded_under_repeated_writes(store: Store) -> None:
    kept = []
    for round_ in range(4):
        for n in range(40):
            await store.log_activity("acme", Kind.CONTACT, "updated", hubspot_id=f"hs-{n}", at=float(round_ * 40 + n))
        await store.prune_activity(older_than=0.0, keep=60)
        kept.append(len(await store.activity("acme", Kind.CONTACT, limit=1000)))

    assert kept == [40, 60, 60, 60]


async def test_the_store_file_stays_the_same_size_under_repeated_writes(file_url: str) -> None:
    """Pruned lines' pages are reused: after the first rounds the SQLite file (its page count) grows no more."""
    pages = []
    async with open_store(file_url) as store:
        for _ in range(8):
            for n in range(100):
                await store.log_activity("acme", Kind.CONTACT, "updated", hubspot_id=f"hs-{n}", detail="x" * 200)
            await store.prune_activity(older_than=0.0, keep=200)
            await query(file_url, "PRAGMA wal_checkpoint(TRUNCATE)")
            [(count,)] = await query(file_url, "PRAGMA page_count")
            pages.append(count)

    assert pages[3:] == [pages[3]] * len(pages[3:]), pages

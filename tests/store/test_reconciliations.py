"""Reconciliation reports: kept per connection with their counts and drifted records, newest first, the oldest
pruned beyond the last `keep`."""

from __future__ import annotations

from shared.store import Reconciliation, Store

PHONE = {"field": "phone", "hubspot": "555-0100", "qbo": None}


def report(connection: str, started_at: float, *, drifted: int = 0) -> Reconciliation:
    return Reconciliation(
        connection=connection,
        started_at=started_at,
        finished_at=started_at + 2.5,
        objects={"contact": {"checked": 3, "agreed": 3 - drifted, "drifted": drifted, "missing": 0}},
        drifted=[
            {"kind": "contact", "hubspot_id": str(100 + n), "qbo_id": str(n + 1), "fields": [PHONE]}
            for n in range(drifted)
        ],
    )


async def test_a_report_is_kept_with_its_counts_and_drifted_fields(store: Store) -> None:
    saved = await store.save_reconciliation(report("acme", 1000.0, drifted=1), keep=5)

    assert saved.id is not None
    [last] = await store.reconciliations("acme")
    assert last == saved
    assert last.objects["contact"] == {"checked": 3, "agreed": 2, "drifted": 1, "missing": 0}
    assert last.drifted[0]["fields"] == [{"field": "phone", "hubspot": "555-0100", "qbo": None}]
    assert (last.started_at, last.finished_at, last.dry_run) == (1000.0, 1002.5, False)


async def test_the_newest_reports_come_first_per_connection(store: Store) -> None:
    for n in range(3):
        await store.save_reconciliation(report("acme", 1000.0 + n), keep=5)
    await store.save_reconciliation(report("other", 5000.0), keep=5)

    assert [r.started_at for r in await store.reconciliations("acme", limit=10)] == [1002.0, 1001.0, 1000.0]
    assert [r.connection for r in await store.reconciliations(limit=1)] == ["other"]
    assert await store.reconciliations("nobody") == []


async def test_reports_beyond_the_last_keep_are_pruned_per_connection(store: Store) -> None:
    await store.save_reconciliation(report("other", 1.0), keep=2)
    for n in range(5):
        await store.save_reconciliation(report("acme", 1000.0 + n), keep=2)

    assert [r.started_at for r in await store.reconciliations("acme", limit=10)] == [1004.0, 1003.0]
    assert len(await store.reconciliations("other", limit=10)) == 1  # another connection's reports stay


async def test_a_dry_run_report_says_so(store: Store) -> None:
    await store.save_reconciliation(Reconciliation(connection="acme", started_at=1.0, finished_at=2.0, dry_run=True),
                                    keep=5)  # fmt: skip
    [last] = await store.reconciliations("acme")
    assert last.dry_run
    assert (last.objects, last.drifted) == ({}, [])

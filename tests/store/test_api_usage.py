from __future__ import annotations

from shared.budget import ApiUsage, CallKind, UsageKey
from shared.domain import Provider
from shared.store import Store

READS = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.READ, "2026-12")
WRITES = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.WRITE, "2026-12")


async def test_counts_add_up_per_account_provider_kind_and_month(store: Store) -> None:
    assert await store.add_api_calls({READS: 3, WRITES: 1}) == {READS: 3, WRITES: 1}
    assert await store.add_api_calls({READS: 2}) == {READS: 5}  # another process's count adds to the total
    november = UsageKey(Provider.QUICKBOOKS, "9130", CallKind.READ, "2026-11")
    portal = UsageKey(Provider.HUBSPOT, "62515", CallKind.READ, "2026-12")
    await store.add_api_calls({november: 7, portal: 4})

    assert await store.api_usage("2026-12") == [
        ApiUsage(portal, 4), ApiUsage(READS, 5), ApiUsage(WRITES, 1),
    ]  # fmt: skip
    assert await store.api_usage("2026-12", provider=Provider.QUICKBOOKS, account="9130") == [
        ApiUsage(READS, 5), ApiUsage(WRITES, 1),
    ]  # fmt: skip
    assert await store.api_usage("2026-10") == []

"""The backfill: QBO by query (beyond CDC's 30 days) and HubSpot by search, from `since` or from the beginning; a dry
run counts and publishes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.poller._backfill import backfill, report
from shared.clients import Request, Response
from shared.domain import Provider
from shared.store import Store
from tests.clients.answers import json_answer, json_of, path_of, query_of
from tests.poller.conftest import poll_on

SINCE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def answers(request: Request) -> Response:
    """Two customers; one contact; nothing else."""
    if path_of(request).endswith("/query"):
        statement = dict(query_of(request))["query"]
        rows: list[dict[str, Any]] = [{"Id": "1", "SyncToken": "0"}, {"Id": "2", "SyncToken": "3"}]
        return json_answer(200, {"QueryResponse": {"Customer": rows} if "FROM Customer" in statement else {}})
    if path_of(request).endswith("/contacts/search"):
        stamp = "2025-06-01T00:00:00Z"
        return json_answer(200, {"total": 1, "results": [{"id": "7", "properties": {}, "updatedAt": stamp}]})
    return json_answer(200, {"total": 0, "results": []})


async def test_a_dry_run_counts_every_record_changed_since_and_publishes_nothing(store: Store) -> None:
    poll, queued, transport = poll_on(store, answers)
    tallies = await backfill(poll.ctx, None, since=SINCE)

    counts = {(t.provider, t.object_type): (t.found, t.in_sync, t.queued) for t in tallies}
    assert counts[Provider.QUICKBOOKS, "customer"] == (2, 0, 2)
    assert counts[Provider.HUBSPOT, "contact"] == (1, 0, 1)
    assert queued == []
    statements = [dict(query_of(r)).get("query", "") for r in transport.requests]
    [customer_query] = [statement for statement in statements if "FROM Customer" in statement]
    assert "MetaData.LastUpdatedTime >= '2025-01-01T00:00:00+00:00'" in customer_query
    [search] = [json_of(r) for r in transport.requests if path_of(r).endswith("/contacts/search")]
    assert search["filterGroups"][0]["filters"][0]["value"] == str(int(SINCE.timestamp() * 1000))
    assert "quickbooks  customer" in report(tallies)


async def test_a_backfill_publishes_what_is_not_in_sync(store: Store) -> None:
    poll, queued, _ = poll_on(store, answers)
    await backfill(poll.ctx, queued.publish, since=None)
    assert sorted((e.provider, e.object_id) for e in queued) == [
        (Provider.HUBSPOT, "7"), (Provider.QUICKBOOKS, "1"), (Provider.QUICKBOOKS, "2")
    ]  # fmt: skip
    # A first sync is no end-to-end lag: its changes carry no time (the worker observes none).
    assert {e.occurred_at_ms for e in queued} == {0}

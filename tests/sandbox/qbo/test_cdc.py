"""Change data capture (qbo-api.md §2): changedSince within 30 days, grouped per entity, deleted objects last."""

from __future__ import annotations

from hsqbo_sandbox._clock import SEED_AGE_SECONDS
from hsqbo_sandbox.qbo._timestamps import company_time
from tests.sandbox.qbo.conftest import QboHttp


async def test_cdc_returns_changes_since_and_deleted_objects_as_status_deleted(qbo: QboHttp) -> None:
    before = await qbo.customer("Before Ltd")
    item = await qbo.item("Widget")
    qbo.sandbox.clock.advance(60)
    since = qbo.sandbox.clock.now()
    after = await qbo.customer("After Ltd")
    invoice = await qbo.invoice(after["Id"], (item["Id"], 1, 10, "NON"))
    await qbo.ok("POST", "invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")

    answer = await qbo.ok("GET", "cdc", entities="Customer,Invoice", changedSince=company_time(since))
    customers, invoices = answer["CDCResponse"][0]["QueryResponse"]
    assert [c["Id"] for c in customers["Customer"]] == [after["Id"]]
    assert before["Id"] not in [c["Id"] for c in customers["Customer"]]
    deleted = invoices["Invoice"][0]
    assert (deleted["status"], deleted["Id"], deleted["domain"]) == ("Deleted", invoice["Id"], "QBO")
    assert set(deleted) == {"status", "domain", "Id", "MetaData"}
    assert "time" in answer


async def test_cdc_rejects_changed_since_older_than_30_days(qbo: QboHttp) -> None:

    too_old = company_time(qbo.sandbox.clock.now() - 31 * 86400)
    status, answer = await qbo.get("cdc", entities="Customer", changedSince=too_old)
    assert status == 400
    assert "30 days" in answer["Fault"]["Error"][0]["Detail"]


async def test_cdc_rejects_entities_it_does_not_support(qbo: QboHttp) -> None:
    status, _ = await qbo.get("cdc", entities="TaxCode", changedSince="2026-01-01")
    assert status == 400


async def test_cdc_answers_at_most_1000_objects(qbo: QboHttp) -> None:
    await qbo.control("POST", "seed", {"realm_id": "4620816365000001", "customers": 700, "items": 350, "invoices": 0})
    since = qbo.sandbox.clock.now() - SEED_AGE_SECONDS - 60  # seeded data predates the seeding

    answer = await qbo.ok("GET", "cdc", entities="Customer,Item", changedSince=company_time(since))
    customers, items = answer["CDCResponse"][0]["QueryResponse"]
    assert (len(customers["Customer"]), len(items["Item"])) == (700, 300)

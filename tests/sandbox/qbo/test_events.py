"""Webhooks (qbo-api.md §1): signed with intuit-signature, CloudEvents by default or classic, API writes included,
retried on Intuit's (compressed) schedule with head-of-line blocking per realm."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.signatures import verify_intuit
from tests.sandbox.conftest import WebhookSink
from tests.sandbox.qbo.conftest import REALM_ID, VERIFIER_TOKEN, QboHttp, payment_body


async def _delivered(qbo: QboHttp, sink: WebhookSink) -> list[Any]:
    assert await qbo.sandbox.webhooks.drain(5)
    return [orjson.loads(delivery.body) for delivery in sink.deliveries]


async def test_api_writes_emit_signed_cloudevents(qbo: QboHttp, webhook_sink: WebhookSink) -> None:
    customer = await qbo.customer("Acme Ltd")
    [batch] = await _delivered(qbo, webhook_sink)
    delivery = webhook_sink.deliveries[0]
    verify_intuit(VERIFIER_TOKEN, delivery.body, delivery.headers.get("intuit-signature"))
    assert delivery.headers["content-type"] == "application/cloudevents+json"
    [event] = batch
    assert event["type"] == "qbo.customer.created.v1"
    assert (event["intuitaccountid"], event["intuitentityid"]) == (REALM_ID, customer["Id"])
    assert (event["specversion"], event["data"]) == ("1.0", {})
    assert event["id"].endswith(f"-Customer-{customer['Id']}")
    assert event["time"].endswith("Z")


async def test_every_kind_of_change_has_its_verb(qbo: QboHttp, webhook_sink: WebhookSink) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    await qbo.ok("POST", "invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="void")
    await qbo.ok("POST", "invoice", {"Id": invoice["Id"], "SyncToken": "1"}, operation="delete")
    await qbo.ok("POST", "customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "x"})
    types = [event["type"] for batch in await _delivered(qbo, webhook_sink) for event in batch]
    assert types == ["qbo.customer.created.v1", "qbo.item.created.v1", "qbo.invoice.created.v1",
                     "qbo.invoice.voided.v1", "qbo.invoice.deleted.v1", "qbo.customer.updated.v1"]  # fmt: skip


async def test_payment_application_also_reports_the_invoice_update(qbo: QboHttp, webhook_sink: WebhookSink) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    await qbo.ok("POST", "payment", payment_body(customer["Id"], 10, (invoice["Id"], 10)))
    events = [event for batch in await _delivered(qbo, webhook_sink) for event in batch]
    assert [(e["type"], e["intuitentityid"]) for e in events[-2:]] == [
        ("qbo.payment.created.v1", "1"),
        ("qbo.invoice.updated.v1", invoice["Id"]),
    ]


async def test_user_merge_carries_the_deleted_id(qbo: QboHttp, webhook_sink: WebhookSink) -> None:
    keep = await qbo.customer("Acme Ltd")
    gone = await qbo.customer("Acme Limited")
    await qbo.control("POST", "user-edit", {"realm_id": REALM_ID, "entity": "Customer", "action": "merge",
                                            "data": {"survivor_id": keep["Id"], "merged_id": gone["Id"]}})  # fmt: skip
    merge = [event for batch in await _delivered(qbo, webhook_sink) for event in batch][-1]
    assert (merge["type"], merge["intuitentityid"], merge["data"]) == (
        "qbo.customer.merged.v1", keep["Id"], {"deletedid": gone["Id"]})  # fmt: skip


@pytest.mark.parametrize("webhook_format", ["classic"])
async def test_classic_format_is_event_notifications_per_realm(qbo: QboHttp, webhook_sink: WebhookSink) -> None:
    customer = await qbo.customer("Acme Ltd")
    await qbo.control("POST", "user-edit", {"realm_id": REALM_ID, "entity": "Customer", "action": "update",
                                            "data": {"Id": customer["Id"], "Notes": "edited in QBO"}})  # fmt: skip
    batches = await _delivered(qbo, webhook_sink)
    delivery = webhook_sink.deliveries[0]
    verify_intuit(VERIFIER_TOKEN, delivery.body, delivery.headers.get("intuit-signature"))
    entities = [
        entity
        for batch in batches
        for notification in batch["eventNotifications"]
        for entity in notification["dataChangeEvent"]["entities"]
    ]
    assert {n["realmId"] for batch in batches for n in batch["eventNotifications"]} == {REALM_ID}
    assert [(e["name"], e["id"], e["operation"]) for e in entities] == [
        ("Customer", customer["Id"], "Create"),
        ("Customer", customer["Id"], "Update"),
    ]
    assert entities[0]["lastUpdated"].endswith("Z")


async def test_unacknowledged_delivery_is_resent_with_the_same_ids_and_holds_back_later_events(
    qbo: QboHttp, webhook_sink: WebhookSink
) -> None:
    webhook_sink.statuses = [500, 202]  # only a 200 acknowledges
    await qbo.customer("First Ltd")
    await webhook_sink.wait_for(1)
    await qbo.customer("Second Ltd")
    batches = await _delivered(qbo, webhook_sink)
    ids = [[event["id"] for event in batch] for batch in batches]
    assert ids[0] == ids[1] == ids[2]
    assert [d.status for d in webhook_sink.deliveries[:3]] == [500, 202, 200]
    assert [event["type"] for event in batches[3]] == ["qbo.customer.created.v1"]
    assert len(batches) == 4


async def test_retry_schedule_is_intuits_times_the_retry_scale(qbo: QboHttp) -> None:
    assert qbo.sandbox.webhooks.retry_delays == pytest.approx(
        [0.001 * d for d in (10, 20, 30, 300, 1200, 7200, 14400, 21600)]
    )
    assert qbo.sandbox.webhooks.max_attempts is None
    assert qbo.sandbox.webhooks.ack_timeout_seconds == 3.0


async def test_imported_history_predates_now_and_sends_no_webhook(qbo: QboHttp, webhook_sink: WebhookSink) -> None:
    ids = qbo.sandbox.import_history(REALM_ID, "Customer", [{"DisplayName": "Old Co"}, {"DisplayName": "Older Co"}])
    records = qbo.sandbox.realms[REALM_ID].records["Customer"]
    assert [records[customer_id].data["DisplayName"] for customer_id in ids] == ["Old Co", "Older Co"]
    assert all(records[customer_id].updated < qbo.sandbox.clock.now() - 60 for customer_id in ids)
    assert await _delivered(qbo, webhook_sink) == []

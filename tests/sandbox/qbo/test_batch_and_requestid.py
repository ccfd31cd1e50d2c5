"""Batch (qbo-api.md §6.2) and requestid idempotency (§6.1)."""

from __future__ import annotations

from tests.sandbox.qbo.conftest import QboHttp


async def test_batch_answers_each_item_with_its_entity_or_its_own_fault_in_a_200(qbo: QboHttp) -> None:
    existing = await qbo.customer("Acme Ltd")
    body = {"BatchItemRequest": [
        {"bId": "c1", "operation": "create", "Customer": {"DisplayName": "Acme Ltd"}},
        {"bId": "c2", "operation": "create", "Customer": {"DisplayName": "Globex"}},
        {"bId": "u1", "operation": "update", "Customer": {"Id": existing["Id"], "SyncToken": "7", "sparse": True}},
        {"bId": "q1", "Query": "select * from Customer where DisplayName = 'Acme Ltd'"},
    ]}  # fmt: skip
    answer = await qbo.ok("POST", "batch", body)
    by_id = {item["bId"]: item for item in answer["BatchItemResponse"]}
    assert by_id["c1"]["Fault"]["Error"][0]["code"] == "6240"
    assert by_id["c2"]["Customer"]["DisplayName"] == "Globex"
    assert by_id["u1"]["Fault"]["Error"][0]["code"] == "5010"
    assert by_id["q1"]["QueryResponse"]["Customer"][0]["Id"] == existing["Id"]


async def test_batch_void_is_an_update_with_options_data_void(qbo: QboHttp) -> None:
    customer = await qbo.customer("Acme Ltd")
    item = await qbo.item("Widget")
    invoice = await qbo.invoice(customer["Id"], (item["Id"], 1, 10, "NON"))
    body = {"BatchItemRequest": [{"bId": "v", "operation": "update", "optionsData": "void",
                                  "Invoice": {"Id": invoice["Id"], "SyncToken": "0"}}]}  # fmt: skip
    answer = await qbo.ok("POST", "batch", body)
    assert answer["BatchItemResponse"][0]["Invoice"]["TotalAmt"] == 0.0


async def test_batch_of_more_than_30_items_is_refused(qbo: QboHttp) -> None:
    items = [{"bId": str(n), "Query": "select * from Customer"} for n in range(31)]
    status, answer = await qbo.post("batch", {"BatchItemRequest": items})
    assert status == 400
    assert "Fault" in answer


async def test_repeated_requestid_returns_the_original_answer_and_changes_nothing(qbo: QboHttp) -> None:
    first = await qbo.ok("POST", "customer", {"DisplayName": "Acme Ltd"}, requestid="req-1")
    again = await qbo.ok("POST", "customer", {"DisplayName": "Acme Ltd"}, requestid="req-1")
    assert again == first
    assert await qbo.query("select count(*) from Customer") == {"totalCount": 1}
    other = await qbo.post("customer", {"DisplayName": "Acme Ltd"}, requestid="req-2")
    assert other[0] == 400


async def test_repeated_requestid_replays_a_fault_too(qbo: QboHttp) -> None:
    await qbo.customer("Acme Ltd")
    first = await qbo.post("customer", {"DisplayName": "Acme Ltd"}, requestid="dup")
    await qbo.ok("POST", "customer", {"Id": "1", "SyncToken": "0", "sparse": True, "DisplayName": "Renamed"})
    assert await qbo.post("customer", {"DisplayName": "Acme Ltd"}, requestid="dup") == first


async def test_requestid_longer_than_50_characters_is_refused(qbo: QboHttp) -> None:
    status, _ = await qbo.post("customer", {"DisplayName": "Acme Ltd"}, requestid="x" * 51)
    assert status == 400

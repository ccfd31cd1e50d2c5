"""QboClient: paths, `minorversion` and `requestid` on every call, write bodies, query escaping and paging, CDC and
batch answers, Faults inside a 200; creates and finds of concurrent applies in one call, a batch of creates resent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.clients import (
    BatchOperation,
    Coalescer,
    MockTransport,
    QboClient,
    Request,
    Response,
    StaticToken,
    qbo_quote,
)
from shared.clients.qbo import CREATE_RESENDS
from shared.errors import DuplicateName, StaleObject, TransportError, ValidationFailed
from tests.clients.answers import json_answer, json_of, path_of, query_of, scripted

BASE = "https://quickbooks.api.intuit.com"
COMPANY = "/v3/company/9130"


def _client(*answers: Response) -> tuple[QboClient, MockTransport]:
    transport = MockTransport(scripted(*answers))
    return QboClient(BASE, "9130", StaticToken("jwt"), transport), transport


def _customer(customer_id: str = "58", sync_token: str = "0", **fields: object) -> dict[str, object]:
    return {"Id": customer_id, "SyncToken": sync_token, "DisplayName": "Acme Ltd", **fields}


# --- query literals -------------------------------------------------------------------------------------------------


def test_qbo_quote_escapes_quotes_in_names() -> None:
    assert qbo_quote("Bill's Windsurf Shop") == r"'Bill\'s Windsurf Shop'"


def test_qbo_quote_escapes_backslashes_before_quotes() -> None:
    assert qbo_quote("a\\'b") == r"'a\\\'b'"
    assert qbo_quote("") == "''"


def _unquote(literal: str) -> str:
    """Read a literal back the way QBO's parser does: backslash takes the next character as is."""
    assert literal[0] == literal[-1] == "'"
    out, chars = [], iter(literal[1:-1])
    for char in chars:
        if char == "'":
            raise AssertionError("unescaped quote ends the literal early")
        out.append(next(chars) if char == "\\" else char)
    return "".join(out)


@given(st.text())
def test_qbo_quote_round_trips_any_text(value: str) -> None:
    assert _unquote(qbo_quote(value)) == value


# --- single records -------------------------------------------------------------------------------------------------


async def test_read_gets_the_lower_case_entity_path_with_minorversion() -> None:
    client, transport = _client(json_answer(200, {"Customer": _customer(), "time": "2026-01-01T00:00:00-08:00"}))
    customer = await client.read("Customer", "58")
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("GET", f"{COMPANY}/customer/58")
    assert query_of(request) == [("minorversion", "75")]
    assert request.headers["Authorization"] == "Bearer jwt"
    assert request.headers["Accept"] == "application/json"
    assert customer["DisplayName"] == "Acme Ltd"


async def test_create_posts_the_body_with_requestid() -> None:
    client, transport = _client(json_answer(200, {"Customer": _customer()}))
    created = await client.create("Customer", {"DisplayName": "Acme Ltd"}, request_id="5f0c0a8e-1")
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("POST", f"{COMPANY}/customer")
    assert query_of(request) == [("requestid", "5f0c0a8e-1"), ("minorversion", "75")]
    assert json_of(request) == {"DisplayName": "Acme Ltd"}
    assert created["Id"] == "58"


async def test_update_is_sparse_by_default_and_carries_id_and_sync_token() -> None:
    client, transport = _client(json_answer(200, {"Customer": _customer(sync_token="1")}))
    updated = await client.update("Customer", {"Id": "58", "SyncToken": "0", "Notes": "x"}, request_id="r1")
    assert json_of(transport.requests[0]) == {"Id": "58", "SyncToken": "0", "Notes": "x", "sparse": True}
    assert updated["SyncToken"] == "1"


async def test_full_update_says_sparse_false() -> None:
    client, transport = _client(json_answer(200, {"Customer": _customer()}))
    await client.update("Customer", _customer(), request_id="r1", sparse=False)
    assert json_of(transport.requests[0])["sparse"] is False


async def test_stale_sync_token_raises_stale_object() -> None:
    fault = {"Fault": {"Error": [{"Message": "Stale Object Error", "code": "5010"}], "type": "ValidationFault"}}
    client, _ = _client(json_answer(400, fault))
    with pytest.raises(StaleObject):
        await client.update("Customer", {"Id": "58", "SyncToken": "0"}, request_id="r1")


async def test_fault_inside_a_200_is_raised() -> None:
    fault = {
        "Fault": {"Error": [{"Message": "Duplicate Name Exists Error", "code": "6240"}], "type": "ValidationFault"}
    }
    client, _ = _client(json_answer(200, fault))
    with pytest.raises(DuplicateName):
        await client.create("Customer", {"DisplayName": "Acme Ltd"}, request_id="r1")


async def test_delete_posts_operation_delete_with_id_and_sync_token() -> None:
    answer = {"Invoice": {"status": "Deleted", "domain": "QBO", "Id": "33"}, "time": "2026-01-01T00:00:00-08:00"}
    client, transport = _client(json_answer(200, answer))
    deleted = await client.delete("Invoice", "33", "3", request_id="r1")
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("POST", f"{COMPANY}/invoice")
    assert query_of(request) == [("operation", "delete"), ("requestid", "r1"), ("minorversion", "75")]
    assert json_of(request) == {"Id": "33", "SyncToken": "3"}
    assert deleted["status"] == "Deleted"


async def test_void_invoice_posts_operation_void() -> None:
    client, transport = _client(json_answer(200, {"Invoice": {"Id": "129", "SyncToken": "1", "TotalAmt": 0}}))
    await client.void("Invoice", "129", "0", request_id="r1")
    assert query_of(transport.requests[0]) == [("operation", "void"), ("requestid", "r1"), ("minorversion", "75")]
    assert json_of(transport.requests[0]) == {"Id": "129", "SyncToken": "0"}


async def test_void_payment_is_a_sparse_update_with_include_void() -> None:
    client, transport = _client(json_answer(200, {"Payment": {"Id": "33", "SyncToken": "2"}}))
    await client.void("Payment", "33", "1", request_id="r1")
    assert query_of(transport.requests[0]) == [
        ("operation", "update"),
        ("include", "void"),
        ("requestid", "r1"),
        ("minorversion", "75"),
    ]
    assert json_of(transport.requests[0]) == {"Id": "33", "SyncToken": "1", "sparse": True}


@pytest.mark.parametrize("request_id", ["", "x" * 51])
async def test_request_id_must_be_1_to_50_characters(request_id: str) -> None:
    client, transport = _client()
    with pytest.raises(ValueError, match="requestid"):
        await client.create("Customer", {}, request_id=request_id)
    assert transport.requests == []


# --- queries --------------------------------------------------------------------------------------------------------


async def test_query_sends_the_statement_and_returns_the_rows() -> None:
    answer = {"QueryResponse": {"Customer": [_customer()], "startPosition": 1, "maxResults": 1}}
    client, transport = _client(json_answer(200, answer))
    statement = "SELECT * FROM Customer WHERE DisplayName = " + qbo_quote("Bill's Shop")
    rows = await client.query(statement)
    (request,) = transport.requests
    assert path_of(request) == f"{COMPANY}/query"
    assert query_of(request) == [("query", statement), ("minorversion", "75")]
    assert "%27" in request.url  # the quote is percent-encoded, not sent raw
    assert rows == [_customer()]


async def test_query_without_rows_returns_an_empty_list() -> None:
    client, _ = _client(json_answer(200, {"QueryResponse": {}, "time": "2026-01-01T00:00:00-08:00"}))
    assert await client.query("SELECT * FROM Customer WHERE Id = '0'") == []


def _items(*ids: str) -> Response:
    return json_answer(200, {"QueryResponse": {"Item": [{"Id": i} for i in ids]}})


async def test_query_all_pages_with_startposition_and_maxresults() -> None:
    client, transport = _client(_items("1", "2"), _items("3", "4"), _items("5"))
    rows = [row["Id"] async for row in client.query_all("Item", where="Active = true", order_by="Id", page_size=2)]
    assert rows == ["1", "2", "3", "4", "5"]
    statements = [dict(query_of(request))["query"] for request in transport.requests]
    assert statements == [
        "SELECT * FROM Item WHERE Active = true ORDER BY Id STARTPOSITION 1 MAXRESULTS 2",
        "SELECT * FROM Item WHERE Active = true ORDER BY Id STARTPOSITION 3 MAXRESULTS 2",
        "SELECT * FROM Item WHERE Active = true ORDER BY Id STARTPOSITION 5 MAXRESULTS 2",
    ]


async def test_query_all_stops_after_an_exactly_full_last_page_with_an_empty_one() -> None:
    client, transport = _client(_items("1"), json_answer(200, {"QueryResponse": {}}))
    assert [row async for row in client.query_all("Item", page_size=1)] == [{"Id": "1"}]
    assert len(transport.requests) == 2


async def test_query_all_caps_pages_at_1000() -> None:
    client, transport = _client(json_answer(200, {"QueryResponse": {}}))
    assert [row async for row in client.query_all("Customer", page_size=5000)] == []
    assert dict(query_of(transport.requests[0]))["query"] == "SELECT * FROM Customer STARTPOSITION 1 MAXRESULTS 1000"


async def test_count_reads_total_count() -> None:
    client, transport = _client(json_answer(200, {"QueryResponse": {"totalCount": 42}}))
    assert await client.count("Invoice", where="Balance > '0'") == 42
    assert dict(query_of(transport.requests[0]))["query"] == "SELECT COUNT(*) FROM Invoice WHERE Balance > '0'"


# --- change data capture --------------------------------------------------------------------------------------------


async def test_cdc_groups_changes_per_entity_including_deleted_ones() -> None:
    answer = {
        "CDCResponse": [
            {
                "QueryResponse": [
                    {"Customer": [{"Id": "63"}, {"Id": "99"}], "startPosition": 1, "maxResults": 2},
                    {
                        "Invoice": [
                            {"Id": "34"},
                            {"status": "Deleted", "domain": "QBO", "Id": "979", "MetaData": {"LastUpdatedTime": "x"}},
                        ],
                        "startPosition": 1,
                        "maxResults": 2,
                    },
                ]
            }
        ],
        "time": "2015-12-23T12:56:06.196-08:00",
    }
    client, transport = _client(json_answer(200, answer))
    since = datetime(2015, 12, 22, 12, 0, tzinfo=timezone(timedelta(hours=-8)))
    result = await client.cdc(["Customer", "Invoice", "Payment"], since)
    assert path_of(transport.requests[0]) == f"{COMPANY}/cdc"
    assert query_of(transport.requests[0]) == [
        ("entities", "Customer,Invoice,Payment"),
        ("changedSince", "2015-12-22T12:00:00-08:00"),
        ("minorversion", "75"),
    ]
    assert [c["Id"] for c in result.entities["Customer"]] == ["63", "99"]
    assert result.entities["Invoice"][1]["status"] == "Deleted"
    assert result.entities["Payment"] == []
    assert result.time == datetime(2015, 12, 23, 20, 56, 6, 196000, tzinfo=UTC)


async def test_cdc_refuses_a_naive_datetime() -> None:
    client, _ = _client()
    with pytest.raises(ValueError, match="time zone"):
        await client.cdc(["Customer"], datetime(2026, 1, 1))


# --- batch ----------------------------------------------------------------------------------------------------------


async def test_batch_sends_items_and_returns_per_item_results_and_errors() -> None:
    answer = {
        "BatchItemResponse": [
            {
                "bId": "c1",
                "Fault": {
                    "Error": [
                        {"Message": "Duplicate Name Exists Error", "Detail": "in use", "code": "6240", "element": ""}
                    ],
                    "type": "ValidationFault",
                },
            },
            {"bId": "i1", "Invoice": {"Id": "238", "SyncToken": "1"}},
            {"bId": "q1", "QueryResponse": {"Customer": [{"Id": "58"}], "startPosition": 1, "maxResults": 1}},
            {"bId": "v1", "Invoice": {"Id": "129", "SyncToken": "1"}},
            {"bId": "d1", "Fault": {"Error": [{"Message": "x", "code": "2020"}], "type": "ValidationFault"}},
        ],
        "time": "2026-10-09T08:00:00.000-07:00",
    }
    client, transport = _client(json_answer(200, answer))
    results = await client.batch(
        [
            BatchOperation.create("c1", "Customer", {"DisplayName": "Acme Ltd"}),
            BatchOperation.update("i1", "Invoice", {"Id": "238", "SyncToken": "0", "DueDate": "2026-10-30"}),
            BatchOperation.query("q1", "SELECT * FROM Customer WHERE DisplayName = 'Acme Ltd'"),
            BatchOperation.void("v1", "Invoice", "129", "0"),
            BatchOperation.delete("d1", "Invoice", "33", "3"),
        ],
        request_id="batch-1",
    )
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("POST", f"{COMPANY}/batch")
    assert query_of(request) == [("requestid", "batch-1"), ("minorversion", "75")]
    assert json_of(request) == {
        "BatchItemRequest": [
            {"bId": "c1", "operation": "create", "Customer": {"DisplayName": "Acme Ltd"}},
            {
                "bId": "i1",
                "operation": "update",
                "Invoice": {"Id": "238", "SyncToken": "0", "DueDate": "2026-10-30", "sparse": True},
            },
            {"bId": "q1", "Query": "SELECT * FROM Customer WHERE DisplayName = 'Acme Ltd'"},
            {"bId": "v1", "operation": "update", "Invoice": {"Id": "129", "SyncToken": "0"}, "optionsData": "void"},
            {"bId": "d1", "operation": "delete", "Invoice": {"Id": "33", "SyncToken": "3"}},
        ]
    }
    assert isinstance(results["c1"], DuplicateName)
    assert results["c1"].status == 200
    assert results["i1"] == {"Id": "238", "SyncToken": "1"}
    assert results["q1"] == [{"Id": "58"}]
    assert isinstance(results["d1"], ValidationFailed)


@pytest.mark.parametrize("size", [0, 31])
async def test_batch_holds_1_to_30_operations(size: int) -> None:
    client, _ = _client()
    operations = [BatchOperation.query(str(n), "SELECT * FROM Item") for n in range(size)]
    with pytest.raises(ValueError, match="1 to 30"):
        await client.batch(operations, request_id="b")


async def test_batch_request_id_is_at_most_36_characters() -> None:
    client, _ = _client()
    with pytest.raises(ValueError, match="requestid"):
        await client.batch([BatchOperation.query("q", "SELECT * FROM Item")], request_id="x" * 37)


async def test_updates_of_a_batch_refused_as_a_whole_go_again_one_by_one() -> None:
    def answer(request: Request) -> Response:
        if path_of(request).endswith("/batch"):
            return json_answer(400, {"Fault": {"Error": [{"Message": "Request is invalid", "code": "2010"}],
                                               "type": "ValidationFault"}})  # fmt: skip
        body = json_of(request)
        if body["Id"] == "2":
            return json_answer(400, {"Fault": {"Error": [{"Message": "Stale", "code": "5010"}],
                                               "type": "ValidationFault"}})  # fmt: skip
        return json_answer(200, {"Customer": {**body, "SyncToken": "1"}})

    transport = MockTransport(answer)
    qbo = QboClient("https://qbo.test", "9130", StaticToken("t"), transport, coalescer=Coalescer())
    updated = await asyncio.gather(
        *(qbo.update("Customer", {"Id": i, "SyncToken": "0"}, request_id=f"r{i}") for i in ("1", "2", "3")),
        return_exceptions=True,
    )
    assert [u["Id"] if isinstance(u, dict) else type(u) for u in updated] == ["1", StaleObject, "3"]
    assert [path_of(r).rsplit("/", 1)[-1] for r in transport.requests] == ["batch", "customer", "customer", "customer"]


# --- creates and finds of concurrent applies ------------------------------------------------------------------------

DUPLICATE_NAME = {"Error": [{"Message": "Duplicate Name Exists Error", "code": "6240"}], "type": "ValidationFault"}


def _batched(answer: object) -> tuple[QboClient, MockTransport]:
    transport = MockTransport(answer)  # type: ignore[arg-type]
    return QboClient("https://qbo.test", "9130", StaticToken("t"), transport, coalescer=Coalescer()), transport


def _created(request: Request, *, taken: str = "") -> Response:
    """A batch of creates carried out: each item made (Id 100 + its bId), or refused when its DisplayName is `taken`."""
    items = []
    for item in json_of(request)["BatchItemRequest"]:
        if item["Customer"]["DisplayName"] == taken:
            items.append({"bId": item["bId"], "Fault": DUPLICATE_NAME})
        else:
            items.append({"bId": item["bId"], "Customer": {**item["Customer"], "Id": str(100 + int(item["bId"]))}})
    return json_answer(200, {"BatchItemResponse": items})


async def _create_three(qbo: QboClient, *, entity: str = "Customer") -> list[object]:
    return await asyncio.gather(
        *(qbo.create(entity, {"DisplayName": name}, request_id=f"r-{name}") for name in ("A", "B", "C")),
        return_exceptions=True,
    )


async def test_concurrent_creates_meet_in_one_batch_each_with_its_own_answer_or_refusal() -> None:
    qbo, transport = _batched(lambda request: _created(request, taken="B"))
    made = await _create_three(qbo)
    assert [m["DisplayName"] if isinstance(m, dict) else type(m) for m in made] == ["A", DuplicateName, "C"]
    (request,) = transport.requests
    assert path_of(request).endswith("/batch")
    assert [item["operation"] for item in json_of(request)["BatchItemRequest"]] == ["create"] * 3
    again, resent = _batched(lambda request: _created(request, taken="B"))
    await _create_three(again)
    assert query_of(resent.requests[0]) == query_of(request)  # the same items: the same batch requestid


async def test_a_batch_of_creates_that_got_no_answer_is_resent_identical_and_its_first_answer_serves() -> None:
    sent: list[Request] = []

    def answer(request: Request) -> Response:
        sent.append(request)
        if len(sent) == 1:
            raise TimeoutError("no answer")  # QBO may have made them
        return _created(request)

    qbo, transport = _batched(answer)
    made = await _create_three(qbo)
    assert [m["Id"] for m in made if isinstance(m, dict)] == ["101", "102", "103"]
    first, second = transport.requests
    assert (query_of(first), first.body) == (query_of(second), second.body)


async def test_a_resent_batchs_duplicate_name_fails_as_a_conflict_for_the_retry_to_look() -> None:
    sent: list[Request] = []

    def answer(request: Request) -> Response:
        sent.append(request)
        if len(sent) == 1:
            return json_answer(503, {"Fault": {"Error": [{"Message": "down", "code": "10000"}], "type": "SystemFault"}})
        return _created(request, taken="B")  # the first send made B after all, and QBO did not replay it

    qbo, _ = _batched(answer)
    made = await _create_three(qbo)
    assert isinstance(made[1], StaleObject)
    assert not isinstance(made[1], DuplicateName)


async def test_a_batch_of_creates_unanswered_every_time_fails_every_caller_after_the_resends() -> None:
    def answer(request: Request) -> Response:
        raise ConnectionResetError("reset")

    qbo, transport = _batched(answer)
    made = await _create_three(qbo)
    assert all(isinstance(m, TransportError) for m in made)
    assert len(transport.requests) == 1 + CREATE_RESENDS
    assert len({(tuple(query_of(r)), r.body) for r in transport.requests}) == 1


async def test_a_lone_create_is_the_single_call_and_invoice_creates_stay_single() -> None:
    def answer(request: Request) -> Response:
        entity = path_of(request).rsplit("/", 1)[-1].capitalize()
        return json_answer(200, {entity: {**json_of(request), "Id": "7", "SyncToken": "0"}})

    qbo, transport = _batched(answer)
    assert (await qbo.create("Customer", {"DisplayName": "A"}, request_id="r-A"))["Id"] == "7"
    await _create_three(qbo, entity="Invoice")
    assert [path_of(r).rsplit("/", 1)[-1] for r in transport.requests] == ["customer", *["invoice"] * 3]
    assert query_of(transport.requests[0])[0] == ("requestid", "r-A")


async def test_concurrent_finds_meet_in_one_in_query_and_each_gets_the_rows_of_its_key() -> None:
    rows = [
        _customer("1", PrimaryEmailAddr={"Address": "Ann@Example.com"}),
        _customer("2", PrimaryEmailAddr={"Address": "bo@example.com"}, Active=False),
        _customer("3", PrimaryEmailAddr={"Address": "ann@example.com"}),
    ]
    qbo, transport = _batched(lambda request: json_answer(200, {"QueryResponse": {"Customer": rows}}))
    found = await asyncio.gather(
        *(qbo.find("Customer", "PrimaryEmailAddr", email) for email in ("ann@example.com", "bo@example.com", "x@y.z"))
    )
    assert [[row["Id"] for row in rows] for rows in found] == [["1", "3"], ["2"], []]
    (request,) = transport.requests
    assert dict(query_of(request))["query"] == (
        "SELECT * FROM Customer WHERE PrimaryEmailAddr IN ('ann@example.com', 'bo@example.com', 'x@y.z')"
        " AND Active IN (true, false) ORDER BY Id MAXRESULTS 1000"
    )

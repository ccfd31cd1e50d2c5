"""HubSpotClient: request shapes of the CRM v3 objects, v4 associations and v3 properties endpoints, result parsing,
paging, batch partial failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from shared.clients import (
    Coalescer,
    HubSpotClient,
    HubSpotObject,
    MockTransport,
    NewAssociation,
    Request,
    Response,
    StaticToken,
)
from shared.errors import Conflict, NotFound, ServerError
from tests.clients.answers import json_answer, json_of, path_of, query_of, scripted

BASE = "https://api.hubapi.com"


def _record(record_id: str, **properties: str | None) -> dict[str, object]:
    return {
        "id": record_id,
        "properties": {"hs_object_id": record_id, **properties},
        "createdAt": "2026-01-05T10:00:00.000Z",
        "updatedAt": "2026-01-06T09:30:00.000Z",
        "archived": False,
    }


def _client(*answers: Response) -> tuple[HubSpotClient, MockTransport]:
    transport = MockTransport(scripted(*answers))
    return HubSpotClient(BASE, StaticToken("pat-na1-x"), transport), transport


def test_object_parses_timestamps_properties_and_deduplicated_associations() -> None:
    data = {
        **_record("512", email="jane@example.com", phone=None),
        "associations": {
            "companies": {
                "results": [
                    {"id": "9", "type": "contact_to_company"},
                    {"id": "9", "type": "contact_to_company_unlabeled"},
                    {"id": "10", "type": "contact_to_company_unlabeled"},
                ]
            }
        },
    }
    record = HubSpotObject.from_json(data)
    assert record.id == "512"
    assert record.properties["email"] == "jane@example.com"
    assert record.properties["phone"] is None
    assert record.created_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 1, 6, 9, 30, tzinfo=UTC)
    assert record.associations == {"companies": ["9", "10"]}
    assert record.archived is False


async def test_get_by_unique_property_sends_repeated_properties_and_id_property() -> None:
    client, transport = _client(json_answer(200, _record("512", email="jane@example.com")))
    record = await client.get(
        "contacts", "jane@example.com", properties=["email", "qbo_id"], associations=["companies"], id_property="email"
    )
    (request,) = transport.requests
    assert request.method == "GET"
    assert path_of(request) == "/crm/v3/objects/contacts/jane%40example.com"
    assert query_of(request) == [
        ("properties", "email"),
        ("properties", "qbo_id"),
        ("associations", "companies"),
        ("idProperty", "email"),
    ]
    assert request.headers["Authorization"] == "Bearer pat-na1-x"
    assert record.properties["email"] == "jane@example.com"


async def test_get_missing_record_raises_not_found() -> None:
    client, _ = _client(
        json_answer(404, {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"})
    )
    with pytest.raises(NotFound):
        await client.get("contacts", "1")


async def test_create_posts_properties_and_associations() -> None:
    client, transport = _client(json_answer(201, _record("77", hs_currency="USD")))
    record = await client.create(
        "invoices", {"hs_currency": "USD"}, associations=[NewAssociation("512", 177), NewAssociation("9", 179)]
    )
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("POST", "/crm/v3/objects/invoices")
    assert json_of(request) == {
        "properties": {"hs_currency": "USD"},
        "associations": [
            {"to": {"id": "512"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 177}]},
            {"to": {"id": "9"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 179}]},
        ],
    }
    assert record.id == "77"


async def test_create_duplicate_contact_raises_conflict_with_existing_id() -> None:
    body = {"status": "error", "message": "Contact already exists. Existing ID: 12345", "category": "CONFLICT"}
    client, _ = _client(json_answer(409, body))
    with pytest.raises(Conflict) as caught:
        await client.create("contacts", {"email": "jane@example.com"})
    assert caught.value.existing_id == "12345"


async def test_update_patches_properties_optionally_by_unique_property() -> None:
    client, transport = _client(json_answer(200, _record("512", firstname="Jane")))
    await client.update("contacts", "58", {"firstname": "Jane", "phone": ""}, id_property="qbo_customer_id")
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("PATCH", "/crm/v3/objects/contacts/58")
    assert query_of(request) == [("idProperty", "qbo_customer_id")]
    assert json_of(request) == {"properties": {"firstname": "Jane", "phone": ""}}


async def test_archive_deletes_and_accepts_204() -> None:
    client, transport = _client(Response(204, {}, b""))
    await client.archive("contacts", "512")
    assert (transport.requests[0].method, path_of(transport.requests[0])) == ("DELETE", "/crm/v3/objects/contacts/512")


async def test_batch_read_chunks_by_100_and_reports_missing_ids() -> None:
    ids = [str(n) for n in range(150)]
    partial = {
        "status": "COMPLETE",
        "results": [_record("1")],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
                "context": {"ids": ["999"]},
            }
        ],
    }
    client, transport = _client(
        json_answer(207, partial), json_answer(200, {"status": "COMPLETE", "results": [_record("120")]})
    )
    batch = await client.batch_read("contacts", ids, properties=["email"], id_property="qbo_customer_id")
    first, second = (json_of(request) for request in transport.requests)
    assert path_of(transport.requests[0]) == "/crm/v3/objects/contacts/batch/read"
    assert len(first["inputs"]) == 100
    assert len(second["inputs"]) == 50
    assert first["inputs"][0] == {"id": "0"}
    assert first["properties"] == ["email"]
    assert first["idProperty"] == "qbo_customer_id"
    assert [record.id for record in batch.results] == ["1", "120"]
    (error,) = batch.errors
    assert isinstance(error, NotFound)
    assert error.ids == ("999",)


async def test_batch_upsert_keys_inputs_by_unique_property_and_trace_id() -> None:
    answer = {"status": "COMPLETE", "results": [{**_record("512"), "new": True}]}
    client, transport = _client(json_answer(200, answer))
    batch = await client.batch_upsert("contacts", "qbo_customer_id", {"58": {"email": "jane@example.com"}})
    assert path_of(transport.requests[0]) == "/crm/v3/objects/contacts/batch/upsert"
    assert json_of(transport.requests[0]) == {
        "inputs": [
            {
                "id": "58",
                "idProperty": "qbo_customer_id",
                "properties": {"email": "jane@example.com"},
                "objectWriteTraceId": "58",
            }
        ]
    }
    assert batch.results[0].new is True
    assert batch.errors == []


async def test_search_sends_filters_sorts_and_cursor() -> None:
    page = {"total": 3, "results": [_record("1")], "paging": {"next": {"after": "1"}}}
    client, transport = _client(json_answer(200, page))
    filters = [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1700000000000"}]}]
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    result = await client.search(
        "companies", filter_groups=filters, properties=["name"], sorts=sorts, limit=500, after="0"
    )
    assert path_of(transport.requests[0]) == "/crm/v3/objects/companies/search"
    assert json_of(transport.requests[0]) == {
        "filterGroups": filters,
        "properties": ["name"],
        "sorts": sorts,
        "limit": 200,  # HubSpot's maximum page
        "after": "0",
    }
    assert (result.total, result.after, [r.id for r in result.results]) == (3, "1", ["1"])


async def test_search_all_follows_the_cursor_to_the_last_page() -> None:
    client, transport = _client(
        json_answer(200, {"total": 3, "results": [_record("1"), _record("2")], "paging": {"next": {"after": "2"}}}),
        json_answer(200, {"total": 3, "results": [_record("3")]}),
    )
    found = [record.id async for record in client.search_all("contacts", page_size=2)]
    assert found == ["1", "2", "3"]
    assert "after" not in json_of(transport.requests[0])
    assert json_of(transport.requests[1])["after"] == "2"


async def test_list_associations_pages_through_v4() -> None:
    def item(to_id: int, type_id: int, label: str | None) -> dict[str, object]:
        return {
            "toObjectId": to_id,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}],
        }

    client, transport = _client(
        json_answer(200, {"results": [item(9, 1, "Primary")], "paging": {"next": {"after": "abc"}}}),
        json_answer(200, {"results": [item(10, 279, None)]}),
    )
    found = await client.list_associations("contacts", "512", "companies")
    assert path_of(transport.requests[0]) == "/crm/v4/objects/contacts/512/associations/companies"
    assert query_of(transport.requests[0]) == [("limit", "500")]
    assert query_of(transport.requests[1]) == [("limit", "500"), ("after", "abc")]
    assert [(a.to_id, a.types[0].type_id, a.types[0].label) for a in found] == [("9", 1, "Primary"), ("10", 279, None)]


async def test_associate_with_a_type_puts_the_label_spec() -> None:
    client, transport = _client(json_answer(201, {}))
    await client.associate("invoices", "77", "line_items", "5", type_id=409)
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("PUT", "/crm/v4/objects/invoices/77/associations/line_items/5")
    assert json_of(request) == [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 409}]


async def test_associate_without_a_type_uses_the_default_association() -> None:
    client, transport = _client(json_answer(200, {}))
    await client.associate("contacts", "512", "companies", "9")
    (request,) = transport.requests
    assert (request.method, path_of(request)) == (
        "PUT",
        "/crm/v4/objects/contacts/512/associations/default/companies/9",
    )
    assert request.body == b""


async def test_remove_association_deletes_the_pair() -> None:
    client, transport = _client(Response(204, {}, b""))
    await client.remove_association("invoices", "77", "contacts", "512")
    assert (transport.requests[0].method, path_of(transport.requests[0])) == (
        "DELETE",
        "/crm/v4/objects/invoices/77/associations/contacts/512",
    )


_PROPERTY = {
    "name": "qbo_customer_id",
    "label": "QuickBooks customer id",
    "type": "string",
    "fieldType": "text",
    "groupName": "hsqbo",
    "hasUniqueValue": True,
}


async def test_ensure_property_returns_an_existing_definition_without_creating() -> None:
    client, transport = _client(json_answer(200, _PROPERTY))
    prop = await client.ensure_property("contacts", "qbo_customer_id", label="x", group_name="hsqbo", unique=True)
    assert path_of(transport.requests[0]) == "/crm/v3/properties/contacts/qbo_customer_id"
    assert len(transport.requests) == 1
    assert prop.unique is True


async def test_ensure_property_creates_a_missing_unique_property() -> None:
    client, transport = _client(json_answer(404, {"category": "OBJECT_NOT_FOUND"}), json_answer(201, _PROPERTY))
    prop = await client.ensure_property(
        "contacts", "qbo_customer_id", label="QuickBooks customer id", group_name="hsqbo", unique=True
    )
    create: Request = transport.requests[1]
    assert (create.method, path_of(create)) == ("POST", "/crm/v3/properties/contacts")
    assert json_of(create) == _PROPERTY
    assert prop.name == "qbo_customer_id"


async def test_ensure_property_created_concurrently_reads_it_back() -> None:
    client, transport = _client(
        json_answer(404, {}),
        json_answer(409, {"category": "CONFLICT", "message": "exists"}),
        json_answer(200, _PROPERTY),
    )
    prop = await client.ensure_property("contacts", "qbo_customer_id", label="x", group_name="hsqbo", unique=True)
    assert [request.method for request in transport.requests] == ["GET", "POST", "GET"]
    assert prop.group_name == "hsqbo"


# --- concurrent calls meeting in batch calls (a Coalescer) -----------------------------------------------------------


def _batched(handler: Callable[[Request], Response]) -> tuple[HubSpotClient, MockTransport]:
    transport = MockTransport(handler)
    return HubSpotClient(BASE, StaticToken("pat-na1-x"), transport, coalescer=Coalescer()), transport


def _traced(record: dict[str, object], trace_id: str) -> dict[str, object]:
    return {**record, "objectWriteTraceId": trace_id}


def _refused(category: str, message: str, trace_id: str) -> dict[str, object]:
    return {"status": "error", "category": category, "message": message, "context": {"objectWriteTraceId": [trace_id]}}


async def test_concurrent_creates_meet_in_one_traced_batch_create_each_with_its_own_answer() -> None:
    answer = {
        "status": "COMPLETE",
        "results": [_traced(_record("7", email="a@x.co"), "u0"), _traced(_record("9", hs_currency="USD"), "u2")],
        "numErrors": 1,
        "errors": [_refused("CONFLICT", "Contact already exists. Existing ID: 12", "u1")],
    }
    client, transport = _batched(scripted(json_answer(207, answer)))
    made = await asyncio.gather(
        client.create("contacts", {"email": "a@x.co"}),
        client.create("contacts", {"email": "b@x.co"}),
        client.create("contacts", {"email": "c@x.co"}, associations=[NewAssociation("512", 279)]),
        return_exceptions=True,
    )
    (request,) = transport.requests
    assert (request.method, path_of(request)) == ("POST", "/crm/v3/objects/contacts/batch/create")
    assert json_of(request)["inputs"] == [
        {"properties": {"email": "a@x.co"}, "objectWriteTraceId": "u0"},
        {"properties": {"email": "b@x.co"}, "objectWriteTraceId": "u1"},
        {
            "properties": {"email": "c@x.co"},
            "associations": [
                {"to": {"id": "512"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}
            ],
            "objectWriteTraceId": "u2",
        },
    ]
    assert [getattr(record, "id", None) for record in made] == ["7", None, "9"]
    assert isinstance(made[1], Conflict)
    assert made[1].existing_id == "12"


async def test_an_input_refused_without_naming_the_holder_is_created_on_its_own_one_unanswered_fails() -> None:
    answer = {
        "status": "COMPLETE",
        "results": [_traced(_record("9", email="c@x.co"), "u2")],
        "numErrors": 1,
        "errors": [_refused("CONFLICT", "Contact already exists.", "u0")],
    }
    single = {"status": "error", "message": "Contact already exists. Existing ID: 12", "category": "CONFLICT"}
    client, transport = _batched(scripted(json_answer(207, answer), json_answer(409, single)))
    made = await asyncio.gather(
        client.create("contacts", {"email": "a@x.co"}),
        client.create("contacts", {"email": "b@x.co"}),  # in neither list: it may have been made
        client.create("contacts", {"email": "c@x.co"}),
        return_exceptions=True,
    )
    assert [path_of(r) for r in transport.requests] == [
        "/crm/v3/objects/contacts/batch/create",
        "/crm/v3/objects/contacts",
    ]
    assert isinstance(made[0], Conflict)
    assert made[0].existing_id == "12"  # as the single create names it
    assert isinstance(made[1], ServerError)  # transient: its apply runs again and finds what was made
    assert getattr(made[2], "id", None) == "9"


async def test_a_batch_create_refused_whole_goes_again_as_single_creates() -> None:
    whole = {"status": "error", "message": "Contact already exists. Existing ID: 12", "category": "CONFLICT"}
    client, transport = _batched(
        scripted(json_answer(409, whole), json_answer(409, whole), json_answer(201, _record("8", email="b@x.co")))
    )
    made = await asyncio.gather(
        client.create("contacts", {"email": "a@x.co"}),
        client.create("contacts", {"email": "b@x.co"}),
        return_exceptions=True,
    )
    assert len(transport.requests) == 3
    assert isinstance(made[0], Conflict)
    assert made[0].existing_id == "12"
    assert getattr(made[1], "id", None) == "8"


async def test_a_lone_create_is_the_single_create() -> None:
    client, transport = _batched(scripted(json_answer(201, _record("8", email="b@x.co"))))
    assert (await client.create("contacts", {"email": "b@x.co"})).id == "8"
    assert [path_of(r) for r in transport.requests] == ["/crm/v3/objects/contacts"]


async def test_concurrent_reads_by_email_meet_in_one_batch_read_by_the_id_property() -> None:
    answer = {
        "status": "COMPLETE",
        "results": [_record("1", email="a@x.co", firstname="A"), _record("2", email="b@x.co", firstname="B")],
        "numErrors": 1,
        "errors": [
            {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "missing", "context": {"ids": ["c@x.co"]}}
        ],
    }
    client, transport = _batched(scripted(json_answer(207, answer)))
    read = await asyncio.gather(
        *(
            client.get("contacts", key, properties=["firstname"], id_property="email")
            for key in ("a@x.co", "B@x.co", "c@x.co")
        ),
        return_exceptions=True,
    )
    (request,) = transport.requests
    assert path_of(request) == "/crm/v3/objects/contacts/batch/read"
    assert json_of(request) == {
        "inputs": [{"id": "a@x.co"}, {"id": "B@x.co"}, {"id": "c@x.co"}],
        "properties": ["firstname", "email"],
        "idProperty": "email",
    }
    assert [getattr(r, "id", None) for r in read] == ["1", "2", None]
    assert isinstance(read[2], NotFound)
    assert getattr(read[0], "properties", None) == {"hs_object_id": "1", "firstname": "A"}  # as asked


async def test_a_key_the_batch_read_answers_under_another_value_is_read_on_its_own() -> None:
    answer = {"status": "COMPLETE", "results": [_record("1", email="a@x.co"), _record("5", email="main@x.co")]}
    client, transport = _batched(scripted(json_answer(200, answer), json_answer(200, _record("5", email="main@x.co"))))
    read = await asyncio.gather(
        *(client.get("contacts", key, properties=["email"], id_property="email") for key in ("a@x.co", "old@x.co"))
    )
    assert [r.id for r in read] == ["1", "5"]
    assert path_of(transport.requests[1]) == "/crm/v3/objects/contacts/old%40x.co"  # a secondary email: no guess


async def test_concurrent_searches_by_a_value_meet_in_one_in_search_every_page_read() -> None:
    pages = [
        {
            "total": 3,
            "results": [_record("1", hs_sku="SKU-1"), _record("2", hs_sku="Sku-2")],
            "paging": {"next": {"after": "2"}},
        },
        {"total": 3, "results": [_record("3", hs_sku="sku-1")]},
    ]
    client, transport = _batched(scripted(*(json_answer(200, page) for page in pages)))
    sorts = [{"propertyName": "createdate", "direction": "ASCENDING"}]
    found = await asyncio.gather(
        *(
            client.search_by("products", "hs_sku", sku, properties=["name"], sorts=sorts)
            for sku in ("SKU-1", "sku-2", "SKU-3")
        )
    )
    assert [[record.id for record in records] for records in found] == [["1", "3"], ["2"], []]
    first, second = (json_of(request) for request in transport.requests)
    assert first["filterGroups"] == [
        {"filters": [{"propertyName": "hs_sku", "operator": "IN", "values": ["sku-1", "sku-2", "sku-3"]}]}
    ]
    assert (first["properties"], first["sorts"], second.get("after")) == (["name", "hs_sku"], sorts, "2")


async def test_a_lone_search_by_a_value_is_one_eq_search_and_many_values_keep_the_body_within_3000() -> None:
    client, transport = _batched(lambda request: json_answer(200, {"total": 0, "results": []}))
    assert await client.search_by("products", "hs_sku", "SKU-1") == []
    assert json_of(transport.requests[0])["filterGroups"] == [
        {"filters": [{"propertyName": "hs_sku", "operator": "EQ", "value": "SKU-1"}]}
    ]
    skus = [f"{n:03d}-" + "x" * 60 for n in range(100)]
    await asyncio.gather(*(client.search_by("products", "hs_sku", sku, properties=["name", "hs_sku"]) for sku in skus))
    searches = transport.requests[1:]
    assert len(searches) > 1
    assert all(len(request.body) <= 3000 for request in searches)
    sent = [v for r in searches for v in json_of(r)["filterGroups"][0]["filters"][0]["values"]]
    assert sent == skus

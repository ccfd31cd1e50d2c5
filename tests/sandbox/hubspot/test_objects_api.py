"""CRM objects v3 as documented (reference §2, §3, §5): status codes, string values, errors, batches."""

from __future__ import annotations

import re

from tests.sandbox.hubspot.conftest import Hub


async def test_create_answers_201_with_string_properties_and_system_fields(hub: Hub) -> None:
    body = await hub.create("products", {"name": "Widget", "price": 6000.00, "hs_sku": "W-1"})
    props = body["properties"]
    assert props["price"] == "6000"  # numbers come back as canonical strings
    assert props["hs_object_id"] == body["id"]
    assert {"createdate", "hs_lastmodifieddate"} <= props.keys()
    assert body["archived"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["createdAt"])


async def test_duplicate_contact_email_is_409_conflict_naming_the_existing_id(hub: Hub) -> None:
    first = await hub.create("contacts", {"email": "Jane@Example.com"})
    status, body = await hub.call(
        "POST", "/crm/v3/objects/contacts", json={"properties": {"email": "jane@example.com"}}
    )
    assert status == 409
    assert body["category"] == "CONFLICT"
    assert re.search(r"Existing ID:\s*(\d+)", body["message"]).group(1) == first["id"]  # type: ignore[union-attr]
    assert {"message", "correlationId", "category"} <= body.keys()


async def test_invalid_property_values_are_400_validation_error(hub: Hub) -> None:
    cases = [
        ("contacts", {"email": "a@b.co", "no_such_property": "x"}, "PROPERTY_DOESNT_EXIST"),
        ("contacts", {"email": "b@b.co", "lifecyclestage": "Customer"}, "INVALID_OPTION"),  # enum is case-sensitive
        ("products", {"name": "P", "price": "twelve"}, "INVALID_INTEGER"),
        ("invoices", {"hs_currency": "USD", "hs_due_date": "next tuesday"}, "INVALID_DATETIME"),
        ("contacts", {"email": "not-an-email"}, "INVALID_EMAIL"),
        ("contacts", {"email": "c@b.co", "hs_object_id": "5"}, "READ_ONLY_VALUE"),
    ]
    for object_type, properties, code in cases:
        status, body = await hub.call("POST", f"/crm/v3/objects/{object_type}", json={"properties": properties})
        assert status == 400, (properties, body)
        assert body["category"] == "VALIDATION_ERROR"
        assert body["message"].startswith("Property values were not valid: ")
        assert code in body["message"]


async def test_create_without_required_properties_is_400(hub: Hub) -> None:
    for object_type, properties in [("invoices", {}), ("commerce_payments", {"hs_initial_amount": "5"}),
                                     ("contacts", {"phone": "1"})]:  # fmt: skip
        status, body = await hub.call("POST", f"/crm/v3/objects/{object_type}", json={"properties": properties})
        assert (status, body["category"]) == (400, "VALIDATION_ERROR")


async def test_unknown_ids_are_404(hub: Hub) -> None:
    status, body = await hub.call("GET", "/crm/v3/objects/contacts/999999")
    assert (status, body["category"]) == (404, "OBJECT_NOT_FOUND")
    status, _ = await hub.call("PATCH", "/crm/v3/objects/contacts/999999", json={"properties": {"firstname": "x"}})
    assert status == 404


async def test_ids_are_not_shared_between_object_types(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "x@y.co"})
    status, _ = await hub.call("GET", f"/crm/v3/objects/companies/{contact['id']}")
    assert status == 404


async def test_get_by_id_property_and_requested_properties(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "read@me.co", "firstname": "Read", "city": "Oslo"})
    status, body = await hub.call("GET", "/crm/v3/objects/contacts/READ@me.co",
                                  params={"idProperty": "email", "properties": "city,phone"})  # fmt: skip
    assert status == 200
    assert body["id"] == contact["id"]
    assert body["properties"]["city"] == "Oslo"
    assert body["properties"]["phone"] is None  # requested but empty: null
    assert "firstname" not in body["properties"]


async def test_id_property_must_be_unique(hub: Hub) -> None:
    await hub.create("contacts", {"email": "u@u.co", "city": "Oslo"})
    status, body = await hub.call("GET", "/crm/v3/objects/contacts/Oslo", params={"idProperty": "city"})
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")


async def test_patch_changes_values_and_empty_string_clears(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "p@p.co", "firstname": "P", "city": "Oslo"})
    status, body = await hub.call("PATCH", f"/crm/v3/objects/contacts/{contact['id']}",
                                  json={"properties": {"city": "", "firstname": "Q"}})  # fmt: skip
    assert status == 200
    assert body["properties"]["firstname"] == "Q"
    assert "city" not in body["properties"]
    assert body["updatedAt"] >= contact["updatedAt"]


async def test_archive_is_204_then_the_record_is_gone_but_readable_as_archived(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "gone@x.co"})
    status, _ = await hub.call("DELETE", f"/crm/v3/objects/contacts/{contact['id']}")
    assert status == 204
    status, _ = await hub.call("GET", f"/crm/v3/objects/contacts/{contact['id']}")
    assert status == 404
    status, body = await hub.call("GET", f"/crm/v3/objects/contacts/{contact['id']}", params={"archived": "true"})
    assert status == 200
    assert body["archived"] is True
    assert "archivedAt" in body


async def test_list_pages_with_after_and_caps_limit_at_100(hub: Hub) -> None:
    ids = [(await hub.create("companies", {"name": f"C{n}"}))["id"] for n in range(5)]
    seen, after = [], None
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        status, body = await hub.call("GET", "/crm/v3/objects/companies", params=params)
        assert status == 200
        seen += [r["id"] for r in body["results"]]
        after = body.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert seen == ids
    status, _ = await hub.call("GET", "/crm/v3/objects/companies", params={"limit": "101"})
    assert status == 400


async def test_batch_read_with_missing_ids_is_207_with_object_not_found(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "b@r.co"})
    status, body = await hub.call(
        "POST",
        "/crm/v3/objects/contacts/batch/read",
        json={"inputs": [{"id": contact["id"]}, {"id": "999"}], "properties": ["email"]},
    )
    assert status == 207
    assert [r["id"] for r in body["results"]] == [contact["id"]]
    assert body["numErrors"] == 1
    error = body["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["context"] == {"ids": ["999"]}


async def test_batch_create_is_all_or_nothing_without_trace_ids(hub: Hub) -> None:
    await hub.create("contacts", {"email": "taken@x.co"})
    inputs = [{"properties": {"email": "fresh@x.co"}}, {"properties": {"email": "taken@x.co"}}]
    status, _ = await hub.call("POST", "/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
    assert status == 409
    status, _ = await hub.call("GET", "/crm/v3/objects/contacts/fresh@x.co", params={"idProperty": "email"})
    assert status == 404  # nothing was created


async def test_batch_create_with_trace_ids_reports_partial_failure_as_207(hub: Hub) -> None:
    inputs = [
        {"properties": {"email": "one@x.co"}, "objectWriteTraceId": "t1"},
        {"properties": {"email": "two@x.co", "lifecyclestage": "nope"}, "objectWriteTraceId": "t2"},
    ]
    status, body = await hub.call("POST", "/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
    assert status == 207
    assert [r["properties"]["email"] for r in body["results"]] == ["one@x.co"]
    assert body["errors"][0]["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["t2"]


async def test_batch_create_with_trace_ids_names_no_record_holding_a_taken_unique_value(hub: Hub) -> None:
    taken = await hub.create("contacts", {"email": "taken@x.co"})
    inputs = [
        {"properties": {"email": "fresh@x.co"}, "objectWriteTraceId": "t1"},
        {"properties": {"email": "TAKEN@x.co"}, "objectWriteTraceId": "t2"},
    ]
    status, body = await hub.call("POST", "/crm/v3/objects/contacts/batch/create", json={"inputs": inputs})
    assert status == 207
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["t1"]
    (error,) = body["errors"]
    assert (error["category"], error["context"]["objectWriteTraceId"]) == ("CONFLICT", ["t2"])
    assert str(taken["id"]) not in error["message"]  # the stricter reading: the single create's 409 names it


async def test_batches_over_100_inputs_are_400(hub: Hub) -> None:
    inputs = [{"properties": {"name": f"P{n}"}} for n in range(101)]
    status, body = await hub.call("POST", "/crm/v3/objects/products/batch/create", json={"inputs": inputs})
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")


async def test_batch_update_skips_missing_ids_with_207(hub: Hub) -> None:
    product = await hub.create("products", {"name": "Old"})
    inputs = [{"id": product["id"], "properties": {"name": "New"}}, {"id": "424242", "properties": {"name": "X"}}]
    status, body = await hub.call("POST", "/crm/v3/objects/products/batch/update", json={"inputs": inputs})
    assert status == 207
    assert body["results"][0]["properties"]["name"] == "New"
    assert body["errors"][0]["context"] == {"ids": ["424242"]}


async def test_upsert_by_a_custom_unique_property_creates_then_updates(hub: Hub) -> None:
    status, prop = await hub.call("POST", "/crm/v3/properties/contacts", json={
        "name": "qbo_customer_id", "label": "QBO customer", "type": "string", "fieldType": "text",
        "groupName": "contactinformation", "hasUniqueValue": True})  # fmt: skip
    assert status == 201
    assert prop["hasUniqueValue"] is True
    upsert = {"inputs": [{"idProperty": "qbo_customer_id", "id": "58", "properties": {"email": "q@b.o"}}]}
    status, body = await hub.call("POST", "/crm/v3/objects/contacts/batch/upsert", json=upsert)
    assert status == 200
    assert body["results"][0]["new"] is True
    upsert["inputs"][0]["properties"] = {"firstname": "Quinn"}
    status, body = await hub.call("POST", "/crm/v3/objects/contacts/batch/upsert", json=upsert)
    assert body["results"][0]["new"] is False
    assert body["results"][0]["properties"]["firstname"] == "Quinn"
    other = await hub.create("contacts", {"email": "other@b.o"})
    status, body = await hub.call("PATCH", f"/crm/v3/objects/contacts/{other['id']}",
                                  json={"properties": {"qbo_customer_id": "58"}})  # fmt: skip
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    assert "already has that value" in body["message"]


async def test_merge_keeps_the_primary_and_aliases_the_merged_id(hub: Hub) -> None:
    primary = await hub.create("contacts", {"email": "keep@x.co"})
    merged = await hub.create("contacts", {"email": "lose@x.co", "city": "Bergen"})
    status, body = await hub.call(
        "POST",
        "/crm/v3/objects/contacts/merge",
        json={"primaryObjectId": primary["id"], "objectIdToMerge": merged["id"]},
    )
    assert status == 200
    assert body["id"] == primary["id"]
    assert body["properties"]["city"] == "Bergen"
    assert body["properties"]["hs_additional_emails"] == "lose@x.co"
    status, read = await hub.call("GET", f"/crm/v3/objects/contacts/{merged['id']}")
    assert (status, read["id"]) == (200, primary["id"])
    status, conflict = await hub.call("POST", "/crm/v3/objects/contacts", json={"properties": {"email": "lose@x.co"}})
    assert status == 409
    assert conflict["message"].endswith(primary["id"])


async def test_dated_paths_reach_the_same_objects(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "dated@x.co"})
    status, body = await hub.call("GET", f"/crm/objects/2026-03/contacts/{contact['id']}")
    assert (status, body["id"]) == (200, contact["id"])

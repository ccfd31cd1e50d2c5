"""CRM search as documented (SEARCH): operators, AND/OR groups, one sort, paging, the result cap, 5 requests/s."""

from __future__ import annotations

from typing import Any

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox.hubspot._schema import BY_NAME
from hsqbo_sandbox.hubspot._search import _candidate_ids, search
from hsqbo_sandbox.hubspot._store import Actor, Portal
from tests.sandbox.hubspot.conftest import Hub


async def _search(hub: Hub, object_type: str, **body: Any) -> tuple[int, Any]:
    return await hub.call("POST", f"/crm/v3/objects/{object_type}/search", json=body)


def _filter(name: str, operator: str, **values: Any) -> dict[str, Any]:
    return {"filterGroups": [{"filters": [{"propertyName": name, "operator": operator, **values}]}]}


async def test_operators_compare_by_property_type(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(search_per_second=1000)
    for name, price, sku in [("Alpha widget", "5", "A-1"), ("Beta gadget", "50", None), ("Gamma widget", "500", "G-1")]:
        await hub.create("products", {"name": name, "price": price, **({"hs_sku": sku} if sku else {})})
    cases = [
        (_filter("price", "GT", value="40"), {"Beta gadget", "Gamma widget"}),  # numeric, not "5" > "40" text order
        (_filter("price", "LTE", value="50"), {"Alpha widget", "Beta gadget"}),
        (_filter("price", "BETWEEN", value="10", highValue="100"), {"Beta gadget"}),
        (_filter("price", "NEQ", value="50"), {"Alpha widget", "Gamma widget"}),
        (_filter("name", "EQ", value="alpha WIDGET"), {"Alpha widget"}),
        (_filter("name", "CONTAINS_TOKEN", value="widget"), {"Alpha widget", "Gamma widget"}),
        (_filter("name", "NOT_CONTAINS_TOKEN", value="widget"), {"Beta gadget"}),
        (_filter("name", "CONTAINS_TOKEN", value="gad*"), {"Beta gadget"}),
        (_filter("hs_sku", "HAS_PROPERTY"), {"Alpha widget", "Gamma widget"}),
        (_filter("hs_sku", "NOT_HAS_PROPERTY"), {"Beta gadget"}),
        (_filter("name", "IN", values=["beta gadget", "gamma widget"]), {"Beta gadget", "Gamma widget"}),
        (_filter("name", "IN", values=["Beta gadget"]), set()),  # IN on strings needs lower-case values
        (_filter("name", "NOT_IN", values=["beta gadget"]), {"Alpha widget", "Gamma widget"}),
        ({"filterGroups": [  # groups are ORed, filters in a group ANDed
            {"filters": [{"propertyName": "price", "operator": "LT", "value": "10"}]},
            {"filters": [{"propertyName": "price", "operator": "GT", "value": "10"},
                         {"propertyName": "hs_sku", "operator": "HAS_PROPERTY"}]},
        ]}, {"Alpha widget", "Gamma widget"}),
    ]  # fmt: skip
    for body, expected in cases:
        status, answer = await _search(hub, "products", properties=["name"], **body)
        assert status == 200, (body, answer)
        assert {r["properties"]["name"] for r in answer["results"]} == expected, body
        assert answer["total"] == len(expected)


async def test_dates_filter_as_epoch_milliseconds_and_sort_descending(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(search_per_second=1000)
    first = await hub.create("contacts", {"email": "first@x.co"})
    hub.sandbox.clock.advance(60)
    second = await hub.create("contacts", {"email": "second@x.co"})
    status, answer = await _search(hub, "contacts", sorts=[{"propertyName": "createdate", "direction": "DESCENDING"}],
                                   **_filter("lastmodifieddate", "GTE", value="0"))  # fmt: skip
    assert status == 200
    assert [r["id"] for r in answer["results"]] == [second["id"], first["id"]]


async def test_paging_walks_every_result_and_stops_at_the_result_cap(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(search_result_cap=5, search_per_second=1000)
    for n in range(7):
        await hub.create("companies", {"name": f"Co {n}"})
    seen: list[str] = []
    after: str | None = None
    while True:
        status, answer = await _search(hub, "companies", limit=2, **({"after": after} if after else {}))
        if status == 400:
            break
        assert answer["total"] == 7
        seen += [r["id"] for r in answer["results"]]
        after = answer["paging"]["next"]["after"]
    assert len(seen) == 5  # the cap, not the total
    assert after == "5"
    assert answer["category"] == "VALIDATION_ERROR"


async def test_search_limits_are_validation_errors(hub: Hub) -> None:
    hub.sandbox.accounts.get(hub.portal_id).configure(search_per_second=1000)
    six_groups: dict[str, Any] = {
        "filterGroups": [{"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}] * 6
    }
    bodies: list[dict[str, Any]] = [{"limit": 201}, {"after": "abc"}, six_groups, _filter("nope", "EQ", value="1"),
                 {"sorts": [{"propertyName": "name"}, {"propertyName": "price"}]},
                 _filter("name", "IN", values=["x" * 60] * 50)]  # fmt: skip
    for body in bodies:
        status, answer = await _search(hub, "products", **body)
        assert (status, answer["category"]) == (400, "VALIDATION_ERROR"), body


async def test_more_than_five_searches_a_second_are_429_without_rate_limit_headers(hub: Hub) -> None:
    statuses = []
    for _ in range(6):
        async with hub.http.post(f"{hub.url}/crm/v3/objects/contacts/search", json={},
                                 headers={"Authorization": f"Bearer {hub.token}"}) as response:  # fmt: skip
            statuses.append(response.status)
            body = await response.json()
            assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in response.headers)
    assert statuses == [200] * 5 + [429]
    assert body["policyName"] == "SECONDLY"
    hub.sandbox.clock.advance(1.0)
    status, _ = await _search(hub, "contacts")
    assert status == 200


async def test_association_pseudo_property_finds_associated_records(hub: Hub) -> None:
    company = await hub.create("companies", {"name": "Parent"})
    inside = await hub.create(
        "contacts",
        {"email": "in@x.co"},
        associations=[
            {
                "to": {"id": company["id"]},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
            }
        ],
    )
    await hub.create("contacts", {"email": "out@x.co"})
    status, answer = await _search(hub, "contacts", **_filter("associations.company", "EQ", value=company["id"]))
    assert status == 200
    assert [r["id"] for r in answer["results"]] == [inside["id"]]


def _portal_with_contacts() -> tuple[Portal, list[int]]:
    portal = Portal(1, SandboxClock(), lambda change: None)
    actor = Actor("CRM_UI", "userId:1", 1)
    contacts = BY_NAME["contacts"]
    ids = [portal.create(contacts, {"email": f"c{n}@x.co", "firstname": f"C{n}"}, actor).id for n in range(6)]
    portal.merge(contacts, str(ids[0]), str(ids[1]), actor)  # c1@x.co becomes an additional email of ids[0]
    portal.archive(portal.get(contacts, str(ids[2])), actor)
    return portal, ids


def _found(portal: Portal, groups: list[list[dict[str, Any]]]) -> list[int]:
    body = {"filterGroups": [{"filters": filters} for filters in groups], "limit": 100}
    page, _, _ = search(portal, BY_NAME["contacts"], body, result_cap=10_000)
    return [record.id for record in page]


def test_indexed_email_and_id_lookups_find_what_checking_every_record_finds() -> None:
    portal, ids = _portal_with_contacts()
    never = {"propertyName": "firstname", "operator": "EQ", "value": "nobody"}  # an unindexed group: every record
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"propertyName": "email", "operator": "EQ", "value": "C3@X.co"}, [ids[3]]),  # EQ ignores case
        ({"propertyName": "email", "operator": "IN", "values": ["c3@x.co", "c4@x.co"]}, [ids[3], ids[4]]),
        ({"propertyName": "email", "operator": "IN", "values": ["C3@x.co"]}, []),  # IN values must be lower-case
        ({"propertyName": "email", "operator": "EQ", "value": "c1@x.co"}, []),  # merged away: an additional email
        ({"propertyName": "email", "operator": "EQ", "value": "c2@x.co"}, []),  # archived
        ({"propertyName": "hs_object_id", "operator": "EQ", "value": f"0{ids[4]}"}, [ids[4]]),  # numeric
        ({"propertyName": "hs_object_id", "operator": "EQ", "value": f"{ids[4]}.0"}, [ids[4]]),
        ({"propertyName": "hs_object_id", "operator": "IN", "values": [ids[5], "x", ids[1], ids[2]]}, [ids[5]]),
    ]
    for spec, expected in cases:
        assert _found(portal, [[spec]]) == expected, spec
        assert _found(portal, [[spec], [never]]) == expected, spec


def test_only_groups_that_all_have_an_indexed_filter_narrow_the_records_checked() -> None:
    portal, ids = _portal_with_contacts()
    by_email = {"propertyName": "email", "operator": "EQ", "value": "c3@x.co"}
    by_name = {"propertyName": "firstname", "operator": "EQ", "value": "C3"}
    contacts = BY_NAME["contacts"]
    assert _candidate_ids(portal, contacts, [[by_name, by_email]]) == {ids[3]}
    assert _candidate_ids(portal, contacts, [[by_email], [by_name]]) is None
    assert _candidate_ids(portal, contacts, []) is None
    assert _found(portal, [[by_name, by_email]]) == [ids[3]]

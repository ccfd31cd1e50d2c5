"""The scope table: every HubSpot call hsqbo makes maps to its scopes, hsqbo requests them all, and the HubSpot
emulator (whose requirements are written apart, from the spec) accepts each call with exactly the requested set."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from hsqbo_sandbox.hubspot._errors import HubSpotError
from hsqbo_sandbox.hubspot._scopes import check, requirements
from services.status._connect import SCOPES
from shared.clients import (
    REQUESTED_SCOPES,
    Call,
    Coalescer,
    HubSpotClient,
    MockTransport,
    NewAssociation,
    Request,
    Response,
    StaticToken,
    UnknownCall,
    required_scopes,
)
from shared.clients._scopes import FAMILIES, scopes_to_grant
from shared.domain import Provider
from tests.clients.answers import json_answer

RECORD = {"id": "1", "properties": {}, "createdAt": "2026-01-05T10:00:00Z", "updatedAt": "2026-01-05T10:00:00Z"}
PROPERTY = {"name": "p", "label": "P", "type": "string", "fieldType": "text", "groupName": "g", "hasUniqueValue": True}

HubSpotCall = Callable[[HubSpotClient], Awaitable[Any]]

# Every way hsqbo calls the client (services/worker/rules, services/poller, services/worker/_engine.py): the method,
# and the object types, associations and properties it uses it with. A new call site adds a line here.
HSQBO_CALLS: dict[str, list[HubSpotCall]] = {
    "get": [
        lambda c: c.get("contacts", "1", properties=["email"]),
        lambda c: c.get("contacts", "a@b.c", id_property="email"),
        lambda c: c.get("companies", "1", properties=["name"]),
        lambda c: c.get("products", "1", properties=["name"], id_property="hsqbo_qbo_item_id"),
        lambda c: c.get("invoices", "1", associations=["line_items"]),
        lambda c: c.get("invoices", "1", associations=["contacts", "line_items"]),
        lambda c: c.get("invoices", "1", associations=["contacts", "line_items", "discounts", "fees", "taxes"]),
        lambda c: c.get("commerce_payments", "1", id_property="hsqbo_qbo_payment"),
    ],
    "create": [
        lambda c: c.create("contacts", {"email": "a@b.c"}),
        lambda c: c.create("products", {"name": "P"}),
        lambda c: c.create(
            "invoices", {"hs_currency": "USD"}, associations=[NewAssociation("2", 177), NewAssociation("3", 179)]
        ),
        lambda c: c.create("line_items", {"name": "L"}, associations=[NewAssociation("4", 410)]),
        lambda c: c.create("discounts", {"hs_type": "FIXED", "hs_value": "1"}),
        lambda c: c.create("taxes", {"hs_type": "FIXED", "hs_value": "1"}),
        lambda c: c.create(
            "commerce_payments",
            {"hs_initial_amount": "1"},
            associations=[NewAssociation("5", 542), NewAssociation("6", 391)],
        ),
    ],
    "update": [
        lambda c, t=t: c.update(t, "1", {"x": "y"})  # type: ignore[misc]
        for t in ("contacts", "products", "invoices", "line_items", "commerce_payments", "discounts", "taxes")
    ],
    "archive": [
        lambda c, t=t: c.archive(t, "1")  # type: ignore[misc]
        for t in ("contacts", "products", "invoices", "line_items", "commerce_payments", "discounts", "taxes")
    ],
    "batch_read": [
        lambda c, t=t: c.batch_read(t, ["1", "2"], properties=["name"])  # type: ignore[misc]
        for t in (
            "contacts",
            "companies",
            "products",
            "invoices",
            "line_items",
            "commerce_payments",
            "discounts",
            "fees",
            "taxes",
        )
    ],
    "batch_upsert": [lambda c: c.batch_upsert("products", "hsqbo_qbo_item_id", {"7": {"name": "P"}})],
    "search": [
        lambda c, t=t: c.search(t, properties=["hs_lastmodifieddate"])  # type: ignore[misc]
        for t in ("contacts", "products", "invoices", "commerce_payments")
    ],
    "search_by": [lambda c: c.search_by("products", "hs_sku", "S-1", properties=["name"])],
    "account_settings": [lambda c: c.account_settings()],  # also hsqbo connect: a private-app token's portal
    "search_all": [lambda c: _drain(c.search_all("invoices", properties=["hs_number"]))],
    "list_associations": [
        lambda c: c.list_associations("contacts", "1", "companies"),
        lambda c: c.list_associations("contacts", "1", "invoices"),
        lambda c: c.list_associations("line_items", "1", "invoices"),
        lambda c: c.list_associations("commerce_payments", "1", "invoices"),
        lambda c: c.list_associations("invoices", "1", "deals"),
    ],
    "associate": [
        lambda c: c.associate("invoices", "1", "contacts", "2"),
        lambda c: c.associate("invoices", "1", "line_items", "2", type_id=409),
        lambda c: c.associate("invoices", "1", "discounts", "2", type_id=411),
        lambda c: c.associate("invoices", "1", "taxes", "2", type_id=415),
    ],
    "remove_association": [lambda c: c.remove_association("invoices", "1", "line_items", "2")],
    "ensure_property": [
        lambda c, t=t: c.ensure_property(t, "hsqbo_qbo_id", label="QBO id", group_name="g", unique=True)  # type: ignore[misc]
        for t in ("products", "invoices", "commerce_payments")
    ],
}


async def _drain(records: Any) -> None:
    async for _ in records:
        pass


def _answer(request: Request) -> Response:
    path = urlsplit(request.url).path
    if request.method == "DELETE":
        return Response(204, {}, b"")
    if path.startswith("/crm/v3/properties/"):  # not there yet: ensure_property reads, then creates
        return json_answer(201, PROPERTY) if request.method == "POST" else json_answer(404, {"category": "NOT_FOUND"})
    if path.endswith(("/batch/read", "/batch/upsert")):
        return json_answer(200, {"results": [], "errors": []})
    if path.endswith("/search"):
        return json_answer(200, {"results": [], "total": 0})
    if path.startswith("/crm/v4/"):
        return json_answer(200, {"results": []})
    if path.startswith("/account-info/"):
        return json_answer(200, {"portalId": 101, "companyCurrency": "USD", "additionalCurrencies": [],
                                 "timeZone": "US/Eastern"})  # fmt: skip
    return json_answer(200, RECORD)


def _call_of(request: Request) -> Call:
    url = urlsplit(request.url)
    body = orjson.loads(request.body) if request.body else None
    return Call(request.method, url.path, parse_qsl(url.query), body)


async def _recorded(calls: list[HubSpotCall]) -> list[Request]:
    transport = MockTransport(_answer)
    client = HubSpotClient("https://api.hubapi.com", StaticToken("pat-na1-x"), transport)
    for call in calls:
        await call(client)
    return transport.requests


def test_every_client_method_is_among_hsqbo_calls() -> None:
    methods = {
        name for name, member in inspect.getmembers(HubSpotClient)
        if not name.startswith("_") and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    }  # fmt: skip
    assert methods == set(HSQBO_CALLS)


async def test_every_call_hsqbo_makes_maps_to_scopes_it_requests() -> None:
    requests = await _recorded([call for calls in HSQBO_CALLS.values() for call in calls])
    assert len(requests) >= sum(len(calls) for calls in HSQBO_CALLS.values())
    needed: set[str] = set()
    for request in requests:
        scopes = required_scopes(_call_of(request))
        assert scopes, f"{request.method} {request.url} needs no scope?"
        assert scopes <= set(REQUESTED_SCOPES), f"{request.method} {request.url}: {scopes - set(REQUESTED_SCOPES)}"
        needed |= scopes
    assert set(REQUESTED_SCOPES) == needed


async def test_the_emulator_accepts_every_call_hsqbo_makes_with_the_requested_scopes_only() -> None:
    requests = await _recorded([call for calls in HSQBO_CALLS.values() for call in calls])
    for request in requests:
        call = _call_of(request)
        inline = [part for name, value in call.params if name == "associations" for part in value.split(",")]
        needed = requirements(call.method, call.path, inline, call.body)
        assert needed, f"the emulator checks no scope for {call.method} {call.path}"
        check(REQUESTED_SCOPES, needed)  # no MISSING_SCOPES
        # and the scopes hsqbo's table names are those it checks (products and line items also take `e-commerce`)
        with pytest.raises(HubSpotError) as refused:
            check(set(REQUESTED_SCOPES) - required_scopes(call) - {"e-commerce"}, needed)
        assert refused.value.category == "MISSING_SCOPES"


async def test_creates_batched_together_map_to_the_scopes_of_every_input() -> None:
    transport = MockTransport(_answer)
    client = HubSpotClient("https://api.hubapi.com", StaticToken("pat-na1-x"), transport, coalescer=Coalescer())
    await asyncio.gather(*(call(client) for call in HSQBO_CALLS["create"] for _ in range(2)), return_exceptions=True)
    batches = [_call_of(r) for r in transport.requests if urlsplit(r.url).path.endswith("/batch/create")]
    assert len(batches) == len(HSQBO_CALLS["create"])
    for call in batches:
        assert required_scopes(call) <= set(REQUESTED_SCOPES)
        check(REQUESTED_SCOPES, requirements(call.method, call.path, [], call.body))


@pytest.mark.parametrize(
    ("call", "scopes"),
    [
        (Call("POST", "/crm/v3/objects/line_items/batch/create",
              body={"inputs": [{"properties": {}}, {"properties": {}, "associations": [
                  {"to": {"id": "9"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 410}]},
              ]}]}),
         {"crm.objects.line_items.write", "crm.objects.invoices.write"}),
        (Call("GET", "/crm/v4/objects/invoices/9/associations/deals"),
         {"crm.objects.invoices.read", "crm.objects.deals.read"}),
        (Call("POST", "/crm/v3/objects/commerce_payments",
              body={"properties": {}, "associations": [
                  {"to": {"id": "9"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 542}]},
                  {"to": {"id": "3"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 391}]},
              ]}),
         {"crm.objects.commercepayments.write", "crm.objects.invoices.write", "crm.objects.deals.write"}),
        (Call("GET", "/crm/v3/objects/invoices/9", [("associations", "contacts"), ("associations", "line_items")]),
         {"crm.objects.invoices.read", "crm.objects.contacts.read", "crm.objects.line_items.read"}),
        (Call("PUT", "/crm/v4/objects/commerce_payments/7/associations/default/deals/9"),
         {"crm.objects.commercepayments.write", "crm.objects.deals.write"}),
        (Call("POST", "/crm/v3/objects/products/search"), {"crm.objects.products.read"}),
        (Call("POST", "/crm/v3/properties/products"), {"e-commerce"}),
        (Call("GET", "/crm/v3/properties/invoices/hsqbo_qbo_invoice_id"), {"crm.schemas.invoices.read"}),
        (Call("GET", "/account-info/v3/details"), {"oauth"}),
        (Call("POST", "/oauth/v1/token"), set()),
        (Call("GET", "/oauth/v1/access-tokens/abc"), set()),
        (Call("GET", "/webhooks/v3/123/subscriptions", [("hapikey", "k")]), set()),
    ],
)  # fmt: skip
def test_required_scopes_of_each_family(call: Call, scopes: set[str]) -> None:
    assert required_scopes(call) == scopes


@pytest.mark.parametrize(
    "call",
    [
        Call("GET", "/crm/v3/objects/tickets/1"),  # an object type hsqbo does not use
        Call("POST", "/crm/v3/objects/contacts/merge"),  # an endpoint hsqbo does not call
        Call("POST", "/crm/v3/objects/invoices", body={"associations": [{"types": [{"associationTypeId": 1}]}]}),
    ],
)
def test_a_call_outside_the_table_is_unknown(call: Call) -> None:
    with pytest.raises(UnknownCall):
        required_scopes(call)


def test_every_family_is_named_once() -> None:
    names = [family.name for family in FAMILIES]
    assert len(names) == len(set(names))


def test_scopes_to_grant_prefers_what_the_call_needs() -> None:
    listing = Call("GET", "/crm/v4/objects/invoices/9/associations/deals")
    # HubSpot lists alternatives (sensitive-data scopes): name the one the call needs
    assert scopes_to_grant(["crm.objects.deals.read", "crm.objects.deals.sensitive.read.v2"], listing) == (
        "crm.objects.deals.read",
    )
    # an association endpoint may list ~80 alternatives: name those of the two types
    many = [f"crm.objects.{t}.read" for t in ("contacts", "deals", "invoices", "tickets", "quotes")]
    assert scopes_to_grant(many, listing) == ("crm.objects.deals.read", "crm.objects.invoices.read")
    # nothing named: the call's own scopes
    assert scopes_to_grant([], listing) == ("crm.objects.deals.read", "crm.objects.invoices.read")
    # a call outside the table: what HubSpot named
    assert scopes_to_grant(["tickets"], Call("GET", "/crm/v3/objects/tickets/1")) == ("tickets",)


def test_the_connect_flow_requests_the_table_s_union() -> None:
    assert SCOPES[Provider.HUBSPOT].split() == list(REQUESTED_SCOPES)
    assert all(why for why in REQUESTED_SCOPES.values())


def test_the_readme_lists_every_requested_scope_with_why() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### HubSpot OAuth scopes", 1)[1].split("\n### ", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \| (.+) \|$", section, flags=re.MULTILINE)
    assert listed == list(REQUESTED_SCOPES.items())

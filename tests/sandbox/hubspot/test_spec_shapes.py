"""The emulator's JSON against HubSpot's own OpenAPI specs (repo HubSpot/HubSpot-public-api-spec-collection):
required fields present, field types right, no field the schema does not name. The specs are not licensed for
redistribution, so they are never vendored: point HSQBO_HUBSPOT_SPEC_DIR at a local copy (the folder holding
`PublicApiSpecs/`); without it these tests are skipped."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.hubspot.conftest import CLIENT_SECRET, Hub

SPEC_DIR = os.environ.get("HSQBO_HUBSPOT_SPEC_DIR")
pytestmark = pytest.mark.skipif(
    not SPEC_DIR or not (Path(SPEC_DIR) / "PublicApiSpecs").is_dir(),
    reason="HubSpot's OpenAPI specs are not vendored: set HSQBO_HUBSPOT_SPEC_DIR to a local copy of "
    "HubSpot/HubSpot-public-api-spec-collection (the folder holding PublicApiSpecs/)",
)

# Fields HubSpot sends that the `Error` schema does not name: "status": "error" (ERR's documented body).
UNNAMED_BUT_DOCUMENTED = {"Error": {"status"}}
# StandardError.subCategory is typed `object` in the spec, but HubSpot sends a string such as
# "crm.associations.NO_ASSOCIATIONS_FOUND" (as `Error.subCategory` is typed); the emulator sends the string.
TYPED_DIFFERENTLY = {("StandardError", "subCategory")}


@cache
def _spec(relative_glob: str) -> dict[str, Any]:
    assert SPEC_DIR is not None
    matches = sorted((Path(SPEC_DIR) / "PublicApiSpecs").glob(relative_glob))
    assert matches, f"no spec file matches {relative_glob}"
    spec: dict[str, Any] = json.loads(matches[0].read_text())
    return spec


def _response_schema(spec: dict[str, Any], path: str, method: str, status: int | str) -> dict[str, Any]:
    response = spec["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:  # components/responses/Error
        response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
    content = response["content"]
    schema: dict[str, Any] = next(iter(content.values()))["schema"]
    return schema


def _conforms(spec: dict[str, Any], value: Any, schema: dict[str, Any], where: str) -> None:
    name = None
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = spec["components"]["schemas"][name]
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "object":
        assert isinstance(value, dict), f"{where}: {name or 'object'} expected, got {value!r}"
        for required in schema.get("required", []):
            assert value.get(required) is not None, f"{where}: required {name}.{required} missing"
        named = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in named:
                if item is not None and (name, key) not in TYPED_DIFFERENTLY:
                    _conforms(spec, item, named[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                if item is not None:  # HubSpot sends null for requested properties without a value
                    _conforms(spec, item, extra, f"{where}.{key}")
            else:
                assert key in UNNAMED_BUT_DOCUMENTED.get(name or "", set()), f"{where}: {name} has no field {key!r}"
    elif kind == "array":
        assert isinstance(value, list), f"{where}: array expected"
        for index, item in enumerate(value):
            _conforms(spec, item, schema["items"], f"{where}[{index}]")
    elif kind == "string":
        assert isinstance(value, str), f"{where}: string expected, got {value!r}"
        if "enum" in schema:
            assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    elif kind == "integer":
        assert type(value) is int, f"{where}: integer expected"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: boolean expected"


def _check(spec_glob: str, path: str, method: str, status: int | str, body: Any) -> None:
    spec = _spec(spec_glob)
    _conforms(spec, body, _response_schema(spec, path, method, status), f"{method.upper()} {path} {status}")


CONTACTS = "CRM/Contacts/Rollouts/424/v3/contacts.json"
ASSOCIATIONS = "CRM/Associations/Rollouts/130902/v4/associations.json"
PROPERTIES = "CRM/Properties/Rollouts/*/v3/properties.json"
OAUTH = "Auth/Oauth/Rollouts/279897/v3/oauth.json"


async def test_object_answers_match_the_contacts_spec(hub: Hub) -> None:
    base = "/crm/v3/objects/contacts"
    company = await hub.create("companies", {"name": "Spec"})
    status, created = await hub.call(
        "POST",
        base,
        json={
            "properties": {"email": "s@x.co"},
            "associations": [
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ],
        },
    )
    _check(CONTACTS, base, "post", status, created)
    status, body = await hub.call("GET", f"{base}/{created['id']}", params={
        "associations": "companies", "properties": "email,phone", "propertiesWithHistory": "email"})  # fmt: skip
    _check(CONTACTS, f"{base}/{{contactId}}", "get", status, body)
    await hub.create("contacts", {"email": "t@x.co"})
    status, body = await hub.call("GET", base, params={"limit": "1"})
    assert "paging" in body
    _check(CONTACTS, base, "get", status, body)
    status, body = await hub.call("POST", f"{base}/search", json={"limit": 1})
    _check(CONTACTS, f"{base}/search", "post", status, body)
    status, body = await hub.call("POST", f"{base}/batch/read", json={"inputs": [{"id": created["id"]}, {"id": "1"}]})
    assert status == 207
    _check(CONTACTS, f"{base}/batch/read", "post", status, body)
    await hub.call("POST", "/crm/v3/properties/contacts", json={"name": "ext_id", "label": "Ext", "type": "string",
                                                                "fieldType": "text", "groupName": "g",
                                                                "hasUniqueValue": True})  # fmt: skip
    status, body = await hub.call("POST", f"{base}/batch/upsert", json={"inputs": [
        {"idProperty": "ext_id", "id": "e1", "properties": {"email": "u@x.co"}}]})  # fmt: skip
    _check(CONTACTS, f"{base}/batch/upsert", "post", status, body)
    status, body = await hub.call(
        "POST", f"{base}/merge", json={"primaryObjectId": created["id"], "objectIdToMerge": body["results"][0]["id"]}
    )
    _check(CONTACTS, f"{base}/merge", "post", status, body)
    status, body = await hub.call("GET", f"{base}/42")
    assert status == 404
    _check(CONTACTS, f"{base}/{{contactId}}", "get", "default", body)


async def test_association_answers_match_the_v4_spec(hub: Hub) -> None:
    contact = await hub.create("contacts", {"email": "a@x.co"})
    company = await hub.create("companies", {"name": "A"})
    single = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}"
    status, body = await hub.call("PUT", f"/crm/v4/objects/contacts/{contact['id']}/associations/companies/"
                                  f"{company['id']}", json=[{"associationCategory": "HUBSPOT_DEFINED",
                                                             "associationTypeId": 1}])  # fmt: skip
    _check(ASSOCIATIONS, single, "put", status, body)
    status, body = await hub.call("PUT", f"/crm/v4/objects/contacts/{contact['id']}/associations/default/companies/"
                                  f"{company['id']}")  # fmt: skip
    _check(ASSOCIATIONS, "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/"
           "{toObjectId}", "put", status, body)  # fmt: skip
    status, body = await hub.call("GET", f"/crm/v4/objects/contacts/{contact['id']}/associations/companies")
    _check(ASSOCIATIONS, "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}", "get", status, body)
    status, body = await hub.call("POST", "/crm/v4/associations/contacts/companies/batch/read",
                                  json={"inputs": [{"id": contact["id"]}, {"id": "7"}]})  # fmt: skip
    assert status == 207
    _check(ASSOCIATIONS, "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read", "post", status, body)


async def test_property_and_token_answers_match_their_specs(hub: Hub) -> None:
    status, body = await hub.call("POST", "/crm/v3/properties/companies", json={
        "name": "qbo_id", "label": "QBO id", "type": "string", "fieldType": "text", "groupName": "companyinformation",
        "hasUniqueValue": True})  # fmt: skip
    _check(PROPERTIES, "/crm/v3/properties/{objectType}", "post", status, body)
    pair = hub.sandbox.issue_token(hub.portal_id)
    form = {"grant_type": "refresh_token", "refresh_token": str(pair.refresh_token),
            "client_id": hub.sandbox.client_id, "client_secret": CLIENT_SECRET}  # fmt: skip
    async with hub.http.post(f"{hub.url}/oauth/v3/token", data=form) as response:
        token = await response.json()
    spec = _spec(OAUTH)
    _conforms(spec, token, {"$ref": "#/components/schemas/AccessTokenResponse"}, "POST /oauth/v3/token")

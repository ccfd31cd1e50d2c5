"""Properties v3, the part hsqbo needs: list, read and create property definitions per object type (SPEC
`Property` / `PropertyCreate`). A custom property with `hasUniqueValue: true` becomes usable as `idProperty` for
reads, updates and upserts and is enforced unique. Creating an existing name is 409 (OBJECT_ALREADY_EXISTS)."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox.hubspot._api import ApiGuard, Context, json_body, object_type_param
from hsqbo_sandbox.hubspot._errors import not_found, validation_error
from hsqbo_sandbox.hubspot._render import json_response
from hsqbo_sandbox.hubspot._schema import FIELD_TYPES, PropertyDef

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PropertiesApi:
    def __init__(self, guard: ApiGuard) -> None:
        self.guard = guard

    def routes(self) -> list[Route]:
        endpoint = self.guard.endpoint
        base = "/crm/v3/properties/{objectType}"
        return [
            Route(base, endpoint(self.list_properties), methods=["GET"]),
            Route(base, endpoint(self.create), methods=["POST"]),
            Route(f"{base}/{{propertyName}}", endpoint(self.get), methods=["GET"]),
        ]

    async def list_properties(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        defined = ctx.portal.properties[object_type.name].values()
        return json_response({"results": [prop.to_json(object_type.singular) for prop in defined]})

    async def get(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        prop = ctx.portal.property_def(object_type, request.path_params["propertyName"])
        if prop is None:
            raise not_found(f"Unable to find property {request.path_params['propertyName']} for {object_type.name}")
        return json_response(prop.to_json(object_type.singular))

    async def create(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise validation_error("The request body must be a PropertyCreate object")
        missing = [f for f in ("name", "label", "type", "fieldType", "groupName") if not body.get(f)]
        if missing:
            raise validation_error(f"Missing required fields: {', '.join(missing)}")
        name, prop_type = body["name"], body["type"]
        if not isinstance(name, str) or not _NAME.match(name) or name.startswith("hs_"):
            raise validation_error(f"{name!r} is not a valid property name (lower case, digits, _; no hs_ prefix)")
        if prop_type not in FIELD_TYPES:
            raise validation_error(f"type must be one of {', '.join(FIELD_TYPES)}")
        options = tuple(str(option.get("value")) for option in body.get("options") or [] if isinstance(option, dict))
        if prop_type == "enumeration" and not options:
            raise validation_error("enumeration properties need options")
        prop = PropertyDef(
            name, prop_type, options=options, has_unique_value=bool(body.get("hasUniqueValue", False)),
            hubspot_defined=False, label=str(body["label"]), group_name=str(body["groupName"]),
            field_type=str(body["fieldType"]),
        )  # fmt: skip
        ctx.portal.define_property(object_type, prop)
        return json_response(prop.to_json(object_type.singular), 201)

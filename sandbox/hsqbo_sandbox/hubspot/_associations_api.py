"""Associations v4 on HubSpot's paths (SPEC associations v4): list, PUT default / labelled, DELETE, batch
read/create/archive/associate-default.

- `GET /crm/v4/objects/{type}/{id}/associations/{toType}`: `limit` up to 500, `after` cursor; results
  `{toObjectId, associationTypes: [{category, typeId, label}]}` (label null when unlabeled).
- `PUT .../associations/default/{toType}/{toId}` -> 200 `BatchResponsePublicDefaultAssociation`.
- `PUT .../associations/{toType}/{toId}` with `[{associationCategory, associationTypeId}]` -> 201
  `LabelsBetweenObjectPair`; unknown type id for the pair -> 400; a missing record -> 404.
- `DELETE .../associations/{toType}/{toId}` -> 204 (every association between the two records).
- `POST /crm/v4/associations/{from}/{to}/batch/read` (<= 1000 inputs): records without associations of that type
  are errors (207, subCategory crm.associations.NO_ASSOCIATIONS_FOUND), as HubSpot reports them.
- `batch/create` (<= 2000 inputs [3P]) -> 201, or 207 with an error per input that names a missing record or
  a type id that does not fit the pair; `batch/archive` -> 204; `batch/associate/default` -> 200.
"""

from __future__ import annotations

import bisect
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox.hubspot._api import ApiGuard, Context, inputs_of, int_param, json_body, object_type_param
from hsqbo_sandbox.hubspot._associations import DEFAULT_KIND, KINDS, AssociationKind, kind_for
from hsqbo_sandbox.hubspot._errors import HubSpotError, Json, not_found, validation_error
from hsqbo_sandbox.hubspot._render import batch_body, json_response
from hsqbo_sandbox.hubspot._schema import ObjectType
from hsqbo_sandbox.hubspot._values import iso_ms

READ_LIMIT = 1000
CREATE_LIMIT = 2000
LIST_LIMIT = 500


def _types_json(type_ids: set[int]) -> list[Json]:
    return [
        {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": KINDS[type_id].label}
        for type_id in sorted(type_ids)
    ]


def _record_id(portal_find: Any, object_type: ObjectType, text: Any) -> int:
    record = portal_find(object_type, str(text))
    if record is None:
        raise not_found(f"{object_type.singular} {text} does not exist")
    return int(record.id)


def _labels_between(from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int,
                    kinds: list[AssociationKind]) -> Json:  # fmt: skip
    return {
        "fromObjectTypeId": from_type.type_id,
        "fromObjectId": str(from_id),
        "toObjectTypeId": to_type.type_id,
        "toObjectId": str(to_id),
        "labels": [kind.label for kind in kinds if kind.label],
    }


def _default_kind(from_type: ObjectType, to_type: ObjectType) -> AssociationKind:
    kind = DEFAULT_KIND.get((from_type.name, to_type.name))
    if kind is None:
        raise validation_error(f"{from_type.name} cannot be associated with {to_type.name}",
                               sub_category="crm.associations.INVALID_ASSOCIATION_TYPE")  # fmt: skip
    return kind


def _specs(from_type: ObjectType, to_type: ObjectType, body: Any) -> list[AssociationKind]:
    if not isinstance(body, list) or not body:
        raise validation_error("the body must be a non-empty list of association specs")
    kinds = []
    for spec in body:
        type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
        if not isinstance(type_id, int):
            raise validation_error("each association spec needs an integer associationTypeId")
        kinds.append(kind_for(from_type.name, to_type.name, type_id))
    return kinds


class AssociationsApi:
    def __init__(self, guard: ApiGuard) -> None:
        self.guard = guard

    def routes(self) -> list[Route]:
        endpoint = self.guard.endpoint
        single = "/crm/v4/objects/{objectType}/{objectId}/associations"
        batch = "/crm/v4/associations/{objectType}/{toObjectType}/batch"
        return [
            Route(f"{single}/default/{{toObjectType}}/{{toObjectId}}", endpoint(self.put_default), methods=["PUT"]),
            Route(f"{single}/{{toObjectType}}/{{toObjectId}}", endpoint(self.put_labelled), methods=["PUT"]),
            Route(f"{single}/{{toObjectType}}/{{toObjectId}}", endpoint(self.delete), methods=["DELETE"]),
            Route(f"{single}/{{toObjectType}}", endpoint(self.list_associations), methods=["GET"]),
            Route(f"{batch}/read", endpoint(self.batch_read), methods=["POST"]),
            Route(f"{batch}/create", endpoint(self.batch_create), methods=["POST"]),
            Route(f"{batch}/archive", endpoint(self.batch_archive), methods=["POST"]),
            Route(f"{batch}/associate/default", endpoint(self.batch_default), methods=["POST"]),
        ]

    def _pair(self, request: Request, ctx: Context) -> tuple[ObjectType, int, ObjectType, int]:
        from_type = object_type_param(request)
        to_type = object_type_param(request, "toObjectType")
        from_id = _record_id(ctx.portal.find, from_type, request.path_params["objectId"])
        to_id = _record_id(ctx.portal.find, to_type, request.path_params["toObjectId"])
        return from_type, from_id, to_type, to_id

    async def list_associations(self, request: Request, ctx: Context) -> Response:
        from_type = object_type_param(request)
        to_type = object_type_param(request, "toObjectType")
        from_id = _record_id(ctx.portal.find, from_type, request.path_params["objectId"])
        limit = int_param(request, "limit", LIST_LIMIT, maximum=LIST_LIMIT)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise validation_error("after must be a paging cursor from a previous page")
        targets = ctx.portal.associations.targets((from_type.name, from_id), to_type.name)
        ids = sorted(targets)
        start = bisect.bisect_left(ids, int(after))
        page = ids[start : start + limit]
        body: Json = {"results": [{"toObjectId": str(i), "associationTypes": _types_json(targets[i])} for i in page]}
        if start + limit < len(ids):
            body["paging"] = {"next": {"after": str(ids[start + limit])}}
        return json_response(body)

    async def put_default(self, request: Request, ctx: Context) -> Response:
        started = iso_ms(ctx.portal.now_ms())
        from_type, from_id, to_type, to_id = self._pair(request, ctx)
        kind = _default_kind(from_type, to_type)
        ctx.portal.associate((from_type.name, from_id), (to_type.name, to_id), kind, ctx.actor)
        result = {
            "from": {"id": str(from_id)},
            "to": {"id": str(to_id)},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": kind.type_id},
        }
        return json_response(batch_body([result], [], started, iso_ms(ctx.portal.now_ms())))

    async def put_labelled(self, request: Request, ctx: Context) -> Response:
        from_type, from_id, to_type, to_id = self._pair(request, ctx)
        kinds = _specs(from_type, to_type, await json_body(request))
        for kind in kinds:
            ctx.portal.associate((from_type.name, from_id), (to_type.name, to_id), kind, ctx.actor)
        return json_response(_labels_between(from_type, from_id, to_type, to_id, kinds), 201)

    async def delete(self, request: Request, ctx: Context) -> Response:
        from_type, from_id, to_type, to_id = self._pair(request, ctx)
        ctx.portal.dissociate((from_type.name, from_id), (to_type.name, to_id), ctx.actor)
        return Response(status_code=204)

    async def batch_read(self, request: Request, ctx: Context) -> Response:
        from_type = object_type_param(request)
        to_type = object_type_param(request, "toObjectType")
        started = iso_ms(ctx.portal.now_ms())
        inputs = inputs_of(await json_body(request), limit=READ_LIMIT)
        results: list[Json] = []
        errors: list[Json] = []
        for item in inputs:
            key = str(item.get("id", "")) if isinstance(item, dict) else ""
            record = ctx.portal.find(from_type, key)
            targets = ctx.portal.associations.targets((from_type.name, record.id), to_type.name) if record else {}
            if not targets:
                errors.append(HubSpotError(
                    404, "OBJECT_NOT_FOUND", f"No {to_type.name} is associated with {from_type.singular} {key}.",
                    sub_category="crm.associations.NO_ASSOCIATIONS_FOUND", context={"fromObjectId": [key]},
                ).standard_error())  # fmt: skip
                continue
            results.append({
                "from": {"id": key},
                "to": [{"toObjectId": str(i), "associationTypes": _types_json(t)} for i, t in sorted(targets.items())],
            })  # fmt: skip
        body = batch_body(results, errors, started, iso_ms(ctx.portal.now_ms()))
        return json_response(body, 207 if errors else 200)

    async def batch_create(self, request: Request, ctx: Context) -> Response:
        from_type = object_type_param(request)
        to_type = object_type_param(request, "toObjectType")
        started = iso_ms(ctx.portal.now_ms())
        inputs = inputs_of(await json_body(request), limit=CREATE_LIMIT)
        prepared = []
        errors: list[Json] = []
        for item in inputs:
            try:
                if not isinstance(item, dict):
                    raise validation_error("each input needs from, to and types")
                from_id = _record_id(ctx.portal.find, from_type, (item.get("from") or {}).get("id", ""))
                to_id = _record_id(ctx.portal.find, to_type, (item.get("to") or {}).get("id", ""))
                kinds = _specs(from_type, to_type, item.get("types"))
            except HubSpotError as exc:
                errors.append(exc.standard_error())
                continue
            prepared.append((from_id, to_id, kinds))
        results = []
        for from_id, to_id, kinds in prepared:
            for kind in kinds:
                ctx.portal.associate((from_type.name, from_id), (to_type.name, to_id), kind, ctx.actor)
            results.append(_labels_between(from_type, from_id, to_type, to_id, kinds))
        body = batch_body(results, errors, started, iso_ms(ctx.portal.now_ms()))
        return json_response(body, 207 if errors else 201)

    async def batch_default(self, request: Request, ctx: Context) -> Response:
        from_type = object_type_param(request)
        to_type = object_type_param(request, "toObjectType")
        started = iso_ms(ctx.portal.now_ms())
        kind = _default_kind(from_type, to_type)
        results = []
        for item in inputs_of(await json_body(request), limit=CREATE_LIMIT):
            if not isinstance(item, dict):
                raise validation_error("each input needs from and to")
            from_id = _record_id(ctx.portal.find, from_type, (item.get("from") or {}).get("id", ""))
            to_id = _record_id(ctx.portal.find, to_type, (item.get("to") or {}).get("id", ""))
            ctx.portal.associate((from_type.name, from_id), (to_type.name, to_id), kind, ctx.actor)
            results.append({"from": {"id": str(from_id)}, "to": {"id": str(to_id)},
                            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                                                "associationTypeId": kind.type_id}})  # fmt: skip
        return json_response(batch_body(results, [], started, iso_ms(ctx.portal.now_ms())))

    async def batch_archive(self, request: Request, ctx: Context) -> Response:
        from_type = object_type_param(request)
        to_type = object_type_param(request, "toObjectType")
        for item in inputs_of(await json_body(request), limit=CREATE_LIMIT):
            if not isinstance(item, dict) or not isinstance(item.get("to"), list):
                raise validation_error("each input needs from.id and a to list")
            from_record = ctx.portal.find(from_type, str((item.get("from") or {}).get("id", "")))
            if from_record is None:
                continue
            for target in item["to"]:
                to_record = ctx.portal.find(to_type, str(target.get("id", "")) if isinstance(target, dict) else "")
                if to_record is not None:
                    ctx.portal.dissociate((from_type.name, from_record.id), (to_type.name, to_record.id), ctx.actor)
        return Response(status_code=204)

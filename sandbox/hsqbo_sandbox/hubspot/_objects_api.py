"""CRM objects v3 on HubSpot's paths (`/crm/v3/objects/{objectType}...`, and the dated
`/crm/objects/{version}/{objectType}...` which behave the same): get, list, create, update, archive, batch
read/create/update/upsert/archive, search, merge. Shapes: SPEC (contacts, companies, products, line items,
invoices, commerce payments share them).

Batch rules (SPEC; ERR; [3P] captures): at most 100 inputs. read/update answer 207 with `errors` (category
OBJECT_NOT_FOUND, `context.ids`) for ids that do not exist, 200 otherwise. create/update/upsert are all-or-nothing
on invalid input (the first error is the answer: for a create, a taken email is a 409 naming its contact, ERR
[3P]) unless every input carries a distinct `objectWriteTraceId`; then each failed input becomes an error (with
`context.objectWriteTraceId`) in a 207, the others are carried out (ERR: "the response will show which records
were created and which were not"). Whether a create's error in a 207 names the record holding a unique value, as
the single create's 409 ("Existing ID: N") or 400 ("N already has that value") does, is not documented: the
stricter reading, it names none. archive answers 204 and ignores unknown ids. Upsert needs `idProperty` naming a
unique property (or contact `email`); results carry `new`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox.hubspot._api import (
    ApiGuard,
    Context,
    inputs_of,
    int_param,
    json_body,
    list_param,
    object_type_param,
)
from hsqbo_sandbox.hubspot._associations import KINDS, AssociationKind, Ref
from hsqbo_sandbox.hubspot._errors import HubSpotError, Json, not_found, validation_error
from hsqbo_sandbox.hubspot._render import batch_body, json_response, record_json
from hsqbo_sandbox.hubspot._schema import ObjectType
from hsqbo_sandbox.hubspot._search import search
from hsqbo_sandbox.hubspot._store import Portal, Record
from hsqbo_sandbox.hubspot._values import iso_ms

BATCH_LIMIT = 100
LIST_LIMIT = 100
SEARCH_BODY_LIMIT = 3000  # characters (SEARCH: the limits of a search request)


def inline_associations(portal: Portal, object_type: ObjectType, specs: Any) -> list[tuple[Ref, AssociationKind]]:
    """`associations` of a create body (SPEC `PublicAssociationsForObject`): `[{to: {id}, types: [spec]}]`."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise validation_error("associations must be a list")
    links: list[tuple[Ref, AssociationKind]] = []
    for spec in specs:
        to_id = str((spec.get("to") or {}).get("id", "")) if isinstance(spec, dict) else ""
        types = spec.get("types") if isinstance(spec, dict) else None
        if not to_id.isdigit() or not isinstance(types, list) or not types:
            raise validation_error("each association needs to.id and a non-empty types list")
        for type_spec in types:
            type_id = type_spec.get("associationTypeId") if isinstance(type_spec, dict) else None
            kind = KINDS.get(type_id) if isinstance(type_id, int) else None
            if kind is None or kind.from_type != object_type.name:
                raise validation_error(
                    f"association type id {type_id} is not valid from {object_type.name}",
                    sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
            links.append(((kind.to_type, portal.resolve_id(int(to_id))), kind))
    return links


def _traced(inputs: list[Any]) -> bool:
    """Per-input errors (207) only when every input has its own objectWriteTraceId (ERR)."""
    trace_ids = [item.get("objectWriteTraceId") if isinstance(item, dict) else None for item in inputs]
    return all(isinstance(t, str) and t for t in trace_ids) and len(set(trace_ids)) == len(trace_ids)


def _trace_error(error: HubSpotError, item: Any) -> Json:
    standard = error.standard_error()
    standard["context"] = {**standard["context"], "objectWriteTraceId": [str(item.get("objectWriteTraceId"))]}
    return standard


def _naming_no_holder(error: HubSpotError) -> HubSpotError:
    """A unique-value refusal as a traced batch create's 207 shows it: naming no record holding the value (the docs
    say which inputs failed, not what their errors carry; the stricter reading)."""
    if error.category == "CONFLICT":
        return HubSpotError(error.status, error.category, "Contact already exists.")
    held = [detail for detail in error.errors or () if detail.get("code") == "UNIQUE_VALUE_CONFLICT"]
    if held:
        return validation_error(f"Another record already has this value of {held[0].get('in')}.")
    return error


def _missing_error(object_type: ObjectType, ids: list[str]) -> Json:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {object_type.label} objects, they may be deleted or not exist. Check that "
        "ids are valid.",
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }


class ObjectsApi:
    def __init__(self, guard: ApiGuard) -> None:
        self.guard = guard

    def routes(self) -> list[Route]:
        endpoint = self.guard.endpoint
        routes: list[Route] = []
        for base in ("/crm/v3/objects/{objectType}", "/crm/objects/{version}/{objectType}"):
            routes += [
                Route(f"{base}/search", endpoint(self.search, search=True), methods=["POST"]),
                Route(f"{base}/merge", endpoint(self.merge), methods=["POST"]),
                Route(f"{base}/batch/read", endpoint(self.batch_read), methods=["POST"]),
                Route(f"{base}/batch/create", endpoint(self.batch_create), methods=["POST"]),
                Route(f"{base}/batch/update", endpoint(self.batch_update), methods=["POST"]),
                Route(f"{base}/batch/upsert", endpoint(self.batch_upsert), methods=["POST"]),
                Route(f"{base}/batch/archive", endpoint(self.batch_archive), methods=["POST"]),
                Route(base, endpoint(self.list_records), methods=["GET"]),
                Route(base, endpoint(self.create), methods=["POST"]),
                Route(f"{base}/{{objectId}}", endpoint(self.get), methods=["GET"]),
                Route(f"{base}/{{objectId}}", endpoint(self.update), methods=["PATCH"]),
                Route(f"{base}/{{objectId}}", endpoint(self.archive), methods=["DELETE"]),
            ]
        return routes

    # single records

    async def get(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        key = request.path_params["objectId"]
        archived = request.query_params.get("archived", "false") == "true"
        record = ctx.portal.find(object_type, key, request.query_params.get("idProperty"), archived=archived)
        if record is None:
            raise not_found(f"Object not found.  objectId are usually numeric. ({object_type.singular} {key})")
        return json_response(record_json(
            ctx.portal, record, properties=list_param(request, "properties"),
            with_history=list_param(request, "propertiesWithHistory"),
            associations=list_param(request, "associations"),
        ))  # fmt: skip

    async def list_records(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        limit = int_param(request, "limit", 10, maximum=LIST_LIMIT)
        after_text = request.query_params.get("after", "0")
        if not after_text.isdigit():
            raise validation_error(f"after must be a paging cursor returned by a previous page, got {after_text!r}")
        after = int(after_text)
        if request.query_params.get("archived", "false") == "true":
            table = ctx.portal.archived_records(object_type)
            ids = sorted(table)
        else:
            table = ctx.portal.live(object_type)
            ids = ctx.portal.ordered_ids(object_type)
        start = bisect.bisect_left(ids, after)
        page_ids = ids[start : start + limit]
        properties = list_param(request, "properties")
        history = list_param(request, "propertiesWithHistory")
        associations = list_param(request, "associations")
        body: Json = {"results": [
            record_json(ctx.portal, table[i], properties=properties, with_history=history, associations=associations)
            for i in page_ids
        ]}  # fmt: skip
        if start + limit < len(ids):
            cursor = str(ids[start + limit])
            body["paging"] = {"next": {"after": cursor, "link": f"{request.url.path}?after={cursor}&limit={limit}"}}
        return json_response(body)

    async def create(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise validation_error("The request body must be a JSON object with `properties`")
        links = inline_associations(ctx.portal, object_type, body.get("associations"))
        record = ctx.portal.create(object_type, body.get("properties") or {}, ctx.actor, associations=links)
        return json_response(record_json(ctx.portal, record, all_set=True), 201)

    async def update(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise validation_error("The request body must be a JSON object with `properties`")
        record = ctx.portal.get(object_type, request.path_params["objectId"], request.query_params.get("idProperty"))
        ctx.portal.update(record, body["properties"], ctx.actor)
        return json_response(record_json(ctx.portal, record, all_set=True))

    async def archive(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        record = ctx.portal.find(object_type, request.path_params["objectId"])
        if record is not None:
            ctx.portal.archive(record, ctx.actor)
        return Response(status_code=204)

    async def merge(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        body = await json_body(request)
        if not isinstance(body, dict) or not body.get("primaryObjectId") or not body.get("objectIdToMerge"):
            raise validation_error("merge needs primaryObjectId and objectIdToMerge")
        record = ctx.portal.merge(object_type, str(body["primaryObjectId"]), str(body["objectIdToMerge"]), ctx.actor)
        return json_response(record_json(ctx.portal, record, all_set=True))

    async def search(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        if len(await request.body()) > SEARCH_BODY_LIMIT:
            raise validation_error(f"The search request body is longer than {SEARCH_BODY_LIMIT} characters")
        body = await json_body(request)
        page, total, next_after = search(ctx.portal, object_type, body, result_cap=ctx.account.search_result_cap)
        properties = body.get("properties") if isinstance(body.get("properties"), list) else None
        answer: Json = {"total": total, "results": [record_json(ctx.portal, r, properties=properties) for r in page]}
        if next_after >= 0:
            answer["paging"] = {"next": {"after": str(next_after)}}
        return json_response(answer)

    # batches

    async def batch_read(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        started = iso_ms(ctx.portal.now_ms())
        body = await json_body(request)
        inputs = inputs_of(body, limit=BATCH_LIMIT)
        id_property = body.get("idProperty")
        archived = request.query_params.get("archived", "false") == "true"
        properties = body.get("properties") if isinstance(body.get("properties"), list) else None
        history = body.get("propertiesWithHistory") if isinstance(body.get("propertiesWithHistory"), list) else None
        found: dict[int, Record] = {}
        missing: list[str] = []
        for item in inputs:
            key = str(item.get("id", "")) if isinstance(item, dict) else ""
            record = ctx.portal.find(object_type, key, id_property, archived=archived)
            if record is None:
                missing.append(key)
            else:
                found.setdefault(record.id, record)
        results = [record_json(ctx.portal, r, properties=properties, with_history=history) for r in found.values()]
        errors = [_missing_error(object_type, missing)] if missing else []
        return json_response(batch_body(results, errors, started, iso_ms(ctx.portal.now_ms())),
                             207 if errors else 200)  # fmt: skip

    async def batch_create(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        started = iso_ms(ctx.portal.now_ms())
        inputs = inputs_of(await json_body(request), limit=BATCH_LIMIT)
        portal = ctx.portal
        traced = _traced(inputs)

        def prepare(item: Any) -> Callable[[], Record]:
            if not isinstance(item, dict):
                raise validation_error("each input must be an object with `properties`")
            raw = item.get("properties") or {}
            links = inline_associations(portal, object_type, item.get("associations"))
            try:
                portal.check_create(object_type, raw, links)
            except HubSpotError as exc:
                if traced:
                    raise _naming_no_holder(exc) from exc
                raise
            return lambda: portal.create(object_type, raw, ctx.actor, associations=links)

        return self._run_batch(ctx, object_type, inputs, prepare, started, success_status=201)

    async def batch_update(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        started = iso_ms(ctx.portal.now_ms())
        inputs = inputs_of(await json_body(request), limit=BATCH_LIMIT)
        portal = ctx.portal
        missing: list[str] = []

        def prepare(item: Any) -> Callable[[], Record] | None:
            if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
                raise validation_error("each input needs `id` and `properties`")
            record = portal.find(object_type, str(item.get("id", "")), item.get("idProperty"))
            if record is None:
                missing.append(str(item.get("id", "")))
                return None
            portal.check_update(record, item["properties"])
            return lambda: portal.update(record, item["properties"], ctx.actor)

        return self._run_batch(ctx, object_type, inputs, prepare, started, missing=missing)

    async def batch_upsert(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        started = iso_ms(ctx.portal.now_ms())
        inputs = inputs_of(await json_body(request), limit=BATCH_LIMIT)
        portal = ctx.portal
        keys = [(item.get("idProperty"), str(item.get("id"))) for item in inputs if isinstance(item, dict)]
        if len(set(keys)) != len(keys):
            raise validation_error("Duplicate IDs found in batch input: each id may appear once")
        created: set[int] = set()

        def prepare(item: Any) -> Callable[[], Record]:
            if not isinstance(item, dict) or not isinstance(item.get("properties"), dict) or not item.get("id"):
                raise validation_error("each input needs `id`, `idProperty` and `properties`")
            id_property = item.get("idProperty")
            if not isinstance(id_property, str) or id_property == "hs_object_id":
                raise validation_error("upsert needs `idProperty` naming a unique property")
            key = str(item["id"])
            record = portal.find(object_type, key, id_property)
            if record is not None:
                portal.check_update(record, item["properties"])
                return lambda: portal.update(record, item["properties"], ctx.actor)
            raw = {**item["properties"], id_property: key}
            portal.check_create(object_type, raw)

            def create() -> Record:
                new = portal.create(object_type, raw, ctx.actor)
                created.add(new.id)
                return new

            return create

        return self._run_batch(ctx, object_type, inputs, prepare, started, upserted=created)

    async def batch_archive(self, request: Request, ctx: Context) -> Response:
        object_type = object_type_param(request)
        inputs = inputs_of(await json_body(request), limit=BATCH_LIMIT)
        records = [ctx.portal.find(object_type, str(item.get("id", ""))) for item in inputs if isinstance(item, dict)]
        for record in records:
            if record is not None and not record.archived:
                ctx.portal.archive(record, ctx.actor)
        return Response(status_code=204)

    def _run_batch(
        self,
        ctx: Context,
        object_type: ObjectType,
        inputs: list[Any],
        prepare: Callable[[Any], Callable[[], Record] | None],
        started: str,
        *,
        success_status: int = 200,
        missing: list[str] | None = None,
        upserted: set[int] | None = None,
    ) -> Response:
        """Validate every input first (all-or-nothing unless traced), then apply; unique values repeated inside
        the batch are a conflict too."""
        traced = _traced(inputs)
        errors: list[Json] = []
        actions: list[tuple[Any, Callable[[], Record]]] = []
        seen_unique: dict[tuple[str, str], int] = {}
        for position, item in enumerate(inputs):
            try:
                self._check_repeats(ctx.portal, object_type, item, position, seen_unique)
                action = prepare(item)
            except HubSpotError as exc:
                if not traced:
                    raise
                errors.append(_trace_error(exc, item))
                continue
            if action is not None:
                actions.append((item, action))
        results: list[Json] = []
        for item, action in actions:
            record = action()
            body = record_json(ctx.portal, record, all_set=True)
            if upserted is not None:
                body["new"] = record.id in upserted
            if isinstance(item, dict) and item.get("objectWriteTraceId"):
                body["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(body)
        if missing:
            errors.append(_missing_error(object_type, missing))
        status = 207 if errors else success_status
        return json_response(batch_body(results, errors, started, iso_ms(ctx.portal.now_ms())), status)

    @staticmethod
    def _check_repeats(portal: Portal, object_type: ObjectType, item: Any, position: int,
                       seen: dict[tuple[str, str], int]) -> None:  # fmt: skip
        properties = item.get("properties") if isinstance(item, dict) else None
        if not isinstance(properties, dict):
            return
        for name, value in properties.items():
            prop = portal.property_def(object_type, name)
            if prop is None or not prop.has_unique_value or value in (None, ""):
                continue
            key = (name, str(value).lower() if name == "email" else str(value))
            if key in seen:
                raise validation_error(
                    f"Duplicate value {value} for unique property {name} in inputs {seen[key]} and {position}"
                )
            seen[key] = position

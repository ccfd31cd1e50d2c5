"""JSON answers in HubSpot's shapes (SPEC `SimplePublicObject(WithAssociations)`, `ValueWithTimestamp`,
`CollectionResponseAssociatedId`), serialised with `shared.money.dumps` (Decimals as exact numbers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import Response

from hsqbo_sandbox.hubspot._associations import KINDS
from hsqbo_sandbox.hubspot._errors import HubSpotError
from hsqbo_sandbox.hubspot._schema import ObjectType, object_type_named
from hsqbo_sandbox.hubspot._store import Portal, Record
from hsqbo_sandbox.hubspot._values import iso_ms
from shared import money

Json = dict[str, Any]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(money.dumps(body), status_code=status, headers=headers, media_type="application/json")


def error_response(error: HubSpotError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)


def property_names(object_type: ObjectType, requested: Iterable[str] | None) -> list[str]:
    """The properties an answer shows: those requested (or the type's defaults) plus the system ones."""
    names = list(object_type.default_properties if requested is None else requested)
    return names + [name for name in object_type.system_properties if name not in names]


def record_json(
    portal: Portal,
    record: Record,
    *,
    properties: list[str] | None = None,
    all_set: bool = False,
    with_history: list[str] | None = None,
    associations: list[str] | None = None,
) -> Json:
    """`all_set`: every property with a value (create/update answers); otherwise `properties` or the defaults,
    with null for those the record has no value for (unknown names are left out, as HubSpot does)."""
    if all_set:
        shown: Json = dict(record.properties)
    else:
        defined = portal.properties[record.object_type.name]
        shown = {name: record.properties.get(name) for name in property_names(record.object_type, properties)
                 if name in defined}  # fmt: skip
    body: Json = {
        "id": str(record.id),
        "properties": shown,
        "createdAt": iso_ms(record.created_ms),
        "updatedAt": iso_ms(record.updated_ms),
        "archived": record.archived,
    }
    if record.archived_ms is not None:
        body["archivedAt"] = iso_ms(record.archived_ms)
    if with_history:
        body["propertiesWithHistory"] = {
            name: [
                {"value": value, "timestamp": iso_ms(at), "sourceType": actor.change_source,
                 **({"sourceId": actor.source_id} if actor.source_id else {}),
                 **({"updatedByUserId": actor.user_id} if actor.user_id is not None else {})}
                for value, at, actor in record.history.get(name, [])
            ]
            for name in with_history
        }  # fmt: skip
    if associations:
        linked = _associations_json(portal, record, associations)
        if linked:
            body["associations"] = linked
    return body


def _associations_json(portal: Portal, record: Record, to_types: list[str]) -> Json:
    linked: Json = {}
    for requested in to_types:
        to_type = object_type_named(requested)
        if to_type is None:
            continue
        targets = portal.associations.targets((record.object_type.name, record.id), to_type.name)
        results = [
            {"id": str(to_id), "type": KINDS[type_id].name}
            for to_id, type_ids in sorted(targets.items())
            for type_id in sorted(type_ids)
        ]
        if results:
            linked[requested] = {"results": results}
    return linked


def batch_body(results: list[Json], errors: list[Json], started: str, completed: str) -> Json:
    """A batch answer (SPEC BatchResponse...): `numErrors` and `errors` only when some inputs failed."""
    body: Json = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": completed}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    return body

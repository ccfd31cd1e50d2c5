"""HubSpot webhook bodies → change envelopes.

A body is a JSON array of events. The event type is `subscriptionType` in every real payload (the docs' table says
`eventType`; both are accepted). Classic types name the object (`contact.propertyChange`); generic `object.*` types
carry `objectTypeId` instead (`0-53` for invoices).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from shared.domain import Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.errors import PayloadError

OBJECT_TYPE_IDS = {
    "0-1": "contact",
    "0-2": "company",
    "0-3": "deal",
    "0-7": "product",
    "0-8": "line_item",
    "0-53": "invoice",
    "0-84": "discount",
    "0-85": "fee",
    "0-86": "tax",
    "0-101": "commerce_payment",
}
# Objects whose changes can affect what hsqbo syncs (companies name customers, deals show payments).
SYNCED_OBJECTS = frozenset(OBJECT_TYPE_IDS.values())

ACTIONS = {
    "creation": Operation.CREATED,
    "propertyChange": Operation.UPDATED,
    "deletion": Operation.DELETED,
    "privacyDeletion": Operation.DELETED,
    "merge": Operation.MERGED,
    "restore": Operation.RESTORED,
    "associationChange": Operation.ASSOCIATION_CHANGED,
}


def _id(value: Any, field: str, index: int) -> str:
    if type(value) is str and value.strip():  # the usual shapes first: a string, an integer (not a bool)
        return value
    if type(value) is int:
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise PayloadError(f"event {index}: '{field}' must be an id (integer or string)")
    return str(value)


def event_key(event: dict[str, Any]) -> str:
    """Equal for a resend of the same event (HubSpot bumps only attemptNumber), different otherwise. `eventId`
    alone is documented as not guaranteed unique, so the whole event is hashed. Takes `attemptNumber` out of
    `event` (the parsed body's own dict: no copy)."""
    event.pop("attemptNumber", None)
    return "hs-" + hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]


def parse(body: bytes, *, request_id: str | None = None) -> tuple[list[ChangeEnvelope], list[str]]:
    """Return (envelopes to queue, event types ignored), each carrying the webhook's `request_id`. Raise PayloadError
    naming the first problem."""
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if not isinstance(events, list):
        raise PayloadError("body must be a JSON array of events")
    envelopes: list[ChangeEnvelope] = []
    ignored: list[str] = []
    for index, event in enumerate(events):
        envelope = _envelope(event, index, request_id)
        if isinstance(envelope, str):
            ignored.append(envelope)
        else:
            envelopes.append(envelope)
    return envelopes, ignored


def _envelope(event: Any, index: int, request_id: str | None) -> ChangeEnvelope | str:
    # The hot path of every delivery: each event's fields are read once.
    if not isinstance(event, dict):
        raise PayloadError(f"event {index} is not a JSON object")
    event_type = event["subscriptionType"] if "subscriptionType" in event else event.get("eventType")
    if not isinstance(event_type, str) or "." not in event_type:
        raise PayloadError(f"event {index}: 'subscriptionType' must be a string like 'contact.creation'")
    portal_id = _id(event.get("portalId"), "portalId", index)
    occurred_at = event.get("occurredAt")
    if type(occurred_at) is not int:  # not a bool either
        raise PayloadError(f"event {index}: 'occurredAt' must be epoch milliseconds")
    prefix, _, action = event_type.partition(".")
    operation = ACTIONS.get(action)
    if prefix == "object":
        type_id = event["objectTypeId"] if "objectTypeId" in event else event.get("fromObjectTypeId")
        if not isinstance(type_id, str):
            raise PayloadError(f"event {index}: generic '{event_type}' needs 'objectTypeId'")
        object_type = OBJECT_TYPE_IDS.get(type_id, type_id)
    else:
        object_type = prefix
    if operation is None or object_type not in SYNCED_OBJECTS:
        return event_type if prefix != "object" else f"{event_type}:{object_type}"

    merged_ids: tuple[str, ...] = ()
    if operation is Operation.MERGED:
        survivor = event.get("newObjectId", event.get("primaryObjectId", event.get("objectId")))
        object_id = _id(survivor, "primaryObjectId", index)
        losers = event.get("mergedObjectIds", [])
        if not isinstance(losers, list):
            raise PayloadError(f"event {index}: 'mergedObjectIds' must be an array")
        primary = event.get("primaryObjectId")
        merged_ids = tuple(str(loser) for loser in [*losers, primary] if loser is not None and str(loser) != object_id)
    elif operation is Operation.ASSOCIATION_CHANGED:
        object_id = _id(event.get("objectId", event.get("fromObjectId")), "fromObjectId", index)
    else:
        object_id = _id(event.get("objectId"), "objectId", index)

    property_name = event.get("propertyName")
    source_id = event.get("sourceId")
    change_source = event.get("changeSource")
    return ChangeEnvelope(  # positional: a profile's visible share per event with keywords
        Provider.HUBSPOT,
        portal_id,
        object_type,
        object_id,
        operation,
        occurred_at,
        event_key(event),
        property_name if isinstance(property_name, str) else None,
        change_source if isinstance(change_source, str) else None,
        str(source_id) if isinstance(source_id, int | str) else None,
        merged_ids,
        request_id,
    )

"""Intuit (QuickBooks Online) webhook bodies → change envelopes.

Two formats, told apart by shape: the classic object `{"eventNotifications": [...]}` (one realm per notification, no
event id) and the CloudEvents array (`qbo.<entity>.<verb>.v1`, one delivery may mix realms, `id` repeats on resend).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from shared.domain import Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.errors import PayloadError

SYNCED_ENTITIES = frozenset({"customer", "item", "invoice", "payment"})

# Verbs as documented (created, merged) and as seen in the wild (void and voided, delete and deleted...).
# An unknown verb still means "this record changed": queue it as an update and let the worker re-read.
VERBS = {
    "create": Operation.CREATED,
    "created": Operation.CREATED,
    "update": Operation.UPDATED,
    "updated": Operation.UPDATED,
    "delete": Operation.DELETED,
    "deleted": Operation.DELETED,
    "merge": Operation.MERGED,
    "merged": Operation.MERGED,
    "void": Operation.VOIDED,
    "voided": Operation.VOIDED,
    "emailed": Operation.EMAILED,
}


def _epoch_ms(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}: timestamp must be an ISO 8601 string")
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        raise PayloadError(f"{where}: '{value[:40]}' is not an ISO 8601 timestamp") from None


def _sub_second(value: Any) -> bool:
    """Whether a classic `lastUpdated` ("2025-09-08T20:52:31.657Z", not "2015-10-05T14:42:19-0700") tells apart two
    changes made within one second. No event id in the classic format: a resend repeats the entity exactly, so the
    entity is its deduplication key only when its timestamp is that fine."""
    return isinstance(value, str) and "." in value


def _text(mapping: dict[str, Any], field: str, where: str) -> str:
    value = mapping.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise PayloadError(f"{where}: '{field}' is missing or empty")
    return str(value)


def parse(body: bytes, *, received_at_ms: int, request_id: str | None = None) -> tuple[list[ChangeEnvelope], list[str]]:
    """Return (envelopes to queue, entity types ignored), each carrying the webhook's `request_id`. Raise
    PayloadError naming the first problem."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
    if isinstance(document, dict) and "eventNotifications" in document:
        envelopes = _classic(document, received_at_ms, request_id)
    elif isinstance(document, list) or (isinstance(document, dict) and "specversion" in document):
        envelopes = _cloudevents(document if isinstance(document, list) else [document], received_at_ms, request_id)
    else:
        raise PayloadError("body is neither a CloudEvents array nor an object with 'eventNotifications'")
    queued = [envelope for envelope in envelopes if envelope.object_type in SYNCED_ENTITIES]
    ignored = [envelope.object_type for envelope in envelopes if envelope.object_type not in SYNCED_ENTITIES]
    return queued, ignored


def _classic(document: dict[str, Any], received_at_ms: int, request_id: str | None) -> list[ChangeEnvelope]:
    notifications = document["eventNotifications"]
    if not isinstance(notifications, list):
        raise PayloadError("'eventNotifications' must be an array")
    envelopes: list[ChangeEnvelope] = []
    for n, notification in enumerate(notifications):
        where = f"eventNotifications[{n}]"
        if not isinstance(notification, dict):
            raise PayloadError(f"{where} is not an object")
        realm_id = _text(notification, "realmId", where)
        change = notification.get("dataChangeEvent")
        entities = change.get("entities") if isinstance(change, dict) else None
        if not isinstance(entities, list):
            raise PayloadError(f"{where}: 'dataChangeEvent.entities' must be an array")
        for e, entity in enumerate(entities):
            here = f"{where}.entities[{e}]"
            if not isinstance(entity, dict):
                raise PayloadError(f"{here} is not an object")
            name = _text(entity, "name", here).lower()
            verb = _text(entity, "operation", here).lower()
            deleted_id = entity.get("deletedId")
            occurred = _epoch_ms(entity.get("lastUpdated"), here)
            identity = orjson.dumps([realm_id, entity], option=orjson.OPT_SORT_KEYS)
            if not _sub_second(entity.get("lastUpdated")):
                # Two real changes within one second look exactly like a resend: queue both (a resend then costs
                # one redundant re-read) rather than drop a change.
                identity += f"/{received_at_ms}/{len(envelopes)}".encode()
            envelopes.append(
                ChangeEnvelope(
                    provider=Provider.QUICKBOOKS,
                    account_id=realm_id,
                    object_type=name,
                    object_id=_text(entity, "id", here),
                    operation=VERBS.get(verb, Operation.UPDATED),
                    occurred_at_ms=occurred if occurred is not None else received_at_ms,
                    event_id="qc-" + hashlib.sha256(identity).hexdigest()[:40],
                    merged_ids=(str(deleted_id),) if deleted_id else (),
                    request_id=request_id,
                )
            )
    return envelopes


def _cloudevents(events: list[Any], received_at_ms: int, request_id: str | None) -> list[ChangeEnvelope]:
    envelopes = []
    for index, event in enumerate(events):
        where = f"event {index}"
        if not isinstance(event, dict):
            raise PayloadError(f"{where} is not an object")
        event_type = _text(event, "type", where)
        parts = event_type.lower().split(".")
        if len(parts) < 3 or parts[0] != "qbo":
            raise PayloadError(f"{where}: type '{event_type[:60]}' is not 'qbo.<entity>.<verb>.v1'")
        data = event.get("data")
        deleted_id = data.get("deletedid", data.get("deletedId")) if isinstance(data, dict) else None
        occurred = _epoch_ms(event.get("time"), where)
        envelopes.append(
            ChangeEnvelope(
                provider=Provider.QUICKBOOKS,
                account_id=_text(event, "intuitaccountid", where),
                object_type=parts[1],
                object_id=_text(event, "intuitentityid", where),
                operation=VERBS.get(parts[2], Operation.UPDATED),
                occurred_at_ms=occurred if occurred is not None else received_at_ms,
                event_id="qe-" + _text(event, "id", where),
                merged_ids=(str(deleted_id),) if deleted_id else (),
                request_id=request_id,
            )
        )
    return envelopes

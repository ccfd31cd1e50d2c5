"""Webhook events built from the store's changes, as HubSpot's webhooks API delivers them (WH-DOC; GEN-WH; the
[3P] captures quoted in the reference).

Subscription types per object (the app is subscribed to every type below, all properties):
- contacts, companies, deals, line items: classic `contact.*`, `company.*`, `deal.*`, `line_item.*` (creation,
  deletion, merge (contacts, companies and deals only), restore, propertyChange, associationChange);
- products: classic `product.*` without associationChange (HubSpot has no `product.associationChange`);
- invoices and commerce payments: generic `object.*` with `objectTypeId` ("0-53", "0-101"); classic types do not
  exist for them.
Every event: eventId, subscriptionId, portalId, appId, occurredAt (ms), subscriptionType, attemptNumber (set per
delivery attempt by the dispatcher), objectId, changeSource, sourceId (writes with the app's token:
INTEGRATION / "<appId>"; user edits: CRM_UI / "userId:N"; computed values: CALCULATED, no sourceId).
propertyChange: one event per changed property (propertyName, propertyValue, isSensitive). creation: changeFlag
CREATED. merge: primaryObjectId, mergedObjectIds, newObjectId, numberOfPropertiesMoved. associationChange: one
event per side (each side's subscription), associationType like CONTACT_TO_COMPANY, fromObjectId, toObjectId,
associationRemoved, isPrimaryAssociation; the generic form adds fromObjectTypeId, toObjectTypeId and
associationTypeId (undocumented for generic events; our choice).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson

from hsqbo_sandbox.hubspot._associations import KINDS, AssociationChange
from hsqbo_sandbox.hubspot._schema import BY_NAME, ObjectType
from hsqbo_sandbox.hubspot._store import Change
from shared.signatures import hubspot_v1, hubspot_v3

Event = dict[str, Any]

_KINDS = ("creation", "deletion", "merge", "restore", "propertyChange", "associationChange")


def subscription_type(object_type: ObjectType, kind: str) -> str | None:
    """The subscription an event of this kind on this object type is delivered under; None when none exists."""
    if not object_type.legacy_webhooks:
        return f"object.{kind}"
    if kind == "merge" and not object_type.mergeable:
        return None
    if kind == "associationChange" and object_type.name == "products":
        return None
    return f"{object_type.singular}.{kind}"


# Stable subscription ids, one per subscription type (a real app numbers its subscriptions too).
_LEGACY_OBJECTS = ("contact", "company", "deal", "product", "line_item")
SUBSCRIPTION_IDS: dict[str, int] = {
    name: 7_000 + number
    for number, name in enumerate(
        sorted({f"object.{k}" for k in _KINDS} | {f"{s}.{k}" for s in _LEGACY_OBJECTS for k in _KINDS})
    )
}


class EventBuilder:
    def __init__(self, app_id: int) -> None:
        self.app_id = app_id
        self._event_ids = itertools.count(1_000_000_001)

    def build(self, portal_id: int, change: Change) -> list[Event]:
        if change.kind == "associationChange":
            assert change.association is not None
            return [
                event
                for side in (change.association, _reversed(change.association))
                if (event := self._association_event(portal_id, change, side)) is not None
            ]
        name = subscription_type(change.object_type, change.kind)
        if name is None:
            return []
        event = self._base(portal_id, change, name, change.object_type, change.object_id)
        if change.kind == "creation":
            event["changeFlag"] = "CREATED"
        elif change.kind == "propertyChange":
            event.update(propertyName=change.property_name, propertyValue=change.property_value or "",
                         isSensitive=False)  # fmt: skip
        elif change.kind == "merge":
            event.update(primaryObjectId=change.primary_id, mergedObjectIds=list(change.merged_ids),
                         newObjectId=change.primary_id, numberOfPropertiesMoved=change.properties_moved)  # fmt: skip
        return [event]

    def _association_event(self, portal_id: int, change: Change, side: AssociationChange) -> Event | None:
        from_type, to_type = BY_NAME[side.from_ref[0]], BY_NAME[side.to_ref[0]]
        name = subscription_type(from_type, "associationChange")
        if name is None:
            return None
        event = self._base(portal_id, change, name, from_type, side.from_ref[1])
        event.update(
            associationType=f"{from_type.singular}_TO_{to_type.singular}".upper(),
            fromObjectId=side.from_ref[1],
            toObjectId=side.to_ref[1],
            associationRemoved=side.removed,
            isPrimaryAssociation=side.kind.primary,
        )
        if not from_type.legacy_webhooks:
            event.update(fromObjectTypeId=from_type.type_id, toObjectTypeId=to_type.type_id,
                         associationTypeId=side.kind.type_id)  # fmt: skip
        return event

    def _base(self, portal_id: int, change: Change, name: str, object_type: ObjectType, object_id: int) -> Event:
        event: Event = {
            "eventId": next(self._event_ids),
            "subscriptionId": SUBSCRIPTION_IDS[name],
            "portalId": portal_id,
            "appId": self.app_id,
            "occurredAt": change.occurred_ms,
            "subscriptionType": name,
            "attemptNumber": 0,
            "objectId": object_id,
            "changeSource": change.actor.change_source,
        }
        if change.actor.source_id is not None:
            event["sourceId"] = change.actor.source_id
        if not object_type.legacy_webhooks:
            event["objectTypeId"] = object_type.type_id
        return event


def _reversed(change: AssociationChange) -> AssociationChange:
    return AssociationChange(change.to_ref, change.from_ref, KINDS[change.kind.reverse_id], change.removed)


def encode_batch(events: list[Event]) -> bytes:
    return orjson.dumps(events)


def signer(client_secret: str) -> Any:
    """sign(body, url) -> headers: v1 and v3 signatures with the app's client secret, as HubSpot sends both.

    The v3 timestamp is the wall clock, not the sandbox clock: the receiver checks it against its own clock."""

    def sign(body: bytes, url: str) -> dict[str, str]:
        timestamp = str(int(time.time() * 1000))
        return {
            "X-HubSpot-Signature": hubspot_v1(client_secret, body),
            "X-HubSpot-Signature-Version": "v1",
            "X-HubSpot-Signature-v3": hubspot_v3(client_secret, "POST", url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
        }

    return sign


def partition_by_portal(event: Event) -> str:
    return str(event["portalId"])

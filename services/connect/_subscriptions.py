"""The HubSpot webhook subscriptions hsqbo needs, derived from what it syncs, and the check of an app's list.

Every object the receiver turns into work (contacts, products, line items, invoices, commerce payments) is
subscribed for the actions the sync rules act on, and for a property change of every HubSpot property a rule reads
(the default mappings, plus a connection's custom mappings and invoice custom fields). `deploy/hubspot-app/` declares
exactly the defaults (a test holds them equal); `hsqbo config check` compares the app's live list against this one.

HubSpot's webhooks API (`GET /webhooks/v3/{appId}/subscriptions`) answers `eventType` either classic
(`contact.propertyChange`) or generic (`object.propertyChange` with `objectTypeId` "0-53"); both are read as the same
subscription. A paused one (`active` false) delivers nothing, so it counts as missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from services.receiver._hubspot import OBJECT_TYPE_IDS
from services.worker.rules import contacts, invoices, payments, products
from services.worker.rules._invoice_lines import LINE_ITEM_PROPERTIES
from shared.syncconfig import SyncSettings

# Actions per object: what the receiver turns into work for it (product has no associationChange in HubSpot).
ACTIONS: dict[str, tuple[str, ...]] = {
    "contact": ("creation", "deletion", "merge", "restore", "associationChange"),
    "product": ("creation", "deletion", "merge", "restore"),
    "line_item": ("creation", "deletion", "associationChange"),
    "invoice": ("creation", "deletion", "restore", "associationChange"),
    "commerce_payment": ("creation", "deletion", "associationChange"),
}
_OBJECT_IDS = {name: type_id for type_id, name in OBJECT_TYPE_IDS.items()}


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class Subscription:
    """One webhook subscription: an object, an action and, for propertyChange, the property."""

    object_type: str  # "contact", "line_item", "commerce_payment" (HubSpot's objectType names)
    action: str  # "creation", "propertyChange", ...
    property_name: str | None = None

    def __str__(self) -> str:
        name = f"{self.object_type}.{self.action}"
        return f"{name} ({self.property_name})" if self.property_name else name


def default_properties() -> dict[str, set[str]]:
    """The HubSpot properties the sync rules read and write by default, per object."""
    return {
        "contact": {m.hubspot_property for m in contacts.SPEC.fields},
        "product": {m.hubspot_property for m in products.SPEC.fields},
        "line_item": set(LINE_ITEM_PROPERTIES),
        "invoice": {m.hubspot_property for m in invoices.HEADER} | {"hs_invoice_status", "hs_currency", "hs_number"},
        "commerce_payment": {*payments.SYNCED_PROPERTIES, "hs_latest_status"},
    }


def required(sync: SyncSettings | None = None) -> list[Subscription]:
    """Every subscription hsqbo needs: the defaults, plus the properties `sync`'s connections add."""
    properties = default_properties()
    for connection in sync.connection if sync else ():
        properties["contact"] |= {m.hubspot_property for m in connection.contacts.custom_mappings}
        properties["product"] |= {m.hubspot_property for m in connection.products.custom_mappings}
        properties["invoice"] |= set(connection.invoices.custom_fields.values())
        properties["invoice"] |= {m.hubspot_property for m in connection.invoices.custom_mappings}
    wanted = {Subscription(kind, action) for kind, actions in ACTIONS.items() for action in actions}
    wanted |= {Subscription(kind, "propertyChange", name) for kind, names in properties.items() for name in names}
    return sorted(wanted)


def from_api(result: Mapping[str, Any]) -> Subscription | None:
    """One entry of the webhooks API's `results`, or None for one hsqbo does not read (or a paused one)."""
    if result.get("active") is False:
        return None
    event_type = str(result.get("eventType") or result.get("subscriptionType") or "")
    prefix, _, action = event_type.partition(".")
    if prefix == "object":
        object_type = OBJECT_TYPE_IDS.get(str(result.get("objectTypeId", "")))
        if object_type is None:
            object_type = str(result.get("objectType") or result.get("objectName") or "") or None
    else:
        object_type = prefix or None
    if object_type is None or not action:
        return None
    name = result.get("propertyName")
    return Subscription(object_type, action, str(name) if action == "propertyChange" and name else None)


def from_app_file(config: Mapping[str, Any]) -> list[Subscription]:
    """The subscriptions a `webhooks-hsmeta.json` declares (its `config.subscriptions`)."""
    declared = config.get("config", {}).get("subscriptions", {})
    found = []
    for entry in (*declared.get("crmObjects", ()), *declared.get("legacyCrmObjects", ())):
        subscription = from_api(entry)
        if subscription is not None:
            found.append(subscription)
    return sorted(set(found))


def missing(wanted: Iterable[Subscription], present: Iterable[Subscription]) -> list[Subscription]:
    return sorted(set(wanted) - set(present))


def app_file_entries(subscriptions: Iterable[Subscription]) -> list[dict[str, Any]]:
    """The `crmObjects` entries of a `webhooks-hsmeta.json` for `subscriptions` (generic `object.*` types)."""
    entries = []
    for subscription in sorted(subscriptions):
        entry: dict[str, Any] = {
            "subscriptionType": f"object.{subscription.action}",
            "objectType": subscription.object_type,
        }
        if subscription.property_name:
            entry["propertyName"] = subscription.property_name
        entry["active"] = True
        entries.append(entry)
    return entries


def object_type_id(object_type: str) -> str:
    return _OBJECT_IDS[object_type]

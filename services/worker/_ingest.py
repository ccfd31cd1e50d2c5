"""A change envelope → the records it asks the worker to bring up to date (store pending keys, with hints).

Dropped here, before any API call: events for accounts no connection covers, object types hsqbo does not sync,
directions switched off, and HubSpot's echo of our own writes (changeSource INTEGRATION with our app id).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.envelope import ChangeEnvelope, Operation, Provider
from shared.store import Kind, PendingKey
from shared.syncconfig import ConnectionSettings, ObjectSettings, SyncSettings

HUBSPOT_KINDS = {
    "contact": Kind.CONTACT,
    "product": Kind.PRODUCT,
    "invoice": Kind.INVOICE,
    "commerce_payment": Kind.PAYMENT,
}
QBO_KINDS = {"customer": Kind.CONTACT, "item": Kind.PRODUCT, "invoice": Kind.INVOICE, "payment": Kind.PAYMENT}


@dataclasses.dataclass(frozen=True, slots=True)
class Work:
    key: PendingKey
    hints: dict[str, Any]


def object_settings(connection: ConnectionSettings, kind: Kind) -> ObjectSettings:
    return {
        Kind.CONTACT: connection.contacts,
        Kind.PRODUCT: connection.products,
        Kind.INVOICE: connection.invoices,
        Kind.PAYMENT: connection.payments,
    }[kind]


def is_our_echo(envelope: ChangeEnvelope, app_id: str | None) -> bool:
    return (
        envelope.provider == Provider.HUBSPOT
        and envelope.change_source == "INTEGRATION"
        and app_id is not None
        and envelope.source_id == app_id
    )


def route(envelope: ChangeEnvelope, sync: SyncSettings, app_id: str | None) -> tuple[list[Work], str | None]:
    """The work this envelope asks for, or none and the reason it is dropped."""
    if is_our_echo(envelope, app_id):
        return [], "echo of our own write"
    kinds = HUBSPOT_KINDS if envelope.provider == Provider.HUBSPOT else QBO_KINDS
    kind = kinds.get(envelope.object_type)
    if kind is None:
        return [], f"{envelope.object_type} is not synced"
    connections = sync.for_account(envelope.provider, envelope.account_id)
    if not connections:
        return [], f"no connection for {envelope.provider} account {envelope.account_id}"
    hints: dict[str, Any] = {}
    if envelope.operation in (Operation.DELETED, Operation.VOIDED):
        hints[str(envelope.operation)] = True
    if envelope.merged_ids:
        hints["merged_ids"] = {merged: True for merged in envelope.merged_ids}
    work = [
        Work(PendingKey(connection.name, kind, envelope.provider, envelope.object_id), hints)
        for connection in connections
        if object_settings(connection, kind).syncs_from(envelope.provider)
    ]
    return work, None if work else f"{kind} sync from {envelope.provider} is off"

"""A change envelope → the records it asks the worker to bring up to date (store pending keys, with hints). A message
on `hsqbo.changes` carries a whole delivery's events (`shared.envelope.decode_changes` splits it); each event is
routed here on its own, so a delivery of 20 events touches each of its records as 20 messages did.

Dropped here, before any API call: events for accounts no connection covers, object types hsqbo does not sync,
directions switched off, and HubSpot's echo of our own writes (changeSource INTEGRATION with our app id).

A HubSpot line item (likewise an invoice's discount, fee or tax object) is part of an invoice: a property change of
it is work for the invoice, keyed by the part (`PendingKey.part`, so it never coalesces with an invoice's own key);
the engine finds the parent invoice through the association (one read) and wakes it. Its other events are dropped:
a line item joining or leaving an invoice (created with it, associated, deleted) gives the invoice its own
association event, and a computed value (changeSource CALCULATED, e.g. the amount) follows a property change already
sent.

Likewise, under the incumbent's contact filter (`require_hubspot_invoice`: a contact syncs to QBO once it has a
non-draft HubSpot invoice) a HubSpot invoice change is also work for the invoice's contacts (part `invoice`), since
opening an invoice changes no contact.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.domain import Kind, Part, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.syncconfig import SyncSettings

HUBSPOT_KINDS = {
    "contact": Kind.CONTACT,
    "product": Kind.PRODUCT,
    "invoice": Kind.INVOICE,
    "commerce_payment": Kind.PAYMENT,
}
QBO_KINDS = {"customer": Kind.CONTACT, "item": Kind.PRODUCT, "invoice": Kind.INVOICE, "payment": Kind.PAYMENT}


@dataclasses.dataclass(frozen=True, slots=True)
class Parents:
    """Where the records a part belongs to are found: its HubSpot association to their object type."""

    hubspot_type: str  # the part's object type in the API ("line_items")
    parent_type: str  # the parents' ("invoices")


PARENTS = {
    Part.LINE_ITEM: Parents("line_items", "invoices"),
    Part.DISCOUNT: Parents("discounts", "invoices"),  # invoice-level discounts, fees and taxes
    Part.FEE: Parents("fees", "invoices"),
    Part.TAX: Parents("taxes", "invoices"),
    Part.INVOICE: Parents("invoices", "contacts"),  # under require_hubspot_invoice
}
# A HubSpot object type whose changes are its invoice's -> the part it is.
INVOICE_PARTS = {str(part): part for part in (Part.LINE_ITEM, Part.DISCOUNT, Part.FEE, Part.TAX)}


@dataclasses.dataclass(frozen=True, slots=True)
class Work:
    key: PendingKey
    hints: dict[str, Any]


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
    object_id = envelope.object_id
    part = INVOICE_PARTS.get(envelope.object_type) if envelope.provider == Provider.HUBSPOT else None
    if part is not None:
        if envelope.operation != Operation.UPDATED or envelope.change_source == "CALCULATED":
            return [], f"{envelope.object_type} {envelope.operation} does not change its {Kind.INVOICE}"
        kind: Kind | None = Kind.INVOICE
    else:
        kind = (HUBSPOT_KINDS if envelope.provider == Provider.HUBSPOT else QBO_KINDS).get(envelope.object_type)
    if kind is None:
        return [], f"{envelope.object_type} is not synced"
    connections = sync.for_account(envelope.provider, envelope.account_id)
    if not connections:
        return [], f"no connection for {envelope.provider} account {envelope.account_id}"
    hints: dict[str, Any] = {}
    if envelope.operation in (Operation.DELETED, Operation.VOIDED, Operation.DRIFTED):
        hints[str(envelope.operation)] = True
    if envelope.merged_ids:
        hints["merged_ids"] = {merged: True for merged in envelope.merged_ids}
    work = [
        Work(PendingKey(connection.name, kind, envelope.provider, object_id, part), hints)
        for connection in connections
        if connection.objects(kind).syncs_from(envelope.provider)
    ]
    if kind == Kind.INVOICE and part is None and envelope.provider == Provider.HUBSPOT:
        work += [
            Work(PendingKey(connection.name, Kind.CONTACT, Provider.HUBSPOT, object_id, Part.INVOICE), {})
            for connection in connections
            if connection.contacts.syncs_from(Provider.HUBSPOT)
            and connection.contacts.hubspot_to_qbo.require_hubspot_invoice
            and envelope.change_source != "CALCULATED"
        ]
    return work, None if work else f"{kind} sync from {envelope.provider} is off"

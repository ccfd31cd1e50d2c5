"""Routing change envelopes to pending work: kinds, connections, directions, echoes."""

from __future__ import annotations

import datetime as dt

from services.worker._ingest import route
from shared.domain import Kind, Part, PendingKey, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.syncconfig import ConnectionSettings, SyncSettings

SYNC = SyncSettings(
    connection=[
        ConnectionSettings(name="acme", hubspot_portal_id="1", qbo_realm_id="9", setup_date=dt.date(2026, 1, 1))
    ]
)


def envelope(provider: Provider, object_type: str, **fields: object) -> ChangeEnvelope:
    defaults: dict[str, object] = {
        "provider": provider,
        "account_id": "1" if provider == Provider.HUBSPOT else "9",
        "object_type": object_type,
        "object_id": "42",
        "operation": Operation.UPDATED,
        "occurred_at_ms": 0,
        "event_id": "e",
    }
    defaults.update(fields)
    return ChangeEnvelope(**defaults)  # type: ignore[arg-type]


def test_a_hubspot_contact_change_becomes_contact_work_from_hubspot() -> None:
    [work], reason = route(envelope(Provider.HUBSPOT, "contact"), SYNC, "777")
    assert reason is None
    assert (work.key.connection, work.key.kind, work.key.side, work.key.object_id) == (
        "acme", Kind.CONTACT, Provider.HUBSPOT, "42",
    )  # fmt: skip


def test_our_own_hubspot_write_is_dropped_as_an_echo() -> None:
    echo = envelope(Provider.HUBSPOT, "contact", change_source="INTEGRATION", source_id="777")
    assert route(echo, SYNC, "777") == ([], "echo of our own write")
    other_app = envelope(Provider.HUBSPOT, "contact", change_source="INTEGRATION", source_id="555")
    assert route(other_app, SYNC, "777")[0]


def test_default_directions_drop_changes_that_do_not_flow() -> None:
    # Products and invoices sync one way, QBO -> HubSpot, by default.
    assert route(envelope(Provider.HUBSPOT, "product"), SYNC, None)[0] == []
    assert route(envelope(Provider.QUICKBOOKS, "item"), SYNC, None)[0][0].key.kind == Kind.PRODUCT
    assert [work.key.kind for work in route(envelope(Provider.HUBSPOT, "invoice"), SYNC, None)[0]] == [Kind.CONTACT]
    assert route(envelope(Provider.QUICKBOOKS, "invoice"), SYNC, None)[0][0].key.kind == Kind.INVOICE


def test_unknown_accounts_and_types_are_dropped_with_a_reason() -> None:
    assert "no connection" in str(route(envelope(Provider.QUICKBOOKS, "customer", account_id="8"), SYNC, None)[1])
    assert "not synced" in str(route(envelope(Provider.QUICKBOOKS, "vendor"), SYNC, None)[1])


def test_deletes_and_merges_travel_as_hints() -> None:
    [deleted], _ = route(envelope(Provider.HUBSPOT, "contact", operation=Operation.DELETED), SYNC, None)
    assert deleted.hints == {"deleted": True}
    merged = envelope(Provider.QUICKBOOKS, "customer", operation=Operation.MERGED, merged_ids=("7",))
    assert route(merged, SYNC, None)[0][0].hints == {"merged_ids": {"7": True}}
    drifted = envelope(Provider.QUICKBOOKS, "invoice", operation=Operation.DRIFTED)  # found by the reconciliation
    assert route(drifted, SYNC, None)[0][0].hints == {"drifted": True}


TWO_WAY_INVOICES = SyncSettings(
    connection=[
        ConnectionSettings(name="acme", hubspot_portal_id="1", qbo_realm_id="9", setup_date=dt.date(2026, 1, 1),
                           invoices={"direction": "two_way"})
    ]
)  # fmt: skip


def test_a_hubspot_line_item_property_change_is_work_for_its_invoice_keyed_by_the_part() -> None:
    [work], _ = route(envelope(Provider.HUBSPOT, "line_item"), TWO_WAY_INVOICES, None)
    assert work.key == PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "42", Part.LINE_ITEM)
    invoice = route(envelope(Provider.HUBSPOT, "invoice"), TWO_WAY_INVOICES, None)[0][0]
    assert invoice.key == PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "42")  # never coalesced with the part's


def test_line_item_events_that_do_not_change_its_invoice_are_dropped() -> None:
    for operation in (Operation.CREATED, Operation.DELETED, Operation.ASSOCIATION_CHANGED):
        assert route(envelope(Provider.HUBSPOT, "line_item", operation=operation), TWO_WAY_INVOICES, None)[0] == []
    computed = envelope(Provider.HUBSPOT, "line_item", change_source="CALCULATED")
    assert route(computed, TWO_WAY_INVOICES, None)[0] == []
    assert route(envelope(Provider.HUBSPOT, "line_item"), SYNC, None)[0] == []  # invoices sync from QBO only


def test_under_the_incumbents_contact_filter_a_hubspot_invoice_change_is_work_for_its_contacts() -> None:
    [work], _ = route(envelope(Provider.HUBSPOT, "invoice"), SYNC, None)
    assert work.key == PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "42", Part.INVOICE)
    calculated = envelope(Provider.HUBSPOT, "invoice", change_source="CALCULATED")
    assert route(calculated, SYNC, None)[0] == []

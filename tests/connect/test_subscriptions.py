"""The webhook subscriptions hsqbo needs and the check of an app's list (`services/connect/_subscriptions.py`)."""

from __future__ import annotations

import datetime as dt

from services.connect._subscriptions import Subscription, from_api, missing, required
from shared.syncconfig import ConnectionSettings, FieldMapping, SyncSettings


def test_every_synced_object_is_subscribed_for_what_the_receiver_handles() -> None:
    wanted = set(required())
    for kind in ("contact", "product", "line_item", "invoice", "commerce_payment"):
        assert Subscription(kind, "creation") in wanted
        assert Subscription(kind, "deletion") in wanted
    assert Subscription("contact", "merge") in wanted
    assert Subscription("contact", "propertyChange", "email") in wanted
    assert Subscription("product", "propertyChange", "hs_sku") in wanted
    assert Subscription("invoice", "propertyChange", "hs_invoice_status") in wanted
    assert Subscription("line_item", "propertyChange", "quantity") in wanted
    assert Subscription("commerce_payment", "propertyChange", "hs_initial_amount") in wanted
    assert Subscription("product", "associationChange") not in wanted  # HubSpot has no such event


def test_a_connections_custom_mappings_add_their_properties() -> None:
    connection = ConnectionSettings(
        name="acme", hubspot_portal_id="1", qbo_realm_id="2", setup_date=dt.date(2026, 1, 1),
        contacts={"direction": "two_way", "custom_mappings": [FieldMapping(name="n", hubspot_property="notes",
                                                                              qbo_field="Notes")]},
        invoices={"custom_fields": {"1": "po_number"}},
    )  # fmt: skip
    wanted = set(required(SyncSettings(connection=[connection])))
    assert Subscription("contact", "propertyChange", "notes") in wanted
    assert Subscription("invoice", "propertyChange", "po_number") in wanted
    assert Subscription("contact", "propertyChange", "notes") not in set(required())


def test_classic_and_generic_api_entries_read_alike_and_paused_ones_count_as_missing() -> None:
    classic = {"id": "1", "eventType": "contact.propertyChange", "propertyName": "email", "active": True}
    generic = {"id": "2", "eventType": "object.creation", "objectTypeId": "0-53", "active": True}
    paused = {"id": "3", "eventType": "product.deletion", "active": False}
    assert from_api(classic) == Subscription("contact", "propertyChange", "email")
    assert from_api(generic) == Subscription("invoice", "creation")
    assert from_api(paused) is None
    present = [s for s in map(from_api, (classic, generic, paused)) if s is not None]
    gaps = missing([Subscription("contact", "propertyChange", "email"), Subscription("product", "deletion")], present)
    assert [str(gap) for gap in gaps] == ["product.deletion"]
    assert str(Subscription("contact", "propertyChange", "email")) == "contact.propertyChange (email)"

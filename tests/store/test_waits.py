"""What a failing record waits for: stored per link, found by the awaited record's id on one side, only while the
waiting record is failing; the migration that made the table reads it from the messages of records failing before."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from shared.domain import Awaited, Kind, PendingKey, Provider
from shared.store import Link, LinkStatus, Store
from shared.store._crypto import TokenCipher
from shared.store._open import connect_backend
from tests.store.conftest import query

HUBSPOT, QBO = Provider.HUBSPOT, Provider.QUICKBOOKS
CUSTOMER_58 = Awaited(Kind.CONTACT, QBO, "58")


def failing(
    kind: Kind, origin: Provider, own_id: str, category: str = "customer_not_synced", message: str = ""
) -> Link:
    ids: dict[str, Any] = {"hubspot_id" if origin == HUBSPOT else "qbo_id": own_id}
    return Link(connection="acme", kind=kind, origin=origin, status=LinkStatus.FAILING, error_category=category,
                error_message=message, **ids)  # fmt: skip


async def test_the_records_waiting_for_one_are_found_by_its_id_on_its_side(store: Store) -> None:
    invoice = await store.save_link(failing(Kind.INVOICE, QBO, "7"))
    other = await store.save_link(failing(Kind.INVOICE, QBO, "8"))
    payment = await store.save_link(failing(Kind.PAYMENT, HUBSPOT, "900", "invoice_not_synced"))
    await store.set_waiting(invoice.id or 0, QBO, CUSTOMER_58)
    await store.set_waiting(other.id or 0, QBO, Awaited(Kind.CONTACT, QBO, "580"))
    await store.set_waiting(payment.id or 0, HUBSPOT, Awaited(Kind.INVOICE, HUBSPOT, "58"))

    assert await store.waiting_for("acme", CUSTOMER_58) == [PendingKey("acme", Kind.INVOICE, QBO, "7")]
    assert await store.waiting_for("acme", Awaited(Kind.CONTACT, HUBSPOT, "58")) == []
    assert await store.waiting_for("other", CUSTOMER_58) == []
    assert await store.waiting_for("acme", Awaited(Kind.INVOICE, HUBSPOT, "58")) == [
        PendingKey("acme", Kind.PAYMENT, HUBSPOT, "900")
    ]


async def test_a_wait_is_replaced_cleared_and_forgotten_once_its_record_no_longer_fails(store: Store) -> None:
    invoice = await store.save_link(failing(Kind.INVOICE, QBO, "7"))
    second = await store.save_link(failing(Kind.INVOICE, QBO, "9"))
    await store.set_waiting(invoice.id or 0, QBO, Awaited(Kind.CONTACT, QBO, "57"))
    await store.set_waiting(invoice.id or 0, QBO, CUSTOMER_58)  # failing again, for another customer
    await store.set_waiting(second.id or 0, QBO, CUSTOMER_58)
    assert await store.waiting_for("acme", Awaited(Kind.CONTACT, QBO, "57")) == []
    assert len(await store.waiting_for("acme", CUSTOMER_58)) == 2

    await store.set_waiting(second.id or 0, QBO, None)  # failing for another reason, naming nothing
    await store.save_link(dataclasses.replace(invoice, status=LinkStatus.SYNCED, qbo_id="7", hubspot_id="70"))
    assert await store.waiting_for("acme", CUSTOMER_58) == []


async def test_records_failing_before_waits_were_stored_wait_for_the_record_their_message_names(
    shared_url: str,
) -> None:
    store = await connect_backend(shared_url, TokenCipher(None), time.time)
    try:
        await store.migrate()
        # The store as the previous version left it: no waits table, the awaited record named in the message.
        await query(shared_url, "DROP TABLE waits")
        await query(shared_url, "DELETE FROM schema_migrations WHERE version = 10")
        for link in (
            failing(Kind.INVOICE, QBO, "7", message="QuickBooks customer 58 has no HubSpot contact yet (not synced)"),
            failing(Kind.INVOICE, QBO, "8", message="QuickBooks customer 59 shares its email with other customers"),
            failing(Kind.INVOICE, HUBSPOT, "900", message="HubSpot contact 300's email matches 2 QuickBooks customer"),
            failing(Kind.INVOICE, HUBSPOT, "901", message="HubSpot contact 301 has no QuickBooks customer yet"),
            failing(Kind.INVOICE, HUBSPOT, "902", message="the HubSpot invoice has no contact"),
            failing(Kind.INVOICE, HUBSPOT, "903", category="tax_code", message="QuickBooks has no tax code 'X'"),
            failing(
                Kind.PAYMENT, HUBSPOT, "40", "invoice_not_synced", "HubSpot invoice 41 is not synced to QuickBooks"
            ),
            failing(Kind.PAYMENT, QBO, "42", "invoice_not_synced", "QuickBooks invoice 43 is not synced to HubSpot"),
        ):
            await store.save_link(link)
        assert await store.migrate() == [10]

        def wakes(kind: Kind, side: Provider, object_id: str) -> list[PendingKey]:
            return [PendingKey("acme", kind, side, object_id)]

        assert await store.waiting_for("acme", Awaited(Kind.CONTACT, QBO, "58")) == wakes(Kind.INVOICE, QBO, "7")
        assert await store.waiting_for("acme", Awaited(Kind.CONTACT, QBO, "59")) == wakes(Kind.INVOICE, QBO, "8")
        assert await store.waiting_for("acme", Awaited(Kind.CONTACT, HUBSPOT, "300")) == wakes(
            Kind.INVOICE, HUBSPOT, "900"
        )
        assert await store.waiting_for("acme", Awaited(Kind.CONTACT, HUBSPOT, "301")) == wakes(
            Kind.INVOICE, HUBSPOT, "901"
        )
        assert await store.waiting_for("acme", Awaited(Kind.INVOICE, HUBSPOT, "41")) == wakes(
            Kind.PAYMENT, HUBSPOT, "40"
        )
        assert await store.waiting_for("acme", Awaited(Kind.INVOICE, QBO, "43")) == wakes(Kind.PAYMENT, QBO, "42")
        assert len(await query(shared_url, "SELECT link_id FROM waits")) == 6
    finally:
        await store.close()

"""The engine's waking of records that wait for another: only failing records of the waiting category whose
message names the new record's id on their own side."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.worker._engine import Engine
from services.worker.rules import Outcome
from shared.envelope import Provider
from shared.store import Kind, Link, LinkStatus, PendingKey, Store, open_store
from shared.syncconfig import SyncSettings


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def failing(kind: Kind, origin: Provider, own_id: str, category: str, message: str) -> Link:
    ids: dict[str, Any] = {"hubspot_id" if origin == Provider.HUBSPOT else "qbo_id": own_id}
    return Link(connection="acme", kind=kind, origin=origin, status=LinkStatus.FAILING, error_category=category,
                error_message=message, **ids)  # fmt: skip


async def test_a_synced_contact_wakes_only_the_invoices_whose_message_names_it(store: Store) -> None:
    for link in (
        failing(Kind.INVOICE, Provider.QUICKBOOKS, "7", "customer_not_synced", "QuickBooks customer 58 has no contact"),
        failing(
            Kind.INVOICE, Provider.QUICKBOOKS, "8", "customer_not_synced", "QuickBooks customer 580 has no contact"
        ),
        failing(Kind.INVOICE, Provider.HUBSPOT, "900", "customer_not_synced", "HubSpot contact 300 has no customer"),
        failing(Kind.INVOICE, Provider.QUICKBOOKS, "9", "no_line_items", "QuickBooks customer 58 ..."),
        failing(Kind.PAYMENT, Provider.QUICKBOOKS, "10", "invoice_not_synced", "QuickBooks invoice 58 is not synced"),
    ):
        await store.save_link(link)
    engine = Engine(store, None, SyncSettings())  # type: ignore[arg-type]  # waking reads only the store
    contact = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300", qbo_id="58")
    key = PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "58")
    wake = await engine._waiting_for(key, Outcome("created", link=contact))
    assert set(wake) == {
        PendingKey("acme", Kind.INVOICE, Provider.QUICKBOOKS, "7"),
        PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "900"),
    }
    assert await engine._waiting_for(key, Outcome("updated", link=contact)) == ()

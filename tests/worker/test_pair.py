"""The QBO side's inactivation of a paired record: its HubSpot record archived once, the status settled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.worker.rules import Excluded
from services.worker.rules._pair import archive_in_hubspot
from services.worker.rules.contacts import SPEC
from shared.domain import Kind, Provider
from shared.store import Link, LinkStatus, Store, open_store
from shared.syncconfig import ContactSettings


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


class Archives:
    def __init__(self) -> None:
        self.archived: list[tuple[str, str]] = []

    async def archive(self, object_type: str, object_id: str) -> None:
        self.archived.append((object_type, object_id))


def context(store: Store) -> Any:
    return SimpleNamespace(name="acme", store=store, hubspot=Archives())


async def test_an_inactive_customers_contact_is_archived_once_and_stays_deleted(store: Store) -> None:
    ctx = context(store)
    link = await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS,
                                      hubspot_id="300", qbo_id="58"))  # fmt: skip
    first = await archive_in_hubspot(ctx, SPEC, ContactSettings(), link)
    assert first.action == "deleted"
    assert first.link is not None
    assert first.link.status == LinkStatus.DELETED

    again = await archive_in_hubspot(ctx, SPEC, ContactSettings(), first.link)  # the same inactive customer again
    assert (again.action, again.link) == ("unchanged", first.link)
    assert ctx.hubspot.archived == [("contacts", "300")]


async def test_an_inactive_customer_never_paired_is_excluded(store: Store) -> None:
    ctx = context(store)
    with pytest.raises(Excluded):
        await archive_in_hubspot(ctx, SPEC, ContactSettings(), None)
    half = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id="58")
    with pytest.raises(Excluded):
        await archive_in_hubspot(ctx, SPEC, ContactSettings(), half)
    assert ctx.hubspot.archived == []

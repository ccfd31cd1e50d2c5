"""The invoice rule's pure decisions: dates, void detection, the status that follows QBO; the plans of its voids and
deletions, each crashed after every step and run again (one write, the link settled)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.worker._executor import carry_out
from services.worker._plan import Plan, SaveLink, VoidQbo
from services.worker.rules.invoices import (
    HEADER,
    _day,
    _hubspot_values,
    _is_voided,
    _qbo_status,
    plan_hubspot_invoice_deletion,
    plan_qbo_edit_of_hubspot_invoice,
    plan_qbo_invoice_deletion,
    plan_qbo_invoice_void,
)
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.domain import Kind, Provider
from shared.errors import NotFound
from shared.store import Link, LinkStatus, Store, open_store
from shared.syncconfig import InvoiceSettings


def test_dates_compare_as_utc_days_in_every_form_the_apis_use() -> None:
    assert _day("2026-03-02") == _day("2026-03-02T00:00:00.000Z") == _day("1772409600000") == "2026-03-02"
    assert _day("") is None


def test_dates_are_written_to_hubspot_as_epoch_ms_at_midnight_utc() -> None:
    properties = _hubspot_values(list(HEADER), {"invoice_date": "2026-03-02", "due_date": None, "memo": "Hi"})
    assert properties == {"hs_invoice_date": "1772409600000", "hs_due_date": "", "hs_comments": "Hi"}


def test_a_void_is_told_by_a_zero_total_and_the_voided_note() -> None:
    assert _is_voided({"TotalAmt": 0, "PrivateNote": "Voided - late"})
    assert not _is_voided({"TotalAmt": 0, "PrivateNote": "free sample"})
    assert not _is_voided({"TotalAmt": 10, "PrivateNote": "Voided"})


def test_status_follows_qbo_paid_at_zero_balance_and_voided_for_good() -> None:
    assert _qbo_status({"TotalAmt": 50, "Balance": 50}, {}, None) == "open"
    assert _qbo_status({"TotalAmt": 50, "Balance": 0}, {}, None) == "paid"
    # a "voided" hint is a hint: the invoice read says open, so it is open
    assert _qbo_status({"TotalAmt": 50, "Balance": 50}, {"voided": True}, None) == "open"
    assert _qbo_status({"TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}, {}, None) == "voided"
    voided = Link(connection="c", kind=Kind.INVOICE, origin=Provider.QUICKBOOKS, synced={"status": "voided"})
    assert _qbo_status({"TotalAmt": 0, "Balance": 0}, {}, voided) == "voided"


def test_paid_open_and_void_are_decided_on_exact_decimals() -> None:
    assert _qbo_status({"TotalAmt": Decimal("0.30"), "Balance": Decimal("0.00")}, {}, None) == "paid"
    assert _qbo_status({"TotalAmt": Decimal("0.30"), "Balance": Decimal("0.01")}, {}, None) == "open"
    # 0.1 + 0.2 - 0.3 is 5.5e-17 in floats: a paid invoice would have stayed open
    balance = Decimal("0.1") + Decimal("0.2") - Decimal("0.3")
    assert _qbo_status({"TotalAmt": Decimal("0.30"), "Balance": balance}, {}, None) == "paid"
    assert _is_voided({"TotalAmt": Decimal("0.00"), "PrivateNote": "Voided"})
    assert not _is_voided({"TotalAmt": Decimal("0.01"), "PrivateNote": "Voided"})


# --- plans of the voids and deletions: every crash window, then a re-run ---------------------------------------------


class Invoices:
    """One QBO invoice and one HubSpot invoice: QBO replays a requestid it answered; HubSpot answers 404 once gone."""

    def __init__(self, hubspot_status: str = "open") -> None:
        self.invoice: dict[str, Any] = {"Id": "58", "SyncToken": "2", "TotalAmt": Decimal("50"), "PrivateNote": ""}
        self.answers: dict[str, dict[str, Any]] = {}
        self.voids = 0
        self.hubspot_status: str | None = hubspot_status  # None: archived
        self.hubspot_writes = 0

    async def void(self, entity: str, entity_id: str, sync_token: str, *, request_id: str) -> dict[str, Any]:
        if request_id not in self.answers:
            assert sync_token == self.invoice["SyncToken"]
            token = str(int(self.invoice["SyncToken"]) + 1)
            self.invoice = {**self.invoice, "SyncToken": token, "TotalAmt": Decimal(0), "PrivateNote": "Voided"}
            self.answers[request_id] = dict(self.invoice)
            self.voids += 1
        return self.answers[request_id]

    async def update(self, object_type: str, object_id: str, properties: dict[str, str]) -> HubSpotObject:
        if self.hubspot_status is None:
            raise NotFound("gone", provider="hubspot")
        self.hubspot_status = properties["hs_invoice_status"]
        self.hubspot_writes += 1
        return HubSpotObject(object_id, dict(properties), None, None)

    async def archive(self, object_type: str, object_id: str) -> None:
        if self.hubspot_status is None:
            raise NotFound("gone", provider="hubspot")
        self.hubspot_status = None
        self.hubspot_writes += 1


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


async def linked(store: Store, origin: Provider = Provider.HUBSPOT) -> Link:
    return await store.save_link(Link(connection="acme", kind=Kind.INVOICE, origin=origin, hubspot_id="900",
                                      qbo_id="58", synced={"status": "open"}, qbo_written_sync_token="2"))  # fmt: skip


async def run(store: Store, books: Invoices, plan: Plan, crash: int | None) -> None:
    ctx = SimpleNamespace(name="acme", store=store, qbo=books, hubspot=books)
    await carry_out(ctx, plan if crash is None else dataclasses.replace(plan, steps=plan.steps[:crash]))  # type: ignore[arg-type]


async def current(store: Store) -> Link:
    link = await store.get_link("acme", Kind.INVOICE, hubspot_id="900")
    assert link is not None
    return link


def request_id(link: Link, books: Invoices) -> str:
    return SyncContext.request_id(CONNECTION, "Invoice", "58", "void", books.invoice["SyncToken"], link=link)


CONNECTION: Any = SimpleNamespace(name="acme")  # all `SyncContext.request_id` reads


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_void_in_qbo_crashed_after_any_step_voids_once_and_names_its_echo(store: Store, crash: int) -> None:
    books = Invoices()
    for attempt in (crash, None):
        link = await current(store) if attempt is None else await linked(store)
        await run(store, books, plan_qbo_invoice_void(link, dict(books.invoice), "voided in HubSpot",
                                                      request_id(link, books)), attempt)  # fmt: skip
    link = await current(store)
    assert (books.voids, _is_voided(books.invoice)) == (1, True)
    assert (link.synced["status"], link.qbo_written_sync_token) == ("voided", books.invoice["SyncToken"])


@pytest.mark.parametrize("crash", [0, 1, 2, 3])
async def test_a_hubspot_invoice_deleted_voids_its_qbo_invoice_once_then_the_link_is_deleted(
    store: Store, crash: int
) -> None:
    books = Invoices()
    link = await linked(store)
    first = plan_qbo_invoice_deletion(link, dict(books.invoice), request_id(link, books))
    assert [type(step) for step in first.steps] == [VoidQbo, SaveLink, SaveLink]
    await run(store, books, first, crash)
    link = await current(store)
    if link.status != LinkStatus.DELETED:  # the rule skips a deleted link
        await run(store, books, plan_qbo_invoice_deletion(link, dict(books.invoice), request_id(link, books)), None)
    assert books.voids == 1
    assert (await current(store)).status == LinkStatus.DELETED
    made_in_qbo = plan_qbo_invoice_deletion(link, None, "")
    assert made_in_qbo.steps == (SaveLink({"status": LinkStatus.DELETED}),)


@pytest.mark.parametrize("hubspot_status", ["draft", "open", "voided", None])
@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_qbo_invoice_deleted_archives_a_draft_or_voids_its_hubspot_invoice_once(
    store: Store, crash: int, hubspot_status: str | None
) -> None:
    books = Invoices(hubspot_status or "open")
    books.hubspot_status = hubspot_status
    link = await linked(store, Provider.QUICKBOOKS)
    await run(store, books, plan_hubspot_invoice_deletion(InvoiceSettings(), link, books.hubspot_status), crash)
    link = await current(store)
    if link.status != LinkStatus.DELETED:
        await run(store, books, plan_hubspot_invoice_deletion(InvoiceSettings(), link, books.hubspot_status), None)
    assert books.hubspot_status == (None if hubspot_status in ("draft", None) else "voided")
    assert books.hubspot_writes == (0 if hubspot_status in ("voided", None) else 1)
    assert (await current(store)).status == LinkStatus.DELETED


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_qbo_void_of_a_hubspot_made_invoice_voids_it_in_hubspot_once_even_if_gone_there(
    store: Store, crash: int
) -> None:
    books = Invoices()
    voided = {"Id": "58", "SyncToken": "3", "TotalAmt": Decimal(0), "PrivateNote": "Voided"}
    await run(store, books, plan_qbo_edit_of_hubspot_invoice(await linked(store), voided, "voided"), crash)
    again = plan_qbo_edit_of_hubspot_invoice(await current(store), voided, "voided")
    await run(store, books, again, None)
    assert (books.hubspot_status, books.hubspot_writes) == ("voided", 1 if crash == 2 else 2 if crash == 1 else 1)
    assert (await current(store)).synced["status"] == "voided"
    books.hubspot_status = None  # deleted in HubSpot meanwhile: the void is recorded all the same
    await run(store, books, plan_qbo_edit_of_hubspot_invoice(await linked_again(store), voided, "voided"), None)
    assert (await current(store)).synced["status"] == "voided"


async def linked_again(store: Store) -> Link:
    link = await current(store)
    return await store.save_link(dataclasses.replace(link, synced={"status": "open"}))

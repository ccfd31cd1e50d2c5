"""The executor: a plan's steps in order, answers threaded into later link saves (as JSON where the plan says so), an
error stopping the plan where it is (what ran stays done), a record gone in HubSpot left be only where the plan says
so, an invoice's total checked against what the other side computed."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.worker._executor import carry_out
from services.worker._plan import (
    TOTAL_MISMATCH,
    Answer,
    Answered,
    ArchiveHubSpot,
    AsJson,
    AssociateInvoicePart,
    CheckInvoiceTotal,
    CreateHubSpot,
    CreateQbo,
    LogActivity,
    Plan,
    SaveLink,
    UpdateHubSpot,
)
from services.worker.rules import Failing
from shared.clients import HubSpotObject
from shared.domain import Action, Direction, Kind, Provider
from shared.errors import NotFound
from shared.store import Link, Store, open_store

UPDATED_AT = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


class Apis:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def create(self, entity: str, body: dict[str, Any], *, request_id: str) -> dict[str, Any]:
        self.calls.append(f"create {entity} {request_id}")
        return {"Id": "77", "SyncToken": "0"}

    async def update(self, object_type: str, object_id: str, properties: dict[str, str | None]) -> HubSpotObject:
        self.calls.append(f"update {object_type} {object_id}")
        if object_id == "gone":
            raise NotFound("gone", provider="hubspot")
        return HubSpotObject(object_id, dict(properties), None, UPDATED_AT)

    async def archive(self, object_type: str, object_id: str) -> None:
        self.calls.append(f"archive {object_type} {object_id}")
        raise NotFound("gone", provider="hubspot")


def context(store: Store, apis: Apis) -> Any:
    return SimpleNamespace(name="acme", store=store, qbo=apis, hubspot=apis)


NEW = Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.HUBSPOT, hubspot_id="900")


async def test_steps_run_in_order_and_later_saves_take_the_writes_answers(store: Store) -> None:
    apis = Apis()
    plan = Plan(
        NEW,
        (
            CreateQbo("Payment", {"TotalAmt": 1}, "r-1"),
            SaveLink({"qbo_id": Answered(Answer.QBO_ID), "qbo_written_sync_token": Answered(Answer.QBO_SYNC_TOKEN)}),
            UpdateHubSpot("commerce_payments", "900", {"hs_reference_number": "1"}),
            SaveLink({"hubspot_version": Answered(Answer.HUBSPOT_UPDATED_AT, default="read")}),
            LogActivity(Action.OVERWRITTEN, "details"),
        ),
        Action.CREATED,
        Direction.HUBSPOT_TO_QBO,
        "made",
    )
    outcome = await carry_out(context(store, apis), plan)
    assert apis.calls == ["create Payment r-1", "update commerce_payments 900"]
    assert outcome.link is not None
    assert (outcome.link.qbo_id, outcome.link.qbo_written_sync_token) == ("77", "0")
    assert outcome.link.hubspot_version == UPDATED_AT.isoformat()
    assert (outcome.action, outcome.direction, outcome.detail) == ("created", Direction.HUBSPOT_TO_QBO, "made")
    [line] = await store.activity("acme", Kind.PAYMENT, hubspot_id="900")
    assert (line.action, line.link_id, line.qbo_id) == ("overwritten", outcome.link.id, "77")


async def test_a_record_gone_in_hubspot_stops_the_plan_unless_it_may_be_gone(store: Store) -> None:
    apis = Apis()
    saved = SaveLink({"hubspot_version": Answered(Answer.HUBSPOT_UPDATED_AT, default="read")})
    may_be_gone = Plan(
        NEW, (UpdateHubSpot("invoices", "gone", {}, gone_ok=True), ArchiveHubSpot("x", "1"), saved), Action.UPDATED
    )
    outcome = await carry_out(context(store, apis), may_be_gone)
    assert outcome.link is not None
    assert outcome.link.hubspot_version == "read"  # no answer: the default

    must_exist = Plan(NEW, (UpdateHubSpot("invoices", "gone", {}), saved), Action.UPDATED)
    with pytest.raises(NotFound):
        await carry_out(context(store, apis), must_exist)
    assert len(await store.list_links()) == 1  # the save after it never ran


class InvoiceApis(Apis):
    def __init__(self, billed: str) -> None:
        super().__init__()
        self.billed = billed

    async def create(self, entity: str, body: dict[str, Any], **more: Any) -> Any:
        if "request_id" in more:  # QBO
            self.calls.append(f"create {entity} {more['request_id']}")
            return {"Id": "58", "SyncToken": "0", "TotalAmt": Decimal(body["TotalAmt"])}
        self.calls.append(f"create {entity}")
        return HubSpotObject("301", dict(body), None, UPDATED_AT)

    async def associate(self, from_type: str, from_id: str, to_type: str, to_id: str, *, type_id: int) -> None:
        self.calls.append(f"associate {from_type} {from_id} {to_type} {to_id} {type_id}")

    async def get(self, object_type: str, object_id: str, *, properties: Any) -> HubSpotObject:
        self.calls.append(f"get {object_type} {object_id}")
        return HubSpotObject(object_id, {"hs_amount_billed": self.billed}, None, UPDATED_AT)


async def test_a_part_made_is_named_as_json_then_associated_and_the_total_it_reads_back_is_checked(
    store: Store,
) -> None:
    apis = InvoiceApis(billed="25.00")
    made = Answered(Answer.HUBSPOT_ID, label="discount")
    plan = Plan(
        NEW,
        (
            CreateHubSpot("discounts", {"hs_value": "3"}, label="discount"),
            SaveLink({"synced": {"line_items": AsJson({"1": "200", "discount:4": made})}}),
            AssociateInvoicePart("900", "discounts", made, 411),
            CheckInvoiceTotal(Decimal("25.0"), hubspot_invoice_id="900", label="total"),
            SaveLink({"hubspot_version": Answered(Answer.HUBSPOT_UPDATED_AT, label="total")}),
        ),
        Action.UPDATED,
    )
    outcome = await carry_out(context(store, apis), plan)
    assert apis.calls == ["create discounts", "associate invoices 900 discounts 301 411", "get invoices 900"]
    assert outcome.link is not None
    assert outcome.link.synced == {"line_items": '{"1":"200","discount:4":"301"}'}
    assert outcome.link.hubspot_version == UPDATED_AT.isoformat()

    apis.billed = "24.99"
    with pytest.raises(Failing, match=r"HubSpot bills 24\.99 for the QuickBooks invoice of 25\.0") as failing:
        await carry_out(context(store, apis), dataclasses.replace(plan, link=outcome.link))
    assert failing.value.category == TOTAL_MISMATCH


async def test_a_qbo_total_is_checked_from_the_writes_answer_after_the_link_is_saved(store: Store) -> None:
    apis = InvoiceApis(billed="")
    check = CheckInvoiceTotal(Decimal("25"), Answered(Answer.QBO_TOTAL))
    agreeing = (CreateQbo("Invoice", {"TotalAmt": "25.00"}, "r-1"), SaveLink({"qbo_id": Answered(Answer.QBO_ID)}))
    assert (await carry_out(context(store, apis), Plan(NEW, (*agreeing, check), Action.CREATED))).link is not None
    other = dataclasses.replace(NEW, hubspot_id="901")
    differing = (CreateQbo("Invoice", {"TotalAmt": "24"}, "r-2"), SaveLink({"qbo_written_sync_token": "0"}))
    with pytest.raises(Failing, match="QuickBooks totals 24 for the HubSpot invoice billing 25"):
        await carry_out(context(store, apis), Plan(other, (*differing, check), Action.CREATED))
    link = await store.get_link("acme", Kind.PAYMENT, hubspot_id="901")
    assert link is not None
    assert link.qbo_written_sync_token == "0"  # the save before the check ran

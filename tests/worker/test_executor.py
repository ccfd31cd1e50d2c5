"""The executor: a plan's steps in order, answers threaded into later link saves (as JSON where the plan says so), an
error stopping the plan where it is (what ran stays done), a record gone in HubSpot left be only where the plan says
so; a create's alternatives tried in order under requestids made under the link as saved last, every one refused
failing the record; another link saved; a merge's links repointed or retired; an invoice's part associated with it,
its total checked against what the other side computed."""

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
    AllRefused,
    Alternative,
    Answer,
    Answered,
    ArchiveHubSpot,
    AsJson,
    AssociateInvoicePart,
    CheckInvoiceTotal,
    CreateHubSpot,
    CreateQbo,
    CreateQboOneOf,
    LogActivity,
    Plan,
    Refusal,
    RepointLink,
    RequestId,
    SaveLink,
    SaveOtherLink,
    UpdateHubSpot,
)
from services.worker.rules import Failing
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.domain import Action, Direction, Kind, Provider
from shared.errors import DuplicateName, NotFound
from shared.store import Link, LinkStatus, Store, open_store

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


class Names:
    """QBO's name-list creates: a taken name refused (DuplicateName), a requestid answered before replayed."""

    def __init__(self, *taken: str) -> None:
        self.names = {name: "1" for name in taken}
        self.answers: dict[str, dict[str, Any] | DuplicateName] = {}
        self.sent: list[tuple[str, str]] = []

    async def create(self, entity: str, body: dict[str, Any], *, request_id: str) -> dict[str, Any]:
        self.sent.append((body["DisplayName"], request_id))
        if request_id not in self.answers:
            if body["DisplayName"] in self.names:
                self.answers[request_id] = DuplicateName("taken", provider="quickbooks", code="6240")
            else:
                self.names[body["DisplayName"]] = str(100 + len(self.names))
                self.answers[request_id] = {"Id": self.names[body["DisplayName"]], "SyncToken": "0", **body}
        answer = self.answers[request_id]
        if isinstance(answer, DuplicateName):
            raise answer
        return answer


def names_context(store: Store, names: Names) -> Any:
    ctx: Any = SimpleNamespace(name="acme", store=store, qbo=names)
    ctx.request_id = lambda *parts, link: SyncContext.request_id(ctx, *parts, link=link)
    return ctx


def create_customer(*names: str, refused: AllRefused | None = None) -> CreateQboOneOf:
    return CreateQboOneOf(
        "Customer", {"GivenName": "Jane", "Notes": "x"},
        tuple(Alternative({"DisplayName": name, "Notes": None}, RequestId(("Customer", "create", name)))
              for name in names),
        Refusal.DUPLICATE_NAME, refused,
    )  # fmt: skip


async def test_a_create_takes_the_first_alternative_not_refused_and_a_retry_replays_every_answer(store: Store) -> None:
    intent = await store.save_link(dataclasses.replace(NEW, kind=Kind.CONTACT, hubspot_id="300"))
    names = Names("Acme")
    plan = Plan(intent, (create_customer("Acme", "Acme (Jane)", "Acme (300)"),
                         SaveLink({"qbo_id": Answered(Answer.QBO_ID)})), Action.CREATED)  # fmt: skip
    await carry_out(names_context(store, names), dataclasses.replace(plan, steps=plan.steps[:1]))  # a crash
    outcome = await carry_out(names_context(store, names), plan)
    assert outcome.link is not None
    assert outcome.link.qbo_id == names.names["Acme (Jane)"] == "101"
    sent = [(name, SyncContext.request_id(names_context(store, names), "Customer", "create", name, link=intent))
            for name in ("Acme", "Acme (Jane)")]  # fmt: skip
    assert names.sent == [*sent, *sent]  # the same names, the same requestids: one customer
    assert names.answers[sent[1][1]] == {
        "Id": "101",
        "SyncToken": "0",
        "GivenName": "Jane",
        "DisplayName": "Acme (Jane)",
    }


async def test_a_requestid_is_made_under_the_link_as_saved_last(store: Store) -> None:
    names = Names()
    plan = Plan(NEW, (SaveLink({"qbo_hash": "h"}), create_customer("Acme")), Action.CREATED)
    outcome = await carry_out(names_context(store, names), plan)
    assert outcome.link is not None
    [(_, sent)] = names.sent
    assert sent == SyncContext.request_id(names_context(store, names), "Customer", "create", "Acme", link=outcome.link)


async def test_every_alternative_refused_fails_the_record_or_raises_the_last_refusal(store: Store) -> None:
    refused = AllRefused("QuickBooks already has a customer named 'Acme'", "duplicate_display_name")
    with pytest.raises(Failing) as failing:
        await carry_out(names_context(store, Names("Acme")), Plan(NEW, (create_customer("Acme", refused=refused),),
                                                                  Action.CREATED))  # fmt: skip
    assert (str(failing.value), failing.value.category) == (refused.message, refused.category)
    with pytest.raises(DuplicateName):
        await carry_out(names_context(store, Names("Acme")), Plan(NEW, (create_customer("Acme"),), Action.CREATED))


async def test_another_link_is_saved_as_read_with_its_changes_and_the_plans_link_after_it(store: Store) -> None:
    half = await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id="58"))
    pair = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="300")
    plan = Plan(pair, (SaveOtherLink(half, {"qbo_id": None, "status": LinkStatus.DELETED}),
                       SaveLink({"qbo_id": "58"})), Action.LINKED)  # fmt: skip
    outcome = await carry_out(context(store, Apis()), plan)
    assert outcome.link is not None
    assert (outcome.link.hubspot_id, outcome.link.qbo_id) == ("300", "58")
    retired = await store.get_link_by_id(half.id or 0)
    assert retired is not None
    assert (retired.qbo_id, retired.status) == (None, LinkStatus.DELETED)


async def test_a_merges_links_are_repointed_or_retired_and_logged_with_no_link_of_the_plans_own(store: Store) -> None:
    def contact(hubspot_id: str) -> Link:
        return Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id=hubspot_id)

    moved = await store.save_link(contact("1"))
    retired = await store.save_link(contact("2"))
    await store.save_link(contact("9"))
    steps = tuple(RepointLink(Kind.CONTACT, Provider.HUBSPOT, loser, survivor)
                  for loser, survivor in (("1", "8"), ("2", "9"), ("3", "9")))  # fmt: skip
    outcome = await carry_out(context(store, Apis()), Plan(None, steps, Action.MERGED))
    assert (outcome.action, outcome.link) == ("merged", None)
    now_moved = await store.get_link_by_id(moved.id or 0)
    now_retired = await store.get_link_by_id(retired.id or 0)
    assert now_moved is not None
    assert now_retired is not None
    assert (now_moved.hubspot_id, now_retired.status) == ("8", LinkStatus.DELETED)
    [line] = await store.activity("acme", Kind.CONTACT)
    assert (line.action, line.link_id) == ("merged", retired.id)
    assert line.detail == "hubspot record 2 merged into 9; its link is retired"
    with pytest.raises(ValueError, match="saves none"):
        await carry_out(context(store, Apis()), Plan(None, (SaveLink({}),), Action.MERGED))


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

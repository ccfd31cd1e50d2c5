"""The payments rule's pure helpers: what a QBO Payment applies, when it is voided, and the values each side gets;
its plans (create, update, void in QBO; archive in HubSpot), each crashed after every step and run again: one write,
the link settled."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.worker._executor import carry_out
from services.worker._plan import ArchiveHubSpot, CreateHubSpot, CreateQbo, Plan, SaveLink, UpdateHubSpot
from services.worker.rules.payments import (
    ORIGIN_PROPERTY,
    PaymentPart,
    applied_invoices,
    differing,
    hubspot_amounts,
    hubspot_payment_properties,
    is_voided,
    origin_key,
    plan_hubspot_payments,
    plan_hubspot_removal,
    plan_qbo_payment,
    plan_qbo_payment_update,
    plan_qbo_void,
    qbo_payment_fields,
)
from shared import money
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.domain import Kind, Provider
from shared.errors import NotFound
from shared.store import Link, LinkStatus, Store, open_store
from shared.syncconfig import PaymentSettings

SAN_FRANCISCO = ZoneInfo("America/Los_Angeles")


def line(invoice_id: str, amount: str | int, txn_type: str = "Invoice") -> dict[str, object]:
    return {"Amount": Decimal(amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": txn_type}]}


def test_applied_invoices_sums_lines_per_invoice_exactly_and_ignores_other_links_and_zero_amounts() -> None:
    payment = {"Line": [line("70", "55.0"), line("70", "5.5"), line("71", "0.0"), line("9", "12.0", "CreditMemo")]}
    assert applied_invoices(payment) == {"70": Decimal("60.5")}
    tenths = {"Line": [line("70", "0.1"), line("70", "0.2")]}
    assert applied_invoices(tenths) == {"70": Decimal("0.3")}  # 0.30000000000000004 as floats


def test_applied_invoices_come_in_invoice_id_order() -> None:
    payment = {"Line": [line("100", "1"), line("9", "2"), line("10", "3")]}
    assert list(applied_invoices(payment)) == ["9", "10", "100"]


def test_an_amount_read_as_a_float_is_refused() -> None:
    with pytest.raises(ValueError, match="float"):
        applied_invoices({"Line": [{"Amount": 0.1, "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]}]})


def test_an_unapplied_payment_applies_to_no_invoice() -> None:
    assert applied_invoices({"TotalAmt": Decimal("10.0"), "Line": []}) == {}


def test_a_payment_is_voided_when_zeroed_with_the_voided_note() -> None:
    assert is_voided({"TotalAmt": Decimal("0.00"), "PrivateNote": "Voided - paid twice"})
    assert is_voided({"TotalAmt": 0, "PrivateNote": "Voided"})
    assert not is_voided({"TotalAmt": Decimal("0.0"), "PrivateNote": "zero payment"})
    assert not is_voided({"TotalAmt": Decimal("0.01"), "PrivateNote": "Voided by mistake, re-entered"})


def test_split_payment_parts_add_up_exactly_to_the_amount_applied() -> None:
    applied = {"70": Decimal("33.335"), "71": Decimal("33.335"), "72": Decimal("33.33")}
    parts = hubspot_amounts(applied, "USD")
    assert sum(parts.values()) == money.round_money(sum(applied.values(), money.ZERO)) == Decimal("100.00")
    assert all(money.decimal_places(part) <= 2 for part in parts.values())
    assert hubspot_amounts({"70": Decimal("55.00"), "71": Decimal("5.5")}, "USD") == {
        "70": Decimal("55.00"),
        "71": Decimal("5.50"),
    }
    assert hubspot_amounts({"70": Decimal("1500")}, "JPY") == {"70": Decimal(1500)}


def test_each_qbo_payment_line_has_its_own_origin_key() -> None:
    assert origin_key("163", "70") != origin_key("163", "71")


def test_hubspot_payment_takes_the_applied_amount_day_currency_and_reference() -> None:
    payment = {"TotalAmt": 65.0, "TxnDate": "2026-01-16", "PaymentRefNum": "CHK 7", "CurrencyRef": {"value": "EUR"}}
    assert hubspot_payment_properties(payment, Decimal("55"), "USD", SAN_FRANCISCO) == {
        "hs_initial_amount": "55.00",
        "hs_initiated_date": "2026-01-16T08:00:00.000Z",  # 00:00 in San Francisco
        "hs_currency_code": "EUR",
        "hs_reference_number": "CHK 7",
    }


def test_hubspot_payment_without_currency_or_reference_takes_the_home_currency() -> None:
    properties = hubspot_payment_properties({"TxnDate": "2026-01-16"}, Decimal(10), "USD", SAN_FRANCISCO)
    assert properties["hs_currency_code"] == "USD"
    assert "hs_reference_number" not in properties


def test_hubspot_payment_amount_is_a_plain_string_rounded_to_the_currencys_minor_unit() -> None:
    yen = {"TxnDate": "2026-01-16", "CurrencyRef": {"value": "JPY"}}
    assert hubspot_payment_properties(yen, Decimal("1234.5"), "USD", SAN_FRANCISCO)["hs_initial_amount"] == "1235"
    dinar = {"TxnDate": "2026-01-16", "CurrencyRef": {"value": "KWD"}}
    assert hubspot_payment_properties(dinar, Decimal("1E+1"), "USD", SAN_FRANCISCO)["hs_initial_amount"] == "10.000"
    usd = {"TxnDate": "2026-01-16"}
    assert (
        hubspot_payment_properties(usd, Decimal("2.505"), "USD", SAN_FRANCISCO)["hs_initial_amount"] == "2.51"
    )  # not 2.50


def test_differing_compares_numbers_and_datetimes_by_value() -> None:
    current: dict[str, str | None] = {"hs_initial_amount": "55.00", "hs_initiated_date": "2026-01-16T00:00:00Z"}
    wanted = {"hs_initial_amount": "55", "hs_initiated_date": "2026-01-16T00:00:00.000Z", "hs_reference_number": "A"}
    assert differing(current, wanted) == {"hs_reference_number": "A"}


def test_qbo_payment_takes_the_amount_and_the_day_it_was_initiated_in_the_company_zone() -> None:
    record = HubSpotObject(
        id="512",
        properties={"hs_initial_amount": "40.10", "hs_initiated_date": "2026-03-02T23:30:00-05:00"},
        created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        updated_at=None,
    )
    fields = qbo_payment_fields(record, ZoneInfo("America/New_York"), "USD")
    assert fields == {"TotalAmt": Decimal("40.10"), "TxnDate": "2026-03-02"}
    assert money.dumps(fields["TotalAmt"]) == b"40.10"
    assert qbo_payment_fields(record, ZoneInfo("UTC"), "USD")["TxnDate"] == "2026-03-03"


def test_qbo_payment_amount_is_rounded_half_away_from_zero_to_the_minor_unit() -> None:
    record = HubSpotObject(
        id="513",
        properties={"hs_initial_amount": "2.505", "hs_initiated_date": "2026-03-02T10:00:00Z"},
        created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        updated_at=None,
    )
    assert qbo_payment_fields(record, SAN_FRANCISCO, "USD")["TotalAmt"] == Decimal("2.51")
    assert qbo_payment_fields(record, SAN_FRANCISCO, "JPY")["TotalAmt"] == Decimal(3)


# --- plans: every crash window, then a re-run ------------------------------------------------------------------------


class Books:
    """QBO payments and HubSpot payments as the plans write them: QBO replays a requestid it answered (never writing
    twice); HubSpot answers a second archive 404."""

    def __init__(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.archived: list[str] = []

    async def create(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        if request_id not in self.answers:
            made = {**body, "Id": str(100 + len(self.payments)), "SyncToken": "0"}
            self.payments[made["Id"]] = made
            self.answers[request_id] = dict(made)
            self.writes += 1
        return self.answers[request_id]

    async def update(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        if request_id not in self.answers:
            current = self.payments[body["Id"]]
            assert body["SyncToken"] == current["SyncToken"]
            current.update({**body, "SyncToken": str(int(current["SyncToken"]) + 1)})
            self.answers[request_id] = dict(current)
            self.writes += 1
        return self.answers[request_id]

    async def void(self, entity: str, entity_id: str, sync_token: str, *, request_id: str) -> dict[str, Any]:
        body = {"Id": entity_id, "SyncToken": sync_token, "TotalAmt": 0, "PrivateNote": "Voided"}
        return await self.update(entity, body, request_id=request_id)

    async def archive(self, object_type: str, object_id: str) -> None:
        if object_id in self.archived:
            raise NotFound("gone", provider="hubspot")
        self.archived.append(object_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


CONNECTION: Any = SimpleNamespace(name="acme")  # all `SyncContext.request_id` reads


def books_context(store: Store, books: Books) -> Any:
    return SimpleNamespace(name="acme", store=store, qbo=books, hubspot=books)


def request_id(*parts: str, link: Link | None) -> str:
    return SyncContext.request_id(CONNECTION, *parts, link=link)


BODY = {"TotalAmt": Decimal("40.00"), "TxnDate": "2026-03-02", "PrivateNote": "HubSpot payment 900"}


async def create_once(store: Store, books: Books, crash: int | None, *, found_by_marker: bool) -> Plan:
    """The rule's create as it plans it from what it reads: the link (none, or left by a crash), the marker."""
    link = await store.get_link("acme", Kind.PAYMENT, hubspot_id="900")
    found = next(iter(books.payments.values()), None) if found_by_marker else None
    base = link or Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.HUBSPOT)
    plan = plan_qbo_payment(base, "900", found, BODY, request_id("Payment", "create", "900", link=link), 1.0)
    await carry_out(
        books_context(store, books), plan if crash is None else dataclasses.replace(plan, steps=plan.steps[:crash])
    )
    return plan


@pytest.mark.parametrize("found_by_marker", [True, False], ids=["found-by-marker", "marker-missed"])
@pytest.mark.parametrize("crash", [0, 1])
async def test_a_payment_create_crashed_after_any_step_makes_one_qbo_payment(
    store: Store, crash: int, found_by_marker: bool
) -> None:
    first = await create_once(store, books := Books(), crash, found_by_marker=False)
    assert [type(step) for step in first.steps] == [CreateQbo, SaveLink]
    again = await create_once(store, books, None, found_by_marker=found_by_marker)
    # Missed by the marker lookup, the create is sent again with the same requestid: QBO replays its answer.
    assert again.action == ("linked" if found_by_marker and crash else "created")
    assert (len(books.payments), books.writes) == (1, 1)
    link = await store.get_link("acme", Kind.PAYMENT, hubspot_id="900")
    assert link is not None
    made = books.payments["100"]
    assert (link.qbo_id, link.status, link.qbo_written_sync_token) == ("100", LinkStatus.SYNCED, made["SyncToken"])


def test_a_create_sends_the_same_requestid_until_an_outcome_is_recorded_on_the_link() -> None:
    """The requestid is the link's revision as read: the same for a retry after a crash (nothing recorded), a new
    write once an outcome moved it (a failure fixed since is not replayed)."""
    link = Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.HUBSPOT, hubspot_id="900", revision=3)
    assert request_id("Payment", "create", "900", link=link) == request_id("Payment", "create", "900", link=link)
    moved = dataclasses.replace(link, revision=4)
    assert request_id("Payment", "create", "900", link=moved) != request_id("Payment", "create", "900", link=link)


async def paid(store: Store, books: Books) -> Link:
    await books.create("Payment", {**BODY, "Line": [{"Amount": Decimal("40.00")}]}, request_id="made")
    return await store.save_link(Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.HUBSPOT,
                                      hubspot_id="900", qbo_id="100", qbo_written_sync_token="0"))  # fmt: skip


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_payment_update_crashed_after_any_step_is_written_once(store: Store, crash: int) -> None:
    books = Books()
    link = await paid(store, books)
    fields = {"TotalAmt": Decimal("45.00"), "TxnDate": "2026-03-03"}
    for attempt in (crash, None):
        link = await store.get_link("acme", Kind.PAYMENT, hubspot_id="900") or link
        payment = dict(books.payments["100"])
        plan = plan_qbo_payment_update(
            link, payment, fields, request_id("Payment", "100", "update", payment["SyncToken"], link=link), 1.0
        )
        steps = plan.steps if attempt is None else plan.steps[:attempt]
        await carry_out(books_context(store, books), dataclasses.replace(plan, steps=steps))
    assert (books.payments["100"]["TotalAmt"], books.payments["100"]["Line"]) == (
        Decimal("45.00"),
        [{"Amount": Decimal("45.00")}],
    )
    assert books.writes == 2  # the create, then one update
    assert plan_qbo_payment_update(link, books.payments["100"], fields, "r", 1.0).steps == ()


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_void_crashed_after_any_step_voids_once_and_names_its_echo(store: Store, crash: int) -> None:
    books = Books()
    link = await paid(store, books)
    for attempt in (crash, None):
        link = await store.get_link("acme", Kind.PAYMENT, hubspot_id="900") or link
        payment = dict(books.payments["100"])
        plan = plan_qbo_void(
            link, payment, "refunded", request_id("Payment", "100", "void", payment["SyncToken"], link=link), 1.0
        )
        steps = plan.steps if attempt is None else plan.steps[:attempt]
        await carry_out(books_context(store, books), dataclasses.replace(plan, steps=steps))
    assert is_voided(books.payments["100"])
    assert books.writes == 2  # the create, then one void
    saved = await store.get_link("acme", Kind.PAYMENT, hubspot_id="900")
    assert saved is not None
    assert (saved.status, saved.qbo_written_sync_token) == (LinkStatus.DELETED, books.payments["100"]["SyncToken"])


@pytest.mark.parametrize("crash", [0, 1, 2, 3])
async def test_hubspot_payments_of_a_voided_qbo_payment_are_archived_once_whatever_step_a_crash_cut(
    store: Store, crash: int
) -> None:
    books = Books()
    link = await store.save_link(Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.QUICKBOOKS,
                                      hubspot_id="900", qbo_id="100", synced={"70": "900", "71": "901"}))  # fmt: skip
    first = plan_hubspot_removal(PaymentSettings(), link, "voided", 1.0)
    assert [type(step) for step in first.steps] == [ArchiveHubSpot, ArchiveHubSpot, SaveLink]
    await carry_out(books_context(store, books), dataclasses.replace(first, steps=first.steps[:crash]))
    link = await store.get_link("acme", Kind.PAYMENT, qbo_id="100") or link
    again = plan_hubspot_removal(PaymentSettings(), link, "voided", 1.0)
    await carry_out(books_context(store, books), again)
    assert again.action == ("skipped" if crash == 3 else "deleted")
    assert books.archived == ["900", "901"]
    assert (await store.get_link("acme", Kind.PAYMENT, qbo_id="100") or link).status == LinkStatus.DELETED


class Portal:
    """HubSpot payments: found by id or by their unique origin key; an archived one answers 404."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, str]] = {}
        self.creates = self.updates = 0

    def by_key(self, key: str) -> HubSpotObject | None:
        found = [i for i, p in self.records.items() if p.get(ORIGIN_PROPERTY) == key]
        return HubSpotObject(found[0], dict(self.records[found[0]]), None, None) if found else None

    async def create(self, object_type: str, properties: dict[str, str], *, associations: Any) -> HubSpotObject:
        assert self.by_key(properties[ORIGIN_PROPERTY]) is None  # the origin key is unique: never twice
        made = str(500 + self.creates)
        self.records[made] = dict(properties)
        self.creates += 1
        return HubSpotObject(made, dict(properties), None, None)

    async def update(self, object_type: str, object_id: str, properties: dict[str, str]) -> HubSpotObject:
        self.records[object_id].update(properties)
        self.updates += 1
        return HubSpotObject(object_id, dict(self.records[object_id]), None, None)

    async def archive(self, object_type: str, object_id: str) -> None:
        if self.records.pop(object_id, None) is None:
            raise NotFound("gone", provider="hubspot")


QBO_PAYMENT = {"Id": "P", "SyncToken": "4"}
WANTED = {"70": {"hs_initial_amount": "30"}, "71": {"hs_initial_amount": "10"}}  # invoice -> what its part holds


def read_parts(portal: Portal, link: Link | None) -> tuple[list[str], list[PaymentPart]]:
    """What the rule reads before planning: the parts it made (the link, else their origin key), those to drop."""
    made = dict(link.synced) if link is not None else {}
    dropped = [str(made.pop(i)) for i in list(made) if i not in WANTED and made[i]]
    parts = []
    for invoice_id, properties in WANTED.items():
        known = str(made.get(invoice_id))
        record = (HubSpotObject(known, dict(portal.records[known]), None, None) if known in portal.records
                  else portal.by_key(origin_key("P", invoice_id)))  # fmt: skip
        parts.append(PaymentPart(invoice_id, origin_key("P", invoice_id), dict(properties), record))
    return dropped, parts


@pytest.mark.parametrize("crash", [0, 1, 2, 3, 4])
async def test_hubspot_payments_of_a_qbo_payment_crashed_after_any_step_are_made_once_each(
    store: Store, crash: int
) -> None:
    """Part 70 exists and differs, 71 is new, 69 is no longer applied."""
    portal = Portal()
    portal.records = {"400": {"hs_initial_amount": "25", ORIGIN_PROPERTY: "P-70"}, "401": {ORIGIN_PROPERTY: "P-69"}}
    await store.save_link(Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.QUICKBOOKS, qbo_id="P",
                               hubspot_id="400", synced={"69": "401", "70": "400"}))  # fmt: skip
    ctx: Any = SimpleNamespace(name="acme", store=store, hubspot=portal)
    for attempt in (crash, None):
        link = await store.get_link("acme", Kind.PAYMENT, qbo_id="P")
        assert link is not None
        plan = plan_hubspot_payments(link, QBO_PAYMENT, *read_parts(portal, link), 1.0)
        if attempt == crash:
            assert [type(step) for step in plan.steps] == [ArchiveHubSpot, UpdateHubSpot, CreateHubSpot, SaveLink]
            assert (plan.action, plan.detail) == ("created", "2 HubSpot payment(s): 1 created, 1 updated")
        await carry_out(ctx, plan if attempt is None else dataclasses.replace(plan, steps=plan.steps[:attempt]))

    assert (portal.creates, portal.updates) == (1, 1)
    assert portal.records == {"400": {"hs_initial_amount": "30", ORIGIN_PROPERTY: "P-70"},
                              "500": {"hs_initial_amount": "10", ORIGIN_PROPERTY: "P-71"}}  # fmt: skip
    link = await store.get_link("acme", Kind.PAYMENT, qbo_id="P")
    assert link is not None
    assert (link.synced, link.hubspot_id, link.qbo_version) == ({"70": "400", "71": "500"}, "400", "4")
    settled = plan_hubspot_payments(link, QBO_PAYMENT, *read_parts(portal, link), 1.0)
    assert (settled.action, [type(step) for step in settled.steps]) == ("unchanged", [SaveLink])

"""The shared steps of the field-sync rules as plans: `sync_fields`' plan (its steps; every crash window of it, a
crash after each step then a re-run itself crashing after each step, and a user's edit after the crash, converging
with no write made twice; for any values, edits and settings, a run crashed twice ends as one without a crash), the
QBO record made inactive and the HubSpot record archived (each once, whatever step a crash cut); the creates (a QBO
record under its first free name, a HubSpot contact with its intent, a product marked with its item: after a crash
after any step, the next apply makes nothing twice and takes the record's values as our write; a requestid kept
across a crash, new after a recorded failure; where QBO replays nothing, a batched create's answer lost, a crash
after any step or a lost create landing late, the retry adopts the record made and never renames a duplicate, a holder
in doubt needing review); a claim (a superseded half link retired first); a merge's repoints."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from services.worker import _fields
from services.worker._executor import MergedAway, carry_out
from services.worker._fields import FieldMap
from services.worker._plan import (
    AllRefused,
    Alternative,
    Answer,
    Answered,
    ArchiveHubSpot,
    CreateHubSpot,
    CreateQboOneOf,
    LogActivity,
    Plan,
    Refusal,
    RepointLink,
    RequestId,
    SaveLink,
    SaveOtherLink,
    UpdateHubSpot,
    UpdateQbo,
)
from services.worker.rules import Excluded, Failing, _pair
from services.worker.rules._match import REVIEWED
from services.worker.rules._pair import (
    Claim,
    PairSpec,
    archive_in_hubspot,
    deactivate_in_qbo,
    plan_archive,
    plan_claim,
    plan_deactivate,
    plan_fields,
    plan_hubspot_create,
    plan_qbo_create,
    plan_repoint,
    settled_from_qbo,
)
from services.worker.rules.contacts import SPEC, adopted_intent
from services.worker.rules.products import SPEC as PRODUCTS
from shared.clients import HubSpotObject, qbo_quote
from shared.connections import SyncContext
from shared.domain import Action, Direction, Kind, PendingKey, Provider
from shared.errors import Conflict, DuplicateName, NotFound, StaleObject, TransportError
from shared.store import Link, LinkStatus, StaleLink, Store, open_store
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


# --- sync_fields: the plan, and every crash window of it ------------------------------------------------------------

FIELDS = (
    FieldMap("name", "lastname", "FamilyName"),
    FieldMap("city", "city", "BillAddr.City"),
    FieldMap("phone", "phone", "PrimaryPhone.FreeFormNumber"),
)
FIELD_SPEC = PairSpec("contacts", "Customer", FIELDS)
BASE: _fields.Values = {"name": "Acme", "city": "Oslo", "phone": "1"}
HUBSPOT, QBO = Provider.HUBSPOT, Provider.QUICKBOOKS
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


class World:
    """Both APIs as far as `sync_fields` uses them: QBO replays a `requestid` it has answered (never applying it
    twice) and refuses a stale SyncToken; every write counts, and one that changes nothing is a duplicate."""

    def __init__(self, hubspot: _fields.Values, qbo: _fields.Values) -> None:
        self.properties = _fields.to_hubspot(FIELDS, hubspot)
        self.hubspot_at = T0
        self.entity: dict[str, Any] = {"Id": "58", "SyncToken": "0", **_fields.to_qbo(FIELDS, qbo)}
        self.answers: dict[str, dict[str, Any]] = {}
        self.duplicates = 0

    # The user.

    def edit(self, side: Provider, field: str, value: str) -> None:
        if side is HUBSPOT:
            self._hubspot_write(_fields.to_hubspot(FIELDS, {field: value}))
        else:
            self._qbo_write(_fields.to_qbo(FIELDS, {field: value}, self.entity))

    # Reads, as a rule makes them.

    def record(self) -> HubSpotObject:
        return HubSpotObject("300", dict(self.properties), T0, self.hubspot_at)

    def values(self) -> tuple[_fields.Values, _fields.Values]:
        return _fields.from_hubspot(FIELDS, self.properties), _fields.from_qbo(FIELDS, self.entity)

    # The clients' writes.

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 3:  # HubSpotClient.update(object_type, object_id, properties)
            if all(self.properties.get(name) == value for name, value in args[2].items()):
                self.duplicates += 1
            self._hubspot_write(args[2])
            return self.record()
        entity, body = args
        request_id = kwargs["request_id"]
        if request_id in self.answers:
            return self.answers[request_id]
        if body["SyncToken"] != self.entity["SyncToken"]:
            raise StaleObject(f"stale {entity}", provider="quickbooks")
        fields = {name: value for name, value in body.items() if name not in ("Id", "SyncToken", "sparse")}
        if all(self.entity.get(name) == value for name, value in fields.items()):
            self.duplicates += 1
        self._qbo_write(fields)
        self.answers[request_id] = dict(self.entity)
        return self.answers[request_id]

    def _hubspot_write(self, properties: Mapping[str, str]) -> None:
        self.properties.update(properties)
        self.hubspot_at += dt.timedelta(seconds=1)

    def _qbo_write(self, fields: Mapping[str, Any]) -> None:
        self.entity.update(copy.deepcopy(dict(fields)))
        self.entity["SyncToken"] = str(int(self.entity["SyncToken"]) + 1)


def fields_context(store: Store, world: World) -> Any:
    return SimpleNamespace(name="acme", store=store, qbo=world, hubspot=world)


CONNECTION_NAME: Any = SimpleNamespace(name="acme")  # all `SyncContext.request_id` reads


async def plan_now(store: Store, world: World, settings: ContactSettings, action: Action) -> Plan:
    """What an apply plans from what it reads now: the link first, then both records."""
    link = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    assert link is not None
    request_id = SyncContext.request_id(
        CONNECTION_NAME, "Customer", "58", "update", world.entity["SyncToken"], link=link
    )
    record, entity = world.record(), copy.deepcopy(world.entity)
    return plan_fields(FIELD_SPEC, settings, link, record, entity, action=action, request_id=request_id, now=1.0)


async def apply(store: Store, world: World, settings: ContactSettings, action: Action, crash_after: int | None) -> Plan:
    """One apply; with `crash_after`, the process dies after that many steps of its plan (0: before any)."""
    plan = await plan_now(store, world, settings, action)
    steps = plan.steps if crash_after is None else plan.steps[:crash_after]
    await carry_out(fields_context(store, world), dataclasses.replace(plan, steps=steps))
    return plan


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    settings: ContactSettings
    hubspot: _fields.Values  # the user's edits before the apply, per side
    qbo: _fields.Values
    expected: _fields.Values  # what both sides hold at the end
    later: tuple[tuple[Provider, str, str], ...]  # an edit after the crash (each its own run)
    first_link: bool = False  # the two records are joined now: no agreement yet

    def __str__(self) -> str:
        return self.name


TWO_WAY = ContactSettings()
QBO_WINS = ContactSettings(conflict_winner="quickbooks")
CASES = [
    Case("hubspot-edit", TWO_WAY, {"name": "Acme 2"}, {}, {**BASE, "name": "Acme 2"},
         ((HUBSPOT, "name", "Acme 3"), (QBO, "phone", "9"))),
    Case("qbo-edit", TWO_WAY, {}, {"city": "Bergen"}, {**BASE, "city": "Bergen"},
         ((QBO, "city", "Tromso"), (HUBSPOT, "name", "Acme 3"))),
    Case("both-edited", TWO_WAY, {"name": "N2"}, {"city": "C2"}, {**BASE, "name": "N2", "city": "C2"},
         ((HUBSPOT, "name", "N3"), (QBO, "city", "C3"), (QBO, "phone", "9"))),
    Case("conflict-hubspot-wins", TWO_WAY, {"name": "N-H"}, {"name": "N-Q"}, {**BASE, "name": "N-H"},
         ((HUBSPOT, "name", "N-H2"), (QBO, "phone", "9"))),
    Case("conflict-qbo-wins", QBO_WINS, {"name": "N-H", "phone": "2"}, {"name": "N-Q"},
         {**BASE, "name": "N-Q", "phone": "2"}, ((QBO, "name", "N-Q2"), (HUBSPOT, "phone", "3"))),
    Case("hubspot-to-qbo", ContactSettings(direction="hubspot_to_qbo"), {"name": "N2"}, {"city": "C2"},
         {**BASE, "name": "N2"}, ((HUBSPOT, "city", "C3"), (QBO, "phone", "9"))),
    Case("qbo-to-hubspot", ContactSettings(direction="qbo_to_hubspot"), {"name": "N2"}, {"city": "C2"},
         {**BASE, "city": "C2"}, ((QBO, "name", "N3"), (HUBSPOT, "phone", "9"))),
    Case("first-link", TWO_WAY, {"city": None}, {"name": "Other", "city": "Bergen"},
         {**BASE, "city": "Bergen"}, ((HUBSPOT, "phone", "9"),), first_link=True),
]  # fmt: skip


async def start(store: Store, case: Case) -> World:
    """Both records held BASE at the last sync (none yet for a first link); then the user's edits."""
    return await begin(store, BASE, case.hubspot, case.qbo, first_link=case.first_link)


async def begin(
    store: Store, base: _fields.Values, hubspot: _fields.Values, qbo: _fields.Values, *, first_link: bool
) -> World:
    world = World(base, base)
    await store.save_link(
        Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300", qbo_id="58",
             synced={} if first_link else base,
             hubspot_hash=None if first_link else _fields.content_hash(base),
             qbo_hash=None if first_link else _fields.content_hash(base),
             qbo_version="0", qbo_written_sync_token=None if first_link else "0")
    )  # fmt: skip
    for side, edits in ((HUBSPOT, hubspot), (QBO, qbo)):
        for field, value in edits.items():
            world.edit(side, field, value or "")
    return world


async def assert_converged(store: Store, world: World, case: Case, expected: _fields.Values) -> None:
    await assert_settled(store, world, case.settings, expected)


async def assert_settled(store: Store, world: World, settings: ContactSettings, expected: _fields.Values) -> None:
    hubspot, qbo = world.values()
    assert (hubspot, qbo) == (expected, expected)
    link = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    assert link is not None
    assert (link.status, link.synced) == (LinkStatus.SYNCED, expected)
    assert link.hubspot_hash == link.qbo_hash == _fields.content_hash(expected)
    assert (link.hubspot_version, link.qbo_version) == (world.hubspot_at.isoformat(), world.entity["SyncToken"])
    assert world.duplicates == 0
    again = await apply(store, world, settings, Action.UPDATED, None)
    assert (again.action, [s for s in again.steps if not isinstance(s, SaveLink)]) == ("unchanged", [])


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_sync_crashed_after_any_step_and_run_again_converges_without_a_duplicate_write(case: Case) -> None:
    """Every crash point of the plan, then every crash point of the re-run's own plan, then a full run."""
    async with open_store("sqlite://:memory:") as probe:
        steps = len((await plan_now(probe, await start(probe, case), case.settings, Action.LINKED)).steps)
    for crash in range(steps + 1):
        for second_crash in (None, *range(steps + 1)):
            async with open_store("sqlite://:memory:") as store:
                world = await start(store, case)
                await apply(store, world, case.settings, Action.LINKED if case.first_link else Action.UPDATED, crash)
                if second_crash is not None:
                    await apply(store, world, case.settings, Action.UPDATED, second_crash)
                await apply(store, world, case.settings, Action.UPDATED, None)
                await assert_converged(store, world, case, case.expected)


@pytest.mark.parametrize(
    ("case", "later"), [(case, later) for case in CASES for later in case.later],
    ids=[f"{case}-then-{later[0]}-{later[1]}" for case in CASES for later in case.later],
)  # fmt: skip
async def test_a_users_edit_after_a_crash_wins_over_the_crashed_write(
    case: Case, later: tuple[Provider, str, str]
) -> None:
    """A write the crash left unrecorded is ours (its intent says so), never an edit that would beat the user's; but
    for one window, asserted as it is."""
    side, field, value = later
    edited = {**case.expected, field: value} if case.settings.syncs_from(str(side)) else case.expected
    async with open_store("sqlite://:memory:") as probe:
        steps = len((await plan_now(probe, await start(probe, case), case.settings, Action.UPDATED)).steps)
    for crash in range(steps + 1):
        async with open_store("sqlite://:memory:") as store:
            world = await start(store, case)
            plan = await apply(store, world, case.settings, Action.LINKED if case.first_link else Action.UPDATED, crash)
            world.edit(side, field, value)
            await apply(store, world, case.settings, Action.UPDATED, None)
            lost = unrecorded_qbo_write(plan, crash, case.settings, side, field)
            await assert_converged(store, world, case, edited if lost is None else {**edited, field: lost})


VALUE = st.sampled_from([None, "A", "B", "C"])
FIELD_NAMES = [m.name for m in FIELDS]
ONE_WAY = [ContactSettings(direction="hubspot_to_qbo"), ContactSettings(direction="qbo_to_hubspot")]
SYNC_SETTINGS = st.sampled_from([TWO_WAY, QBO_WINS, *ONE_WAY])


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    base=st.fixed_dictionaries({name: VALUE for name in FIELD_NAMES}),
    hubspot=st.dictionaries(st.sampled_from(FIELD_NAMES), VALUE),
    qbo=st.dictionaries(st.sampled_from(FIELD_NAMES), VALUE),
    sync=SYNC_SETTINGS,
    first_link=st.booleans(),
    data=st.data(),
)
async def test_any_edits_synced_through_any_two_crashes_end_as_a_run_without_a_crash(
    base: _fields.Values, hubspot: _fields.Values, qbo: _fields.Values, sync: ContactSettings, first_link: bool,
    data: st.DataObject,
) -> None:  # fmt: skip
    action = Action.LINKED if first_link else Action.UPDATED
    async with open_store("sqlite://:memory:") as store:
        world = await begin(store, base, hubspot, qbo, first_link=first_link)
        plan = await apply(store, world, sync, action, None)
        expected, _ = world.values()
    async with open_store("sqlite://:memory:") as store:
        world = await begin(store, base, hubspot, qbo, first_link=first_link)
        await apply(store, world, sync, action, data.draw(st.integers(0, len(plan.steps)), label="crash"))
        rerun = await plan_now(store, world, sync, Action.UPDATED)
        second = data.draw(st.none() | st.integers(0, len(rerun.steps)), label="second crash")
        await apply(store, world, sync, Action.UPDATED, second)
        await apply(store, world, sync, Action.UPDATED, None)
        await assert_settled(store, world, sync, expected)


def unrecorded_qbo_write(
    plan: Plan, crash: int, settings: ContactSettings, side: Provider, field: str
) -> str | None:  # fmt: skip
    """The one window where a crashed write beats a newer edit (see `plan_fields`): both sides written, the crash
    right after the QBO write, `quickbooks` winning conflicts, the user then editing in HubSpot a field just written
    to QBO. The value that write gave the field, which then stays; None outside the window."""
    kinds = [type(step) for step in plan.steps]
    if UpdateHubSpot not in kinds or UpdateQbo not in kinds or crash != kinds.index(UpdateQbo) + 1:
        return None
    write = plan.steps[kinds.index(UpdateQbo)]
    assert isinstance(write, UpdateQbo)
    written = _fields.from_qbo(FIELDS, write.body)
    if settings.conflict_winner != "quickbooks" or side is not HUBSPOT or written[field] is None:
        return None
    return written[field]


async def test_the_plan_records_each_sides_intent_before_writing_it() -> None:
    async with open_store("sqlite://:memory:") as store:
        world = await start(store, CASES[2])  # both edited: QBO and HubSpot written
        plan = await plan_now(store, world, TWO_WAY, Action.UPDATED)
    kinds = [type(step) for step in plan.steps]
    assert kinds == [SaveLink, UpdateQbo, SaveLink, UpdateHubSpot, SaveLink]
    qbo_intent, qbo_write, hubspot_intent, hubspot_write, agreement = plan.steps
    assert isinstance(qbo_write, UpdateQbo)
    assert isinstance(hubspot_write, UpdateHubSpot)
    assert qbo_write.body == {"Id": "58", "SyncToken": "1", "sparse": True, "FamilyName": "N2"}
    assert hubspot_write.properties == {"city": "C2"}
    target = _fields.content_hash({**BASE, "name": "N2", "city": "C2"})
    # QBO's intent holds no hash (HubSpot is written next: QBO alone is no agreement); HubSpot's names the target.
    assert qbo_intent == SaveLink({"synced": BASE, "qbo_hash": None, "hubspot_hash": None})
    assert isinstance(hubspot_intent, SaveLink)
    assert hubspot_intent.changes["hubspot_hash"] == target
    assert hubspot_intent.changes["qbo_written_sync_token"] == Answered(Answer.QBO_SYNC_TOKEN)
    assert isinstance(agreement, SaveLink)
    assert agreement.changes["status"] == LinkStatus.SYNCED
    assert (plan.action, plan.direction, plan.detail) == ("updated", None, "fields: city, name")


async def test_a_first_link_logs_what_it_overwrote_and_an_extra_qbo_write_alone_is_planned() -> None:
    async with open_store("sqlite://:memory:") as store:
        world = await start(store, CASES[-1])
        plan = await plan_now(store, world, TWO_WAY, Action.LINKED)
        assert isinstance(plan.steps[-1], LogActivity)
        assert plan.steps[-1].detail.startswith("overwritten on linking; QuickBooks: name: 'Other' → 'Acme'")
        await assert_converged_after(store, world, plan)
        request_id = "restore-1"
        assert plan.link is not None
        restore = plan_fields(FIELD_SPEC, TWO_WAY, plan.link, world.record(), world.entity, action=Action.RESTORED,
                              request_id=request_id, now=1.0, qbo_extra={"Active": True})  # fmt: skip
    assert [type(step) for step in restore.steps] == [UpdateQbo, SaveLink]
    assert restore.steps[0] == UpdateQbo("Customer", {"Id": "58", "SyncToken": world.entity["SyncToken"],
                                                      "sparse": True, "Active": True}, request_id)  # fmt: skip
    assert (restore.action, restore.direction, restore.detail) == ("restored", None, "")


async def assert_converged_after(store: Store, world: World, plan: Plan) -> None:
    outcome = await carry_out(fields_context(store, world), plan)
    assert outcome.link == await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    assert [line.action for line in await store.activity("acme", Kind.CONTACT, hubspot_id="300")] == ["overwritten"]


# --- the QBO record made inactive, the HubSpot record archived: plans and their crash windows ---------------------


class Items:
    """A QBO entity and a HubSpot record: QBO replays a requestid it answered; HubSpot answers a second archive 404."""

    def __init__(self, active: bool = True) -> None:
        self.entity: dict[str, Any] = {"Id": "58", "SyncToken": "3", "Active": active}
        self.answers: dict[str, dict[str, Any]] = {}
        self.qbo_writes = 0
        self.archived: list[str] = []

    async def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        return dict(self.entity)

    async def update(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        if request_id not in self.answers:
            assert body["SyncToken"] == self.entity["SyncToken"]
            self.entity = {**self.entity, "Active": body["Active"], "SyncToken": str(int(self.entity["SyncToken"]) + 1)}
            self.answers[request_id] = dict(self.entity)
            self.qbo_writes += 1
        return self.answers[request_id]

    async def archive(self, object_type: str, object_id: str) -> None:
        if object_id in self.archived:
            raise NotFound("gone", provider="hubspot")
        self.archived.append(object_id)


async def linked_pair(store: Store) -> Link:
    return await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300",
                                      qbo_id="58", qbo_written_sync_token="1"))  # fmt: skip


def items_context(store: Store, items: Items, settings: ContactSettings) -> Any:
    return SimpleNamespace(
        name="acme", store=store, qbo=items, hubspot=items, connection=SimpleNamespace(contacts=settings),
        request_id=lambda *parts, link: SyncContext.request_id(CONNECTION_NAME, *parts, link=link),
    )  # fmt: skip


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_deactivation_crashed_after_any_step_makes_the_record_inactive_once(store: Store, crash: int) -> None:
    items = Items()
    link = await linked_pair(store)
    plan = plan_deactivate(SPEC, link, await items.read("Customer", "58"), "deactivate-1")
    assert [type(step) for step in plan.steps] == [UpdateQbo, SaveLink]
    await carry_out(items_context(store, items, ContactSettings()), dataclasses.replace(plan, steps=plan.steps[:crash]))

    outcome = await deactivate_in_qbo(items_context(store, items, ContactSettings()), SPEC, Kind.CONTACT,
                                      ContactSettings(), "300")  # fmt: skip
    assert (outcome.action, items.entity["Active"], items.qbo_writes) == ("deleted" if crash < 2 else "skipped",
                                                                          False, 1)  # fmt: skip
    saved = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    assert saved is not None
    # The echo of our write (its webhook) is recognised: the link names the SyncToken it produced.
    assert (saved.status, saved.qbo_written_sync_token) == (LinkStatus.DELETED, "4")


async def test_an_inactive_or_ignored_qbo_record_is_only_marked_deleted(store: Store) -> None:
    link = await linked_pair(store)
    inactive = plan_deactivate(SPEC, link, {"Id": "58", "SyncToken": "7", "Active": False}, "r")
    assert inactive.steps == (SaveLink({"qbo_written_sync_token": "7", "status": LinkStatus.DELETED}),)
    ignored = plan_deactivate(SPEC, link, None, "")
    assert ignored.steps == (SaveLink({"qbo_written_sync_token": "1", "status": LinkStatus.DELETED}),)
    assert (ignored.action, ignored.detail) == ("deleted", "on_delete=ignore")


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_an_archive_crashed_after_any_step_archives_once_and_settles(store: Store, crash: int) -> None:
    items = Items(active=False)
    link = await linked_pair(store)
    plan = plan_archive(SPEC, ContactSettings(), link)
    assert plan.steps == (ArchiveHubSpot("contacts", "300"), SaveLink({"status": LinkStatus.DELETED}))
    ctx = items_context(store, items, ContactSettings())
    await carry_out(ctx, dataclasses.replace(plan, steps=plan.steps[:crash]))

    again = await archive_in_hubspot(ctx, SPEC, ContactSettings(), await store.get_link("acme", Kind.CONTACT,
                                                                                        hubspot_id="300"))  # fmt: skip
    assert again.action == ("deleted" if crash < 2 else "unchanged")
    assert items.archived == ["300"]
    assert again.link is not None
    assert again.link.status == LinkStatus.DELETED


# --- creates: the plans and every crash window, then the next apply from what the store and the APIs hold --------


class Books:
    """QBO's customers: a taken DisplayName refused (DuplicateName), a requestid answered before replayed (its
    refusals included), never a record made twice for one requestid."""

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {
            "1": {
                "Id": "1",
                "SyncToken": "5",
                "DisplayName": "Acme",
                "MetaData": {"CreateTime": "2024-03-01T09:00:00-08:00"},
            }
        }
        self.answers: dict[str, dict[str, Any] | DuplicateName] = {}
        self.made = 0

    async def create(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        if request_id not in self.answers:
            if any(c["DisplayName"] == body["DisplayName"] for c in self.customers.values()):
                self.answers[request_id] = DuplicateName("taken", provider="quickbooks", code="6240")
            else:
                made = {**body, "Id": str(100 + self.made), "SyncToken": "0", "MetaData": {"CreateTime": _now()}}
                self.customers[made["Id"]] = made
                self.answers[request_id] = copy.deepcopy(made)
                self.made += 1
        answer = self.answers[request_id]
        if isinstance(answer, DuplicateName):
            raise answer
        return answer

    async def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.customers[entity_id])

    async def query(self, statement: str) -> list[dict[str, Any]]:
        """The customers a statement names by DisplayName."""
        return [copy.deepcopy(c) for c in self.customers.values() if qbo_quote(c["DisplayName"]) in statement]

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.customers.values() if c["Id"] != "1"]


NAMES = ("Acme", "Acme (Jane Doe)", "Acme (HubSpot 300)")
TAKEN = AllRefused("QuickBooks already has a customer named 'Acme' (DisplayName must be unique)",
                   "duplicate_display_name")  # fmt: skip


def contact_values(first_name: str) -> _fields.Values:
    return {"email": "jane@acme.test", "first_name": first_name, "city": "Oslo"}


def customer_plan(link: Link | None, values: _fields.Values, names: tuple[str, ...] = NAMES) -> Plan:
    """The contacts rule's create, as it plans it from the contact's values and the link it read."""
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    body = {key: value for key, value in _fields.to_qbo(maps, values).items() if value not in ("", {})}
    base = link or Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300")
    return plan_qbo_create(SPEC, base, "300", body, name_field="DisplayName", names=names,
                           holds=_fields.from_qbo(maps, body), all_refused=TAKEN)  # fmt: skip


def books_context(store: Store, books: Books) -> Any:
    return SimpleNamespace(
        name="acme", store=store, qbo=books,
        request_id=lambda *parts, link: SyncContext.request_id(CONNECTION_NAME, *parts, link=link),
    )  # fmt: skip


def holds_hash(values: _fields.Values) -> str:
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    return _fields.content_hash(_fields.from_qbo(maps, _fields.to_qbo(maps, values)))


def test_a_qbo_create_records_its_intent_then_creates_under_each_name_then_saves_the_id() -> None:
    new = customer_plan(None, contact_values("Jane"))
    assert [type(step) for step in new.steps] == [SaveLink, CreateQboOneOf, SaveLink]
    assert new.steps[0] == SaveLink({"qbo_hash": holds_hash(contact_values("Jane")), "status": LinkStatus.SYNCED,
                                     "error_category": None, "error_message": None})  # fmt: skip
    create = new.steps[1]
    assert isinstance(create, CreateQboOneOf)
    assert (create.entity, create.refusal, create.all_refused) == ("Customer", Refusal.DUPLICATE_NAME, TAKEN)
    assert create.alternatives == tuple(
        Alternative({"DisplayName": name}, RequestId(("Customer", "create", "300", name))) for name in NAMES
    )
    made = {"qbo_id": Answered(Answer.QBO_ID), "qbo_written_sync_token": Answered(Answer.QBO_SYNC_TOKEN)}
    assert new.steps[2] == SaveLink({**made, **REVIEWED})
    assert (new.action, new.direction) == ("created", Direction.HUBSPOT_TO_QBO)
    intent = Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300", qbo_hash="h", id=4)
    kept = customer_plan(intent, contact_values("Jane")).steps  # kept: the same requestids, the names looked up
    assert kept == (dataclasses.replace(create, looked_up=True), new.steps[2])
    failed = dataclasses.replace(intent, status=LinkStatus.FAILING)
    assert customer_plan(failed, contact_values("Jane")).steps == new.steps  # recorded afresh


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


async def create_customer(store: Store, books: Books, values: _fields.Values, crash: int | None = None) -> Link | None:
    """One apply of the rule's create path, from what it reads: the link with the customer's id already saved
    takes the linked path (no create); else, after its look for a create cut short (`lost_create`), the create is
    planned (and cut after `crash` steps) or the record that create made is adopted."""
    link = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    if link is not None and link.qbo_id is not None:
        return link
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    base = link or Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300")
    ctx = books_context(store, books)
    held = await _pair.lost_create(ctx, SPEC, Kind.CONTACT, base, name_field="DisplayName", names=NAMES,
                                   hash_of=lambda c: _fields.content_hash(_fields.from_qbo(maps, c)))  # fmt: skip
    body = {key: value for key, value in _fields.to_qbo(maps, values).items() if value not in ("", {})}
    plan = plan_qbo_create(SPEC, base, "300", body, name_field="DisplayName", names=NAMES,
                           holds=_fields.from_qbo(maps, body), all_refused=TAKEN, held=held)  # fmt: skip
    if crash is not None:
        return (await carry_out(ctx, dataclasses.replace(plan, steps=plan.steps[:crash]))).link
    made, customer = await _pair.carry_out_qbo_create(ctx, plan, held)
    assert customer["Id"] == made.qbo_id  # the create's answer (or the record adopted): no read back
    return made


@pytest.mark.parametrize("crash", [0, 1, 2, 3])
async def test_a_qbo_create_crashed_after_any_step_makes_one_record_and_links_it(store: Store, crash: int) -> None:
    books = Books()
    await create_customer(store, books, contact_values("Jane"), crash)
    link = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    # What a crash after step `crash` leaves: nothing; the intent; the customer, unlinked; the link with its id.
    assert (link is not None, books.made, link is not None and link.qbo_id is not None) == [
        (False, 0, False), (True, 0, False), (True, 1, False), (True, 1, True)][crash]  # fmt: skip

    again = await create_customer(store, books, contact_values("Jane"))
    [made] = books.ours()  # "Acme" is another customer's: the next name, once, whatever the crash
    assert (made["DisplayName"], books.made) == ("Acme (Jane Doe)", 1)
    assert again is not None
    assert (again.qbo_id, again.qbo_written_sync_token, again.status) == (made["Id"], "0", LinkStatus.SYNCED)
    assert again.qbo_hash == holds_hash(contact_values("Jane"))  # what `sync_fields` takes as our write


@pytest.mark.parametrize("crash", [1, 2])
async def test_a_contact_edited_between_a_crashed_create_and_its_retry_is_not_lost(store: Store, crash: int) -> None:
    """The retry replays the first attempt's create (the kept intent's requestids), which holds the first values:
    the intent describes those, so the field sync that follows (from the customer read) takes QBO as our write and
    brings the edit to it."""
    books = Books()
    await create_customer(store, books, contact_values("Jane"), crash)
    link = await create_customer(store, books, contact_values("Janet"))
    assert link is not None
    assert link.qbo_id is not None
    assert books.made == 1
    customer = await books.read("Customer", link.qbo_id)
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    if crash == 2:  # the replayed create: the first values, which the intent describes
        assert (customer["GivenName"], link.qbo_hash) == (
            "Jane",
            _fields.content_hash(_fields.from_qbo(maps, customer)),
        )
    contact = HubSpotObject("300", dict(_fields.to_hubspot(maps, contact_values("Janet"))), None, None)
    sync = plan_fields(SPEC, TWO_WAY, link, contact, customer, action=Action.CREATED, request_id="u", now=1.0)
    updates = [step.body["GivenName"] for step in sync.steps if isinstance(step, UpdateQbo)]
    assert [*updates, customer["GivenName"]][0] == "Janet"  # QBO gets the edit, or holds it already
    assert not any(isinstance(step, UpdateHubSpot) for step in sync.steps)  # the edit is not undone in HubSpot


async def test_every_name_refused_fails_the_record_and_the_next_attempt_after_the_failure_is_a_new_write(
    store: Store,
) -> None:
    books = Books()
    plan = customer_plan(None, contact_values("Jane"), names=("Acme",))
    with pytest.raises(Failing) as failing:
        await carry_out(books_context(store, books), plan)
    assert failing.value.category == "duplicate_display_name"
    intent = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    assert intent is not None
    assert (intent.qbo_id, books.made) == (None, 0)
    await store.set_status(intent.id or 0, LinkStatus.FAILING, "duplicate_display_name", "taken")  # the engine
    failed = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    assert failed is not None
    books.customers["1"]["DisplayName"] = "Acme Corp"  # renamed in QBO: the name is free now
    link = (await carry_out(books_context(store, books), customer_plan(failed, contact_values("Jane")))).link
    # A new requestid (the failure moved the revision): QBO does not replay its refusal.
    assert link is not None
    assert (link.qbo_id, books.ours()[0]["DisplayName"]) == ("100", "Acme")


class Crm:
    """HubSpot's contacts and products: a contact's email unique (409 naming the holder), a product findable by the
    item it was made from."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, str]] = {}

    async def create(self, object_type: str, properties: Mapping[str, str], *, associations: Any = ()) -> (
        HubSpotObject
    ):  # fmt: skip
        if (holder := self.by("email", properties.get("email"))) is not None:
            raise Conflict("Contact already exists", provider="hubspot", status=409, existing_id=holder)
        record_id = str(500 + len(self.records))
        self.records[record_id] = dict(properties)
        return HubSpotObject(record_id, dict(properties), None, UPDATED_AT)

    def by(self, name: str, value: str | None) -> str | None:
        return next((i for i, r in self.records.items() if value is not None and r.get(name) == value), None)


UPDATED_AT = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
CUSTOMER_VALUES = _fields.from_qbo(
    _fields.active_maps(SPEC.fields, TWO_WAY),
    {"PrimaryEmailAddr": {"Address": "ann@globex.test"}, "GivenName": "Ann", "BillAddr": {"City": "Rome"}},
)


def contact_plan(link: Link | None) -> Plan:
    """The contacts rule's create from a customer (no contact has its email), as it plans it."""
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    base = link or Link(connection="acme", kind=Kind.CONTACT, origin=QBO, qbo_id="58")
    written = _fields.to_hubspot(maps, CUSTOMER_VALUES)
    return plan_hubspot_create(SPEC, base, written, holds=CUSTOMER_VALUES)


def test_a_hubspot_create_records_its_intent_then_creates_then_saves_the_id() -> None:
    plan = contact_plan(None)
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    assert plan.steps == (
        SaveLink({"hubspot_hash": _fields.content_hash(CUSTOMER_VALUES)}),
        CreateHubSpot("contacts", _fields.to_hubspot(maps, CUSTOMER_VALUES)),
        SaveLink({"hubspot_id": Answered(Answer.HUBSPOT_ID), "hubspot_version": Answered(Answer.HUBSPOT_UPDATED_AT),
                  **REVIEWED}),
    )  # fmt: skip
    assert (plan.action, plan.direction) == ("created", Direction.QBO_TO_HUBSPOT)
    item_link = Link(connection="acme", kind=Kind.PRODUCT, origin=QBO, qbo_id="7")
    properties = {"name": "Widget", "hsqbo_qbo_item_id": "7"}
    product = plan_hubspot_create(PRODUCTS, item_link, properties, holds=None)
    assert [type(step) for step in product.steps] == [CreateHubSpot, SaveLink]  # found by its marker after a crash


async def next_contact_apply(store: Store, crm: Crm, *, lookup_finds: bool) -> Link:
    """The contacts rule's next apply from a customer, from what it reads: the link with the contact's id (the
    linked path); else the contact with the customer's email, linked (unless the lookup misses it: HubSpot's index
    lags); else the create, whose 409 names the contact holding the email, linked (`adopted_intent`)."""
    link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    if link is not None and link.hubspot_id is not None:
        return link
    holder = crm.by("email", "ann@globex.test") if lookup_finds else None
    hubspot_hash = None
    if holder is None:
        ctx: Any = SimpleNamespace(name="acme", store=store, hubspot=crm)
        try:
            made = (await carry_out(ctx, contact_plan(link))).link
        except Conflict as exc:
            holder = str(exc.existing_id)
            taken = HubSpotObject(holder, dict(crm.records[holder]), None, None)
            hubspot_hash = adopted_intent(_fields.active_maps(SPEC.fields, TWO_WAY), link, taken, create_new=False)
            link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
        else:
            assert made is not None
            return made
    claimed = plan_claim("acme", Kind.CONTACT, QBO, holder, "58", None, link, category="duplicate_email")
    return await store.save_link(
        dataclasses.replace(claimed.link, hubspot_hash=hubspot_hash or claimed.link.hubspot_hash)
    )


@pytest.mark.parametrize("lookup_finds", [True, False], ids=["found-by-email", "found-by-409"])
@pytest.mark.parametrize("crash", [0, 1, 2, 3])
async def test_a_hubspot_create_crashed_after_any_step_makes_one_record_its_values_read_as_ours(
    store: Store, crash: int, lookup_finds: bool
) -> None:
    crm = Crm()
    ctx: Any = SimpleNamespace(name="acme", store=store, hubspot=crm)
    await carry_out(ctx, dataclasses.replace(plan := contact_plan(None), steps=plan.steps[:crash]))
    link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    # What a crash after step `crash` leaves: nothing; the intent; the contact, unlinked; the link with its id.
    assert (link is not None, len(crm.records), link is not None and link.hubspot_id is not None) == [
        (False, 0, False), (True, 0, False), (True, 1, False), (True, 1, True)][crash]  # fmt: skip

    final = await next_contact_apply(store, crm, lookup_finds=lookup_finds)
    assert (list(crm.records), final.hubspot_id, final.qbo_id) == (["500"], "500", "58")
    # The contact's values read as our write (what the intent recorded), not as HubSpot-side edits.
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    assert final.hubspot_hash == _fields.content_hash(_fields.from_hubspot(maps, crm.records["500"]))


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_product_create_crashed_after_any_step_makes_one_product_found_by_its_item(
    store: Store, crash: int
) -> None:
    """No intent (a product's values are the item's, and HubSpot takes no requestid): the product carries the item it
    was made from, which the next apply looks it up by (a unique property: no index lag) and links."""
    crm = Crm()
    ctx: Any = SimpleNamespace(name="acme", store=store, hubspot=crm)
    item_link = Link(connection="acme", kind=Kind.PRODUCT, origin=QBO, qbo_id="7")
    properties = {"name": "Widget", "hs_sku": "W-1", "hsqbo_qbo_item_id": "7"}
    plan = plan_hubspot_create(PRODUCTS, item_link, properties, holds=None)
    await carry_out(ctx, dataclasses.replace(plan, steps=plan.steps[:crash]))
    link = await store.get_link("acme", Kind.PRODUCT, qbo_id="7")
    assert (len(crm.records), link is not None) == [(0, False), (1, False), (1, True)][crash]

    if link is None and (made := crm.by("hsqbo_qbo_item_id", "7")) is not None:
        claimed = plan_claim("acme", Kind.PRODUCT, QBO, made, "7", None, None, category="duplicate_sku")
        link = await store.save_link(claimed.link)
    elif link is None:
        link = (await carry_out(ctx, plan)).link
    assert link is not None
    assert (list(crm.records), link.hubspot_id, link.qbo_id) == (["500"], "500", "7")


# --- a claim: the link joining two matched records -------------------------------------------------------------------


def half(side: Provider, hubspot_id: str | None = None, qbo_id: str | None = None) -> Link:
    return Link(connection="acme", kind=Kind.CONTACT, origin=side, hubspot_id=hubspot_id, qbo_id=qbo_id)


async def test_a_claim_joins_two_records_on_the_link_either_holds_or_a_new_one(store: Store) -> None:
    new = plan_claim("acme", Kind.CONTACT, HUBSPOT, "300", "58", None, None, category="duplicate_email")
    assert new == Claim(Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300", qbo_id="58"))
    ours = await store.save_link(half(HUBSPOT, hubspot_id="300"))
    by_hubspot = plan_claim("acme", Kind.CONTACT, HUBSPOT, "300", "58", ours, None, category="duplicate_email")
    assert by_hubspot == Claim(dataclasses.replace(ours, qbo_id="58"))
    theirs = await store.save_link(half(QBO, qbo_id="58"))
    by_qbo = plan_claim("acme", Kind.CONTACT, QBO, "300", "58", None, theirs, category="duplicate_email")
    assert by_qbo == Claim(dataclasses.replace(theirs, hubspot_id="300"))


async def test_a_claim_never_steals_a_record_linked_to_another(store: Store) -> None:
    taken_qbo = half(QBO, hubspot_id="301", qbo_id="58")
    with pytest.raises(Failing, match="QuickBooks contact 58 is already linked to HubSpot contact 301"):
        plan_claim("acme", Kind.CONTACT, HUBSPOT, "300", "58", None, taken_qbo, category="duplicate_email")
    taken_hubspot = half(HUBSPOT, hubspot_id="300", qbo_id="59")
    with pytest.raises(Failing, match="HubSpot contact 300 is already linked to QuickBooks contact 59"):
        plan_claim("acme", Kind.CONTACT, HUBSPOT, "300", "58", taken_hubspot, None, category="duplicate_email")


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_two_half_links_claimed_crashed_after_any_step_end_as_one_link(store: Store, crash: int) -> None:
    """The QBO half is retired and gives up its id first (a link holds an id once), then the HubSpot half takes it;
    a crash between: the next claim finds the HubSpot half alone."""
    ours = await store.save_link(half(HUBSPOT, hubspot_id="300"))
    theirs = await store.save_link(half(QBO, qbo_id="58"))
    claimed = plan_claim("acme", Kind.CONTACT, HUBSPOT, "300", "58", ours, theirs, category="duplicate_email")
    retire = {"qbo_id": None, "status": LinkStatus.DELETED, "error_category": "merged",
              "error_message": "superseded by the link of HubSpot contact 300"}  # fmt: skip
    assert claimed == Claim(dataclasses.replace(ours, qbo_id="58"), (SaveOtherLink(theirs, retire),))
    pair_saved = SaveLink({"status": LinkStatus.SYNCED})  # the field sync's last step
    plan = Plan(claimed.link, (*claimed.steps, pair_saved), Action.LINKED)
    await carry_out(context(store), dataclasses.replace(plan, steps=plan.steps[:crash]))

    by_hubspot = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    by_qbo = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    again = plan_claim("acme", Kind.CONTACT, HUBSPOT, "300", "58", by_hubspot, by_qbo, category="duplicate_email")
    assert len(again.steps) == (1 if crash == 0 else 0)
    await carry_out(context(store), Plan(again.link, (*again.steps, pair_saved), Action.LINKED))
    live = [link for link in await store.list_links() if link.status != LinkStatus.DELETED]
    assert [(link.id, link.hubspot_id, link.qbo_id) for link in live] == [(ours.id, "300", "58")]


# --- a merge: the merged-away records' links follow the survivor -----------------------------------------------------


def test_a_merge_plans_a_repoint_per_merged_away_record() -> None:
    hints = {"merged_ids": {"1": True, 2: True, "9": True}}
    plan = plan_repoint(Kind.CONTACT, HUBSPOT, "9", hints)
    steps = (RepointLink(Kind.CONTACT, HUBSPOT, "1", "9"), RepointLink(Kind.CONTACT, HUBSPOT, "2", "9"))
    assert plan == Plan(None, steps, Action.MERGED, Direction.HUBSPOT_TO_QBO)
    assert plan_repoint(Kind.CONTACT, QBO, "9", {}).steps == ()


@pytest.mark.parametrize("crash", [0, 1, 2])
async def test_a_merge_crashed_after_any_repoint_ends_as_one_without_a_crash(store: Store, crash: int) -> None:
    """Loser 1's link moves to the survivor 8; loser 2's is retired (8 has one by then), logged. The merge's event
    again after a crash: the moved link is not found at 1 any more; a retirement is logged again."""
    moved = await store.save_link(half(HUBSPOT, hubspot_id="1", qbo_id="58"))
    retired = await store.save_link(half(HUBSPOT, hubspot_id="2", qbo_id="59"))
    plan = plan_repoint(Kind.CONTACT, HUBSPOT, "8", {"merged_ids": {"1": True, "2": True}})
    await carry_out(context(store), dataclasses.replace(plan, steps=plan.steps[:crash]))
    await carry_out(context(store), plan_repoint(Kind.CONTACT, HUBSPOT, "8", {"merged_ids": {"1": True, "2": True}}))
    now_moved = await store.get_link_by_id(moved.id or 0)
    now_retired = await store.get_link_by_id(retired.id or 0)
    assert now_moved is not None
    assert now_retired is not None
    assert (now_moved.hubspot_id, now_moved.qbo_id, now_moved.status) == ("8", "58", moved.status)
    assert (now_retired.hubspot_id, now_retired.status) == ("2", LinkStatus.DELETED)
    lines = [line.link_id for line in await store.activity("acme", Kind.CONTACT)]
    assert lines == [retired.id] * (2 if crash == 2 else 1)


# --- a QBO create's answer lost where QBO replays nothing (a batch retried with other neighbours) ----------------


class Batched(Books):
    """QBO's customers as batched creates meet them: a retry's item sits in another batch, so no requestid is
    replayed; `lose` answers are lost after the create is made (a batch answer that never came); `lands_late`: a
    create whose answer was lost lands only when the next create call comes (QBO still running it)."""

    def __init__(self, *, lose: int = 0, lands_late: bool = False) -> None:
        super().__init__()
        self.lose = lose
        self.late: dict[str, Any] | None = None
        self.lands_late = lands_late
        self.calls = 0

    async def create(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        self.calls += 1
        if self.late is not None:
            self.customers[self.late["Id"]], self.late = self.late, None
        if any(c["DisplayName"] == body["DisplayName"] for c in self.customers.values()):
            raise DuplicateName("taken", provider="quickbooks", code="6240")
        made = {**body, "Id": str(100 + self.made), "SyncToken": "0", "MetaData": {"CreateTime": _now()}}
        self.made += 1
        if self.lose:
            self.lose -= 1
            if self.lands_late:
                self.late = made
            else:
                self.customers[made["Id"]] = made
            raise TransportError("no answer", provider="quickbooks")
        self.customers[made["Id"]] = made
        return copy.deepcopy(made)


@pytest.mark.parametrize("crash", [0, 1, 2, 3])
async def test_a_create_crashed_after_any_step_with_no_replay_makes_one_record_and_links_it(
    store: Store, crash: int
) -> None:
    books = Batched()
    await create_customer(store, books, contact_values("Jane"), crash)
    again = await create_customer(store, books, contact_values("Jane"))
    [made] = books.ours()
    assert (made["DisplayName"], books.made) == ("Acme (Jane Doe)", 1)
    assert again is not None
    assert (again.qbo_id, again.qbo_written_sync_token, again.status) == (made["Id"], "0", LinkStatus.SYNCED)


async def test_a_create_whose_answer_is_lost_is_adopted_by_its_retry_never_renamed(store: Store) -> None:
    """The answer lost (QBO made the customer, the batch call got none): the retry finds it by its names and its
    intent's values, created after the intent, linked to nothing, and adopts it with no create call."""
    books = Batched(lose=1)
    with pytest.raises(TransportError):
        await create_customer(store, books, contact_values("Jane"))
    link = await create_customer(store, books, contact_values("Jane"))
    [made] = books.ours()
    assert (books.made, books.calls, made["DisplayName"]) == (1, 2, "Acme (Jane Doe)")  # "Acme" refused, then made
    assert link is not None
    assert (link.qbo_id, link.qbo_hash) == (made["Id"], holds_hash(contact_values("Jane")))


async def test_a_name_taken_since_the_look_stops_the_create_and_the_next_apply_adopts_it(store: Store) -> None:
    """The lost create lands only after the retry looked (QBO still ran it): its name refused, the plan stops as a
    conflict (no renamed duplicate), and the next apply finds it."""
    books = Batched(lose=1, lands_late=True)
    with pytest.raises(TransportError):
        await create_customer(store, books, contact_values("Jane"))
    with pytest.raises(StaleObject):
        await create_customer(store, books, contact_values("Jane"))
    link = await create_customer(store, books, contact_values("Jane"))
    [made] = books.ours()
    assert (books.made, link is not None and link.qbo_id) == (1, made["Id"])


async def test_a_name_refused_but_held_by_no_customer_is_passed_after_the_look(store: Store) -> None:
    """A DisplayName held by a vendor (no customer holds it: the look cannot see it, nor could our own create have
    made it): the next name, as always."""
    books = Batched(lose=1)
    with pytest.raises(TransportError):
        await create_customer(store, books, contact_values("Jane"))
    books.customers.clear()  # the lost create's customer deleted in QBO, "Acme" now a vendor's: QBO refuses it
    original = books.create

    async def vendor_holds_acme(entity: str, body: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
        if body["DisplayName"] == "Acme":
            raise DuplicateName("taken by a vendor", provider="quickbooks", code="6240")
        return await original(entity, body, request_id=request_id)

    books.create = vendor_holds_acme  # type: ignore[method-assign]
    link = await create_customer(store, books, contact_values("Jane"))
    assert link is not None
    assert books.customers[link.qbo_id or ""]["DisplayName"] == "Acme (Jane Doe)"


def held(created: str, *, hash_of: str = "h", linked: bool = False) -> dict[str, Any]:
    return {"Id": "9", "SyncToken": "2", "DisplayName": "Acme (Jane Doe)", "MetaData": {"CreateTime": created},
            "hash": hash_of, "linked": linked}  # fmt: skip


@pytest.mark.parametrize(
    ("record", "ours", "doubt"),
    [
        (held("2999-01-01T00:00:00+00:00"), True, False),  # created since, our values, unlinked: ours
        (held("2999-01-01T00:00:00+00:00", hash_of="x"), False, True),  # created since with other values: doubt
        (held("2000-01-01T00:00:00-08:00"), False, False),  # created before the intent: another's
        (held("2999-01-01T00:00:00+00:00", linked=True), False, False),  # linked to another record: another's
        (held("2999-01-01"), False, True),  # a CreateTime with no offset: never proof
    ],
)
async def test_a_holder_is_ours_only_on_proof_in_doubt_when_made_since_and_unlinked(
    store: Store, record: dict[str, Any], ours: bool, doubt: bool
) -> None:
    intent = await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300",
                                        qbo_hash="h"))  # fmt: skip
    if record["linked"]:
        await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=QBO, hubspot_id="301", qbo_id="9"))
    books = SimpleNamespace(query=lambda statement: _answer([record]))
    ctx = SimpleNamespace(name="acme", store=store, qbo=books)
    found = await _pair.lost_create(ctx, SPEC, Kind.CONTACT, intent, name_field="DisplayName", names=NAMES,  # type: ignore[arg-type]
                                    hash_of=lambda c: str(c["hash"]))  # fmt: skip
    [(name, holder)] = found.items()
    assert (name, holder.entity, holder.ours, holder.doubt) == ("acme (jane doe)", record, ours, doubt)
    fresh = dataclasses.replace(intent, status=LinkStatus.FAILING)  # no attempt cut short: nothing to look for
    assert await _pair.lost_create(ctx, SPEC, Kind.CONTACT, fresh, name_field="DisplayName", names=NAMES,  # type: ignore[arg-type]
                                   hash_of=lambda c: "h") == {}  # fmt: skip


async def _answer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows


def test_a_holder_in_doubt_or_two_of_ours_need_review_and_names_held_by_others_are_not_sent() -> None:
    intent = Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300", qbo_hash="h", id=4)
    record = {"Id": "9", "SyncToken": "2"}
    in_doubt = {"acme": _pair.Held(record, ours=False, doubt=True)}
    with pytest.raises(_pair.Ambiguous):
        customer_plan_held(intent, in_doubt)
    two = {"acme": _pair.Held(record, ours=True), "acme (jane doe)": _pair.Held({"Id": "10"}, ours=True)}
    with pytest.raises(_pair.Ambiguous):
        customer_plan_held(intent, two)
    adopted = customer_plan_held(intent, {"acme": _pair.Held(record, ours=True)})
    assert adopted.steps == (SaveLink({"qbo_id": "9", "qbo_written_sync_token": "2", **REVIEWED}),)
    others = customer_plan_held(intent, {"acme": _pair.Held(record, ours=False)})
    create = others.steps[0]
    assert isinstance(create, CreateQboOneOf)
    assert [a.fields["DisplayName"] for a in create.alternatives] == list(NAMES[1:])
    assert create.looked_up


def customer_plan_held(link: Link, found: Mapping[str, _pair.Held]) -> Plan:
    maps = _fields.active_maps(SPEC.fields, TWO_WAY)
    body = _fields.to_qbo(maps, contact_values("Jane"))
    return plan_qbo_create(SPEC, link, "300", body, name_field="DisplayName", names=NAMES,
                           holds=_fields.from_qbo(maps, body), all_refused=TAKEN, held=found)  # fmt: skip


async def test_an_unlinked_qbo_record_holding_a_create_in_doubts_values_waits_for_that_creates_retry(
    store: Store,
) -> None:
    """Its webhook come before the retry that adopts it: no HubSpot record is made for it (a conflict: run again)."""
    intent = await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=HUBSPOT, hubspot_id="300",
                                        qbo_hash="h"))  # fmt: skip
    ctx: Any = SimpleNamespace(name="acme", store=store)
    since = {"Id": "9", "MetaData": {"CreateTime": "2999-01-01T00:00:00+00:00"}}
    with pytest.raises(StaleLink):
        await _pair.wait_for_a_create_in_doubt(ctx, Kind.CONTACT, None, since, "h")
    await _pair.wait_for_a_create_in_doubt(ctx, Kind.CONTACT, None, since, "other values")  # not that create's
    before = {"Id": "8", "MetaData": {"CreateTime": "2000-01-01T00:00:00+00:00"}}
    await _pair.wait_for_a_create_in_doubt(ctx, Kind.CONTACT, None, before, "h")  # made before the intent: another's
    await store.set_status(intent.id or 0, LinkStatus.FAILING, "x", "y")  # that create's failure recorded
    await _pair.wait_for_a_create_in_doubt(ctx, Kind.CONTACT, None, since, "h")
    adopted = await store.save_link(dataclasses.replace(intent, qbo_id="9", revision=2))  # its retry adopted it
    with pytest.raises(StaleLink):  # after the rule read no link: linked meanwhile
        await _pair.wait_for_a_create_in_doubt(ctx, Kind.CONTACT, None, since, "h")
    await _pair.wait_for_a_create_in_doubt(ctx, Kind.CONTACT, adopted, since, "h")  # as the rule read it


async def test_a_lost_creates_record_held_alone_by_an_excluded_link_is_adopted_that_link_retired(store: Store) -> None:
    """Its webhook's apply excluded it before the retry (a QBO -> HubSpot filter): a link holds its id alone. The
    adoption retires that link first, as a claim does, instead of failing on the id it holds."""
    books = Batched(lose=1)
    with pytest.raises(TransportError):
        await create_customer(store, books, contact_values("Jane"))
    [made] = books.ours()
    excluded = await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=QBO, qbo_id=made["Id"],
                                          status=LinkStatus.EXCLUDED))  # fmt: skip
    link = await create_customer(store, books, contact_values("Jane"))
    assert link is not None
    assert (link.hubspot_id, link.qbo_id, books.made) == ("300", made["Id"], 1)
    retired = await store.get_link_by_id(excluded.id or 0)
    assert retired is not None
    assert (retired.qbo_id, retired.status) == (None, LinkStatus.DELETED)


def test_a_qbo_change_to_no_synced_field_of_a_settled_link_leaves_hubspot_unread() -> None:
    settings = ContactSettings()
    customer = {"Id": "58", "SyncToken": "4", "GivenName": "Ada", "Balance": "120.00",
                "PrimaryEmailAddr": {"Address": "ada@example.com"}}  # fmt: skip
    synced = _fields.from_qbo(_fields.active_maps(SPEC.fields, settings), customer)
    agreed = _fields.content_hash(synced)
    link = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="300", qbo_id="58",
                synced=synced, hubspot_hash=agreed, qbo_hash=agreed)  # fmt: skip
    assert settled_from_qbo(SPEC, settings, link, {**customer, "Balance": "80.00"})
    assert not settled_from_qbo(SPEC, settings, link, {**customer, "GivenName": "Ada B."})  # a synced field
    interrupted = dataclasses.replace(link, hubspot_hash="the intent of a sync cut short")
    assert not settled_from_qbo(SPEC, settings, interrupted, customer)
    assert not settled_from_qbo(SPEC, settings, dataclasses.replace(link, status=LinkStatus.FAILING), customer)
    one_way = ContactSettings(direction="qbo_to_hubspot")  # a QBO change rewrites HubSpot's differing fields
    assert not settled_from_qbo(SPEC, one_way, link, customer)


# --- a QBO change written to HubSpot unread -------------------------------------------------------------------------


def settled_link(values: _fields.Values, **changes: Any) -> Link:
    agreed = _fields.content_hash(values)
    return Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="300", qbo_id="58",
                synced=values, hubspot_hash=agreed, qbo_hash=agreed, hubspot_version="2026-12-01T00:00:00+00:00",
                **changes)  # fmt: skip


async def test_unread_hubspot_is_the_settled_links_agreement_unless_a_hubspot_change_waits(store: Store) -> None:
    ctx = context(store)
    link = settled_link(BASE)
    assumed = await _pair.unread_hubspot(ctx, FIELD_SPEC, ContactSettings(), link)
    assert assumed is not None
    assert (assumed.id, assumed.properties, assumed.updated_at) == ("300", {"lastname": "Acme", "city": "Oslo",
                                                                            "phone": "1"}, None)  # fmt: skip
    interrupted = dataclasses.replace(link, hubspot_hash="the intent of a sync cut short")
    assert await _pair.unread_hubspot(ctx, FIELD_SPEC, ContactSettings(), interrupted) is None
    one_way = ContactSettings(direction="qbo_to_hubspot")
    assert await _pair.unread_hubspot(ctx, FIELD_SPEC, one_way, link) is None
    await store.touch_pending(PendingKey("acme", Kind.CONTACT, HUBSPOT, "300"), 1.0)  # its webhook came
    assert await _pair.unread_hubspot(ctx, FIELD_SPEC, ContactSettings(), link) is None


def test_a_plan_writing_hubspot_unread_writes_only_the_qbo_change_and_keeps_the_links_hubspot_version() -> None:
    link = settled_link(BASE)
    assumed = HubSpotObject("300", dict(_fields.to_hubspot(FIELDS, BASE)), None, None)
    entity = {"Id": "58", "SyncToken": "3", **_fields.to_qbo(FIELDS, {**BASE, "phone": "2"})}
    plan = plan_fields(FIELD_SPEC, ContactSettings(), link, assumed, entity, action=Action.UPDATED, request_id="r",
                       now=1.0, hubspot_read=False)  # fmt: skip
    [update] = [step for step in plan.steps if isinstance(step, UpdateHubSpot)]
    assert dict(update.properties) == {"phone": "2"}
    last = plan.steps[-1]
    assert isinstance(last, SaveLink)
    assert last.changes["hubspot_version"] == link.hubspot_version  # the poller compares values (holds_agreement)
    read = plan_fields(FIELD_SPEC, ContactSettings(), link, assumed, entity, action=Action.UPDATED, request_id="r",
                       now=1.0)  # fmt: skip
    assert isinstance(read.steps[-1], SaveLink)
    assert isinstance(read.steps[-1].changes["hubspot_version"], Answered)


def test_a_hubspot_record_holding_its_settled_links_agreement_has_nothing_to_sync() -> None:
    link = settled_link(BASE)
    holding = HubSpotObject("300", dict(_fields.to_hubspot(FIELDS, BASE)), None, None)
    assert _pair.holds_agreement(FIELD_SPEC, ContactSettings(), link, holding)
    edited = HubSpotObject("300", {**holding.properties, "city": "Bergen"}, None, None)  # an edit never seen
    assert not _pair.holds_agreement(FIELD_SPEC, ContactSettings(), link, edited)
    unread = HubSpotObject("300", {"lastmodifieddate": "1"}, None, None)  # searched without its mapped properties
    assert not _pair.holds_agreement(FIELD_SPEC, ContactSettings(), dataclasses.replace(link, synced={}), unread)
    assert not _pair.holds_agreement(FIELD_SPEC, ContactSettings(), None, holding)
    failing = dataclasses.replace(link, status=LinkStatus.FAILING)
    assert not _pair.holds_agreement(FIELD_SPEC, ContactSettings(), failing, holding)


class Updates:
    def __init__(self) -> None:
        self.updated: list[tuple[str, str, dict[str, str]]] = []

    async def update(self, object_type: str, object_id: str, properties: dict[str, str]) -> None:
        self.updated.append((object_type, object_id, properties))


async def test_an_unread_write_hubspot_took_through_to_a_merge_survivor_gets_the_survivors_values_back(
    store: Store,
) -> None:
    ctx: Any = SimpleNamespace(name="acme", store=store, hubspot=Updates())
    survivor = await store.save_link(dataclasses.replace(settled_link(BASE), hubspot_id="301", qbo_id="59"))
    merged = MergedAway(UpdateHubSpot("contacts", "300", {"phone": "2"}), "301")
    await _pair.restore_survivor(ctx, FIELD_SPEC, ContactSettings(), Kind.CONTACT, merged)
    assert ctx.hubspot.updated == [("contacts", "301", {"phone": "1"})]
    await store.save_link(dataclasses.replace(survivor, hubspot_hash="an intent"))  # not settled: nothing says
    await _pair.restore_survivor(ctx, FIELD_SPEC, ContactSettings(), Kind.CONTACT, merged)
    assert len(ctx.hubspot.updated) == 1
    [line] = await store.activity("acme", Kind.CONTACT, link_id=survivor.id)
    assert line.detail == "phone written through from merged-away 300"

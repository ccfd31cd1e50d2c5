"""The shared steps of the field-sync rules as plans: `sync_fields`' plan (its steps; every crash window of it, a
crash after each step then a re-run itself crashing after each step, and a user's edit after the crash, converging
with no write made twice; for any values, edits and settings, a run crashed twice ends as one without a crash), the
QBO record made inactive and the HubSpot record archived (each once, whatever step a crash cut), a create's requestid
across a crash."""

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
from services.worker._executor import carry_out
from services.worker._fields import FieldMap
from services.worker._plan import (
    Answer,
    Answered,
    ArchiveHubSpot,
    LogActivity,
    Plan,
    SaveLink,
    UpdateHubSpot,
    UpdateQbo,
)
from services.worker.rules import Excluded
from services.worker.rules._pair import (
    PairSpec,
    archive_in_hubspot,
    deactivate_in_qbo,
    intend_qbo_create,
    plan_archive,
    plan_deactivate,
    plan_fields,
)
from services.worker.rules.contacts import SPEC
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.domain import Action, Kind, Provider
from shared.errors import NotFound, StaleObject
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


# --- a QBO create's intent: the same requestid for a retry, a new one once an outcome was recorded -----------------


async def test_a_create_retried_after_a_crash_sends_the_same_requestid_and_a_recorded_failure_a_new_one(
    store: Store,
) -> None:
    """A crash after the create, before its link is recorded: the retry finds the intent kept as it is, so it sends
    the same requestid and QBO replays the create instead of making a second record. Once an outcome is recorded on
    the link (a failure, its status moved), the next attempt is a new write."""
    ctx: Any = SimpleNamespace(name="acme", store=store)
    holds = {"name": "Acme", "city": None, "phone": None}

    def create_request(link: Link) -> str:
        return SyncContext.request_id(CONNECTION_NAME, "Customer", "create", "300", "Acme", link=link)

    intent = await intend_qbo_create(ctx, Kind.CONTACT, None, "300", holds)
    assert (intent.status, intent.qbo_hash) == (LinkStatus.SYNCED, _fields.content_hash(holds))
    kept = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    retried = await intend_qbo_create(ctx, Kind.CONTACT, kept, "300", holds)
    assert retried == intent
    assert create_request(retried) == create_request(intent)

    await store.set_status(intent.id or 0, LinkStatus.FAILING, "duplicate_display_name", "taken")  # the engine
    failed = await store.get_link("acme", Kind.CONTACT, hubspot_id="300")
    afresh = await intend_qbo_create(ctx, Kind.CONTACT, failed, "300", holds)
    assert afresh.revision > intent.revision
    assert create_request(afresh) != create_request(intent)

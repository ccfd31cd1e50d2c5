"""Crash windows of the contacts rule, deterministically: an apply stops at a chosen point as under SIGKILL (the APIs
and the store keep what was done before), the user edits the record on its own side, the applies that follow run
(the other side's echo key and the record's own, in both orders); both sides must then show the user's final values,
once each, and the link be SYNCED. For a record created on either side (as `checker.Workload` does), edited there:
- new from HubSpot: after the QBO Customer create (its answer returned, or lost);
- new from QBO: after the intent link save, before the HubSpot create; after the create (returned or lost);
- linked, edited in HubSpot: after the QBO update in `sync_fields` (returned or lost);
- linked, edited in QBO: after the intermediate link save, before the HubSpot update; after it (returned or lost);
the next edit made after the crash, or after the crashed apply read the record. Then disturbed recoveries:
interrupted again before their HubSpot write, or finding the crashed create's contact only through HubSpot's 409.
Under `conflict_winner = "quickbooks"`, a crashed QBO write must not win over the user's newer HubSpot edit, and a
crashed QBO create (customer or item) found only through its replayed `requestid` must not be made twice.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import pytest

from services.worker import _fields
from services.worker.rules.contacts import SPEC
from shared.clients.hubspot import HubSpotClient
from shared.clients.qbo import QboClient
from shared.domain import Kind, PendingKey, Provider
from shared.errors import NotFound, ServerError, TransportError
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration

HUBSPOT, QBO = Provider.HUBSPOT, Provider.QUICKBOOKS
EMAIL = "crash@example.com"
EDITED = [m for m in SPEC.fields if m.name in ("first_name", "city")]
FIRST_EDIT: _fields.Values = {"first_name": "A1"}  # before the crashed apply: what it syncs
SECOND_EDIT: _fields.Values = {"first_name": "A2", "city": "C2"}  # the same field again, and another one
FINAL = {**FIRST_EDIT, **SECOND_EDIT}


class Crash(BaseException):
    """The process dies here: no `except Exception` on the way up runs, as none would under SIGKILL."""


@pytest.fixture
def in_process_worker() -> bool:
    return False  # each test runs its applies itself


@dataclasses.dataclass(frozen=True)
class Window:
    origin: Provider  # where the record was created and is edited
    linked: bool  # False: the crashed apply creates the counterpart; True: it syncs an edit over an existing link
    client: type[Any]  # the call the crash is next to
    method: str
    after: bool  # crash after carrying out the call (else before it)

    def __str__(self) -> str:
        state, when = "linked" if self.linked else "new", "after" if self.after else "before"
        return f"{self.origin}-{state}-{when}-{self.client.__name__}.{self.method}"


WINDOWS = [
    Window(HUBSPOT, False, QboClient, "create", after=True),
    Window(QBO, False, HubSpotClient, "create", after=False),  # the intent link is saved, nothing created
    Window(QBO, False, HubSpotClient, "create", after=True),
    Window(HUBSPOT, True, QboClient, "update", after=True),
    Window(QBO, True, HubSpotClient, "update", after=False),  # after the intermediate link save
    Window(QBO, True, HubSpotClient, "update", after=True),
]
# A carried-out call crashes right after returning, or its answer is lost (TransportError: written, nobody knows).
CASES = [
    pytest.param(window, lost, id=f"{window}-{'lost' if lost else 'returned' if window.after else 'crash'}")
    for window in WINDOWS
    for lost in ((False, True) if window.after else (False,))
]


def edit(stack: Stack, record: PendingKey, values: _fields.Values) -> None:
    """The user edits `record` on its own side."""
    if record.side is HUBSPOT:
        stack.hubspot_edit("contacts", "update", id=record.object_id, properties=_fields.to_hubspot(EDITED, values))
    else:
        stack.qbo_edit("Customer", "update", {"Id": record.object_id, **_fields.to_qbo(EDITED, values)})


def counterparts(stack: Stack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    contacts = [c for c in stack.hubspot_records("contacts") if c.get("email") == EMAIL]
    customers = [c for c in stack.qbo_entities("Customer") if (c.get("PrimaryEmailAddr") or {}).get("Address") == EMAIL]
    return contacts, customers


def key(side: Provider, object_id: str) -> PendingKey:
    return PendingKey(CONNECTION, Kind.CONTACT, side, object_id)


def patch_first_call(
    monkeypatch: pytest.MonkeyPatch, client: type[Any], method: str, *, carry_out: bool,
    then: Callable[[], None] | BaseException,
) -> None:  # fmt: skip
    """The first call of `client.method` is carried out (or not), then `then` runs, or is raised."""
    real = getattr(client, method)
    pending = [then]

    async def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = await real(self, *args, **kwargs) if carry_out or not pending else None
        if pending:
            step = pending.pop()
            if isinstance(step, BaseException):
                raise step
            step()
        return answer

    monkeypatch.setattr(client, method, patched)


async def crashed_apply(
    stack: Stack, own: PendingKey, window: Window, error: BaseException, during: Callable[[], None] | None = None
) -> None:
    """`own`'s apply, stopped by `error` at the window; `during` runs once the apply has read its record."""
    with pytest.MonkeyPatch.context() as patched:
        if during is not None:
            client, read = (HubSpotClient, "get") if own.side is HUBSPOT else (QboClient, "read")
            patch_first_call(patched, client, read, carry_out=True, then=during)
        patch_first_call(patched, window.client, window.method, carry_out=window.after, then=error)
        with pytest.raises(type(error)):
            await stack.worker.engine.apply(own, {})


def create(stack: Stack, origin: Provider) -> PendingKey:
    """A record as the workload creates one; its key."""
    if origin is HUBSPOT:
        return key(HUBSPOT, str(stack.hubspot_edit("contacts", "create", properties={"email": EMAIL})["id"]))
    made = stack.qbo_edit("Customer", "create", {"DisplayName": "Crash", "PrimaryEmailAddr": {"Address": EMAIL}})
    return key(QBO, str(made["Id"]))


async def run_window(stack: Stack, window: Window, lost: bool, edited_after_crash: bool, echo_first: bool) -> None:
    engine = stack.worker.engine
    own = create(stack, window.origin)
    if window.linked:
        await engine.apply(own, {})
    edit(stack, own, FIRST_EDIT)
    second_edit = functools.partial(edit, stack, own, SECOND_EDIT)
    error = TransportError("answer lost", provider="test") if lost else Crash(str(window))
    await crashed_apply(stack, own, window, error, during=None if edited_after_crash else second_edit)
    if edited_after_crash:
        second_edit()

    contacts, customers = counterparts(stack)
    others = [key(QBO, str(c["Id"])) for c in customers] + [key(HUBSPOT, c["id"]) for c in contacts]
    echo = [other for other in others if other.side is not own.side]
    for recovery in [*echo, own] if echo_first else [own, *echo]:
        await engine.apply(recovery, {})
    await assert_synced(stack, FINAL)


async def assert_synced(stack: Stack, final: _fields.Values) -> None:
    [contact], [customer] = counterparts(stack)
    assert (_fields.from_hubspot(EDITED, contact), _fields.from_qbo(EDITED, customer)) == (final, final)
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, qbo_id=str(customer["Id"]))
    assert link is not None
    assert (link.hubspot_id, link.status) == (contact["id"], LinkStatus.SYNCED)


@pytest.mark.parametrize("echo_first", [True, False], ids=["echo-first", "origin-first"])
@pytest.mark.parametrize("edited_after_crash", [True, False], ids=["edit-after-crash", "edit-after-read"])
@pytest.mark.parametrize(("window", "lost"), CASES)
async def test_a_crash_in_the_window_loses_and_duplicates_nothing(
    stack: Stack, window: Window, lost: bool, edited_after_crash: bool, echo_first: bool
) -> None:
    await run_window(stack, window, lost, edited_after_crash, echo_first)


@pytest.mark.parametrize(
    "second", [Crash("again"), ServerError("503", provider="hubspot")], ids=["crash", "hubspot-5xx"]
)
async def test_a_recovery_interrupted_before_its_hubspot_write_still_knows_the_first_write_was_ours(
    stack: Stack, second: BaseException
) -> None:
    # The recovery recognises the crashed apply's HubSpot write by its hash and records the hash of its own write
    # over it; stopped before that write, the next apply must not take the first write for a HubSpot-side edit.
    own = create(stack, QBO)
    await stack.worker.engine.apply(own, {})
    edit(stack, own, FIRST_EDIT)
    await crashed_apply(stack, own, Window(QBO, True, HubSpotClient, "update", after=True), Crash("first"))
    edit(stack, own, {"city": "C2"})
    await crashed_apply(stack, own, Window(QBO, True, HubSpotClient, "update", after=False), second)
    edit(stack, own, {"first_name": "A3"})
    await stack.worker.engine.apply(own, {})
    await assert_synced(stack, {"first_name": "A3", "city": "C2"})


async def test_a_contact_of_a_crashed_create_found_only_by_the_409_is_still_taken_as_ours(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = create(stack, QBO)
    edit(stack, own, FIRST_EDIT)
    await crashed_apply(stack, own, Window(QBO, False, HubSpotClient, "create", after=True), Crash("create"))
    edit(stack, own, SECOND_EDIT)
    real_get = HubSpotClient.get  # the lookup by email misses the contact (not indexed yet), the create's 409 names it

    async def lookup_missing_it(self: HubSpotClient, object_type: str, object_id: str, **kwargs: Any) -> Any:
        if kwargs.get("id_property") == "email":
            raise NotFound("not indexed yet", provider="hubspot")
        return await real_get(self, object_type, object_id, **kwargs)

    monkeypatch.setattr(HubSpotClient, "get", lookup_missing_it)
    await stack.worker.engine.apply(own, {})
    await assert_synced(stack, FINAL)


@pytest.mark.parametrize("sync_overrides", [{"contacts": {"hubspot_to_qbo": {}, "conflict_winner": "quickbooks"}}],
                         indirect=True)  # fmt: skip
@pytest.mark.parametrize("window", [w for w in WINDOWS if w.origin is HUBSPOT], ids=str)
async def test_under_conflict_winner_quickbooks_a_crashed_qbo_write_does_not_win(stack: Stack, window: Window) -> None:
    await run_window(stack, window, lost=False, edited_after_crash=True, echo_first=False)


def missing_from(query: str) -> Callable[[QboClient, str], Any]:
    """`QboClient.query` answering no rows to statements containing `query` (e.g. the record is not indexed yet)."""
    real_query = QboClient.query

    async def missing_it(self: QboClient, statement: str) -> list[dict[str, Any]]:
        return [] if query in statement else await real_query(self, statement)

    return missing_it


WINNER_QUICKBOOKS = {
    "contacts": {"hubspot_to_qbo": {}, "conflict_winner": "quickbooks"},
    "products": {"direction": "two_way", "require_sku": False, "income_account": "Services",
                 "conflict_winner": "quickbooks"},
}  # fmt: skip


@pytest.mark.parametrize("sync_overrides", [WINNER_QUICKBOOKS], indirect=True)
async def test_a_crashed_customer_create_missed_by_the_email_lookup_is_replayed_with_its_intent(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retry finds the customer only through the requestid: it must be the crashed attempt's (QBO replays the
    # create instead of making a second customer) although the contact changed, and the intent kept with it.
    own = create(stack, HUBSPOT)
    edit(stack, own, {**FIRST_EDIT, "city": "C1"})
    await crashed_apply(stack, own, Window(HUBSPOT, False, QboClient, "create", after=True), Crash("create"))
    edit(stack, own, {"city": "C2"})  # not the DisplayName (the name), which is part of the requestid
    monkeypatch.setattr(QboClient, "query", missing_from("FROM Customer WHERE PrimaryEmailAddr"))
    await stack.worker.engine.apply(own, {})
    await assert_synced(stack, {**FIRST_EDIT, "city": "C2"})


@pytest.mark.parametrize("sync_overrides", [WINNER_QUICKBOOKS], indirect=True)
async def test_a_crashed_item_create_is_replayed_once_and_its_values_taken_as_ours(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = stack.hubspot_edit("products", "create", properties={"name": "Crash widget", "price": "10"})
    own = PendingKey(CONNECTION, Kind.PRODUCT, HUBSPOT, str(product["id"]))
    await crashed_apply(stack, own, Window(HUBSPOT, False, QboClient, "create", after=True), Crash("create"))
    stack.hubspot_edit("products", "update", id=own.object_id, properties={"price": "12"})
    monkeypatch.setattr(QboClient, "query", missing_from("FROM Item WHERE"))  # no SKU to find it by anyway
    await stack.worker.engine.apply(own, {})
    [item] = [item for item in stack.qbo_entities("Item") if str(item["Name"]).startswith("Crash widget")]
    [synced] = [p for p in stack.hubspot_records("products") if p.get("name") == "Crash widget"]
    assert (item["UnitPrice"], synced["price"]) == (12, "12")
    link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, hubspot_id=own.object_id)
    assert link is not None
    assert (link.qbo_id, link.status) == (str(item["Id"]), LinkStatus.SYNCED)

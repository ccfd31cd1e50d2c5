"""The engine's waking of records that wait for another: only the failing records whose stored wait names the record
just created or linked; a wait stored with a failure, cleared by one naming nothing. The version an apply saw,
recorded whatever the outcome; an outcome repeated on a version already seen is no news."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.worker._engine import RULES, Engine
from services.worker.rules import Excluded, Failing, Hints, Outcome, saw
from shared.clients import Coalescer, QboClient
from shared.domain import Action, Awaited, Kind, PendingKey, Provider
from shared.store import Link, LinkStatus, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


def failing(kind: Kind, origin: Provider, own_id: str, category: str) -> Link:
    ids: dict[str, Any] = {"hubspot_id" if origin == Provider.HUBSPOT else "qbo_id": own_id}
    return Link(connection="acme", kind=kind, origin=origin, status=LinkStatus.FAILING, error_category=category,
                **ids)  # fmt: skip


async def test_a_synced_contact_wakes_only_the_invoices_waiting_for_it(store: Store) -> None:
    for own_id, side, awaited in (
        ("7", Provider.QUICKBOOKS, Awaited(Kind.CONTACT, Provider.QUICKBOOKS, "58")),
        ("8", Provider.QUICKBOOKS, Awaited(Kind.CONTACT, Provider.QUICKBOOKS, "580")),
        ("900", Provider.HUBSPOT, Awaited(Kind.CONTACT, Provider.HUBSPOT, "300")),
        ("901", Provider.HUBSPOT, Awaited(Kind.INVOICE, Provider.HUBSPOT, "300")),
    ):
        link = await store.save_link(failing(Kind.INVOICE, side, own_id, "customer_not_synced"))
        await store.set_waiting(link.id or 0, side, awaited)
    engine = Engine(store, None, SyncSettings())  # type: ignore[arg-type]  # waking reads only the store
    contact = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300", qbo_id="58")
    key = PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "58")
    wake = await engine._waiting_for(key, Outcome(Action.CREATED, link=contact))
    assert set(wake) == {
        PendingKey("acme", Kind.INVOICE, Provider.QUICKBOOKS, "7"),
        PendingKey("acme", Kind.INVOICE, Provider.HUBSPOT, "900"),
    }
    assert await engine._waiting_for(key, Outcome(Action.UPDATED, link=contact)) == ()


# --- the version an apply saw, and outcomes that are no news ---------------------------------------------------------

CONNECTION = ConnectionSettings(
    name="acme", hubspot_portal_id="62515", qbo_realm_id="9130", setup_date=dt.date(2026, 11, 1),
    contacts={"hubspot_to_qbo": {}},
)  # fmt: skip


class ScriptedRule:
    """A contact rule that reads the customer at `version` and then raises or returns what it is told."""

    kind = Kind.CONTACT

    def __init__(self) -> None:
        self.version = "0"
        self.result: Outcome | Exception = Outcome(Action.SKIPPED)

    async def from_qbo(self, ctx: Any, object_id: str, hints: Hints) -> Outcome:
        saw(self.version)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    from_hubspot = from_qbo


class OneContext:
    def __init__(self, store: Store) -> None:
        qbo = SimpleNamespace(changed=QboClient.changed, counterpart=QboClient.counterpart)
        self.ctx = SimpleNamespace(name="acme", store=store, calls=Coalescer(), qbo=qbo)

    async def get(self, connection: ConnectionSettings) -> Any:
        return self.ctx


@pytest.fixture
def rule(monkeypatch: pytest.MonkeyPatch) -> ScriptedRule:
    scripted = ScriptedRule()
    monkeypatch.setitem(RULES, Kind.CONTACT, scripted)
    return scripted


KEY = PendingKey("acme", Kind.CONTACT, Provider.QUICKBOOKS, "58")
INVOICE = PendingKey("acme", Kind.INVOICE, Provider.QUICKBOOKS, "7")
CUSTOMER_58 = Awaited(Kind.CONTACT, Provider.QUICKBOOKS, "58")


async def test_an_excluded_record_keeps_the_version_seen_and_the_same_exclusion_again_is_no_news(
    store: Store, rule: ScriptedRule
) -> None:
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    rule.result = Excluded("inactive in QuickBooks", category="inactive")
    await engine.apply(KEY, {})
    first = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert first is not None
    assert (first.status, first.qbo_version) == (LinkStatus.EXCLUDED, "0")

    await engine.apply(KEY, {})  # the same data again (a duplicated webhook): no write, no activity line
    again = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert again == first
    assert len(await store.activity("acme", Kind.CONTACT, qbo_id="58")) == 1

    rule.version = "1"  # edited, still excluded for the same reason: the version moves, the status stays
    await engine.apply(KEY, {})
    edited = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert edited is not None
    assert (edited.status, edited.qbo_version, edited.revision) == (LinkStatus.EXCLUDED, "1", first.revision)
    assert len(await store.activity("acme", Kind.CONTACT, qbo_id="58")) == 2


async def test_a_failing_record_records_the_version_seen(store: Store, rule: ScriptedRule) -> None:
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    rule.version = "4"
    rule.result = Failing("QuickBooks already has a customer named 'Acme'", category="duplicate_display_name")
    await engine.apply(KEY, {})
    link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert link is not None
    assert (link.status, link.qbo_version) == (LinkStatus.FAILING, "4")


async def test_a_skipped_outcome_records_the_version_seen_once_and_its_repeat_adds_no_activity(
    store: Store, rule: ScriptedRule
) -> None:
    saved = await store.save_link(
        Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300", qbo_id="58",
             qbo_version="2", status=LinkStatus.DELETED)
    )  # fmt: skip
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    rule.version = "3"
    rule.result = Outcome(Action.UNCHANGED, link=saved, detail="archived before")
    await engine.apply(KEY, {})
    seen = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert seen is not None
    assert (seen.qbo_version, seen.status) == ("3", LinkStatus.DELETED)
    await engine.apply(KEY, {})
    assert [line.action for line in await store.activity("acme", Kind.CONTACT, qbo_id="58")] == ["unchanged"]


async def test_a_version_the_rule_recorded_itself_is_left_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that wrote the source side records the version its write produced: not the one it read first."""
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]

    class Writing(ScriptedRule):
        async def from_qbo(self, ctx: Any, object_id: str, hints: Hints) -> Outcome:
            saw("5")
            written = await store.save_link(
                Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300", qbo_id="58",
                     qbo_version="6")
            )  # fmt: skip
            return Outcome(Action.UPDATED, link=written)

    monkeypatch.setitem(RULES, Kind.CONTACT, Writing())
    await engine.apply(KEY, {})
    link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert link is not None
    assert link.qbo_version == "6"


async def test_a_failure_repeated_after_a_creates_intent_is_put_back_silently(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create's intent marks the link synced before the write; the same failure again restores it, no news."""
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    failure = Failing("QuickBooks already has a customer named 'Acme'", category="duplicate_display_name")

    class Intending(ScriptedRule):
        async def from_qbo(self, ctx: Any, object_id: str, hints: Hints) -> Outcome:
            saw("1")
            link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
            if link is not None:
                await store.set_status(link.id or 0, LinkStatus.SYNCED)  # the intent
            raise failure

    monkeypatch.setitem(RULES, Kind.CONTACT, Intending())
    await engine.apply(KEY, {})
    await engine.apply(KEY, {})
    link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert link is not None
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "duplicate_display_name")
    assert [line.action for line in await store.activity("acme", Kind.CONTACT, qbo_id="58")] == ["failing"]


async def test_an_object_switched_off_sets_its_work_aside_without_running_the_rule(
    store: Store, rule: ScriptedRule
) -> None:
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    rule.result = Excluded("would have run", category="filtered")
    await store.touch_pending(KEY, 1.0)
    await store.set_object_switch("acme", Kind.CONTACT, False)

    applied = await engine.apply(KEY, {})
    assert (applied.outcome.action, applied.outcome.detail) == ("paused", "contact switched off on the status page")
    assert await store.get_link("acme", Kind.CONTACT, qbo_id="58") is None  # the rule did not run
    pending = await store.get_pending(KEY)
    assert pending is not None
    assert pending.owner == "deferred"  # kept, set aside
    assert await store.activity("acme", Kind.CONTACT, qbo_id="58") == []

    await store.set_object_switch("acme", Kind.CONTACT, True)
    await store.release_deferred("acme")
    await engine.apply(KEY, {})
    link = await store.get_link("acme", Kind.CONTACT, qbo_id="58")
    assert link is not None
    assert link.status == LinkStatus.EXCLUDED  # switched on: the rule runs


# --- what a failing record waits for ---------------------------------------------------------------------------------


@pytest.fixture
def invoice_rule(monkeypatch: pytest.MonkeyPatch) -> ScriptedRule:
    scripted = ScriptedRule()
    monkeypatch.setitem(RULES, Kind.INVOICE, scripted)
    return scripted


async def test_a_failure_naming_the_record_it_waits_for_is_woken_when_that_record_is_created(
    store: Store, rule: ScriptedRule, invoice_rule: ScriptedRule
) -> None:
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    invoice_rule.result = Failing("no contact yet", category="customer_not_synced", awaits=CUSTOMER_58)
    assert (await engine.apply(INVOICE, {})).wake == ()
    assert await store.waiting_for("acme", CUSTOMER_58) == [INVOICE]

    contact = await store.save_link(
        Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300", qbo_id="58")
    )
    rule.result = Outcome(Action.CREATED, link=contact)
    assert (await engine.apply(KEY, {})).wake == (INVOICE,)


async def test_a_failure_naming_nothing_clears_the_wait_and_a_synced_record_waits_no_more(
    store: Store, rule: ScriptedRule, invoice_rule: ScriptedRule
) -> None:
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    invoice_rule.result = Failing("no contact yet", category="customer_not_synced", awaits=CUSTOMER_58)
    await engine.apply(INVOICE, {})
    invoice_rule.result = Failing("QuickBooks has no tax code 'X'", category="tax_code")
    await engine.apply(INVOICE, {})
    assert await store.waiting_for("acme", CUSTOMER_58) == []

    invoice_rule.result = Failing("no contact yet", category="customer_not_synced", awaits=CUSTOMER_58)
    await engine.apply(INVOICE, {})
    link = await store.get_link("acme", Kind.INVOICE, qbo_id="7")
    assert link is not None
    await store.save_link(dataclasses.replace(link, hubspot_id="70", status=LinkStatus.SYNCED))  # synced meanwhile
    assert await store.waiting_for("acme", CUSTOMER_58) == []


async def test_a_record_failing_while_the_one_it_waits_for_was_linked_wakes_itself(
    store: Store, invoice_rule: ScriptedRule
) -> None:
    """The rule read no link; the awaited record's link was saved before the wait was: nobody would wake it."""
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    invoice_rule.result = Failing("no contact yet", category="customer_not_synced", awaits=CUSTOMER_58)
    await store.save_link(
        Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300", qbo_id="58")
    )
    assert (await engine.apply(INVOICE, {})).wake == (INVOICE,)


async def test_a_change_from_each_side_of_one_pair_is_applied_one_after_the_other_in_a_process(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save_link(Link(connection="acme", kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, hubspot_id="300",
                               qbo_id="58"))  # fmt: skip
    order: list[str] = []

    class SlowRule(ScriptedRule):
        async def from_qbo(self, ctx: Any, object_id: str, hints: Hints) -> Outcome:
            order.append(f"{object_id} in")
            await asyncio.sleep(0.02)  # the API calls of a sync
            order.append(f"{object_id} out")
            return Outcome(Action.UNCHANGED)

        from_hubspot = from_qbo

    monkeypatch.setitem(RULES, Kind.CONTACT, SlowRule())
    engine = Engine(store, OneContext(store), SyncSettings(connection=[CONNECTION]))  # type: ignore[arg-type]
    from_hubspot = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "300")
    await asyncio.gather(engine.apply(from_hubspot, {}), engine.apply(KEY, {}))
    assert order in (["300 in", "300 out", "58 in", "58 out"], ["58 in", "58 out", "300 in", "300 out"])

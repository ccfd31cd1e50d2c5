"""A Jepsen-style checker for the fault tests: every change a test injects is a known (record, field, value) written
as a user on one side through the sandboxes; after quiescence each change is classified **applied once**, **lost**
or **duplicated**, the way RabbitMQ's Jepsen checker classifies messages.

`Workload` injects the changes: contacts created on one side (HubSpot contacts, QBO customers, each with a unique
email, its natural key) and edited on that side only, so the final value of every field is the last one written.
`classify` then looks at both sides:

- duplicated: one source record has more than one counterpart (two customers or contacts with its email);
- lost: the record has no counterpart, or either side does not show the final value of the change's field (a change
  superseded by a later edit of the same field is applied when that later value is: it can no longer be told apart);
- applied once: otherwise. Records nobody created (an email the workload never wrote) are `unexpected`.

`Acknowledged` records which webhook events the receiver acknowledged, so a test that makes the receiver refuse some
(a broker restart) checks only the changes it accepted.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pytest

from services.worker import _fields
from services.worker.rules.contacts import SPEC
from shared.domain import Kind, Provider
from tests.integration.conftest import CONNECTION, Stack

EDITED_FIELDS = tuple(m for m in SPEC.fields if m.name in ("first_name", "last_name", "phone", "city"))
EMAIL = "email"


class Outcome(enum.StrEnum):
    APPLIED_ONCE = "applied once"
    LOST = "lost"
    DUPLICATED = "duplicated"


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    side: Provider  # where the user made it
    record_id: str  # the record's id on that side
    email: str  # the record's natural key: how its counterpart on the other side is found
    field: str  # a contacts field (SPEC); "email" for the create
    value: str
    event_ids: frozenset[str] = frozenset()  # the webhook events the sandbox emitted for it


class Workload:
    """Makes changes as a user through the sandboxes and remembers each one."""

    def __init__(self, stack: Stack, rng: random.Random, *, tag: str) -> None:
        self.stack = stack
        self.rng = rng
        self.tag = tag  # in every email and value: tells this workload's records from any other
        self.changes: list[Change] = []
        self.records: list[tuple[Provider, str, str]] = []  # (side, id, email)
        self.emitted: list[str] = []  # event ids emitted by the change being made (see Acknowledged)

    def step(self, create_share: float) -> Change:
        """A create (with probability `create_share`, and always while there is no record) or an edit."""
        if not self.records or self.rng.random() < create_share:
            return self.create(self.rng.choice(list(Provider)))
        return self.edit()

    def create(self, side: Provider) -> Change:
        n = len(self.changes)
        email = f"{self.tag}-{n}@faults.test"
        if side is Provider.HUBSPOT:
            made = self._made(lambda: self.stack.hubspot_edit("contacts", "create", properties={"email": email}))
            record_id = str(made["id"])
        else:
            body = {"DisplayName": f"{self.tag} {n}", "PrimaryEmailAddr": {"Address": email}}
            made = self._made(lambda: self.stack.qbo_edit("Customer", "create", body))
            record_id = str(made["Id"])
        self.records.append((side, record_id, email))
        return self._remember(Change(side, record_id, email, EMAIL, email))

    def edit(self) -> Change:
        side, record_id, email = self.rng.choice(self.records)
        field = self.rng.choice(EDITED_FIELDS)
        n = len(self.changes)
        value = f"+1 555 {n:06d}" if field.name == "phone" else f"{self.tag} {field.name} {n}"
        if side is Provider.HUBSPOT:
            properties = _fields.to_hubspot([field], {field.name: value})
            self._made(lambda: self.stack.hubspot_edit("contacts", "update", id=record_id, properties=properties))
        else:
            body = {"Id": record_id, **_fields.to_qbo([field], {field.name: value})}
            self._made(lambda: self.stack.qbo_edit("Customer", "update", body))
        return self._remember(Change(side, record_id, email, field.name, value))

    def _made(self, edit: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        self.emitted = []
        return edit()

    def _remember(self, change: Change) -> Change:
        change = dataclasses.replace(change, event_ids=frozenset(self.emitted))
        self.changes.append(change)
        return change


class Acknowledged:
    """The webhook events the receiver acknowledged, seen from both sandboxes' dispatchers: their `emit` tells the
    workload which events a change produced, their `_post` which batches were answered with an acknowledgement."""

    def __init__(self, stack: Stack, workload: Workload, monkeypatch: pytest.MonkeyPatch) -> None:
        self.event_ids: set[str] = set()
        for dispatcher, id_field in (
            (stack.sandbox.hubspot.webhooks, "eventId"),
            (stack.sandbox.qbo.webhooks, "event_id"),
        ):
            self._watch(dispatcher, id_field, workload, monkeypatch)

    def _watch(self, dispatcher: Any, id_field: str, workload: Workload, monkeypatch: pytest.MonkeyPatch) -> None:
        emit: Callable[[dict[str, Any]], None] = dispatcher.emit
        post: Callable[[Any], Awaitable[bool]] = dispatcher._post

        def emit_and_note(event: dict[str, Any]) -> None:
            workload.emitted.append(str(event[id_field]))
            emit(event)

        async def post_and_note(batch: Any) -> bool:
            acknowledged = await post(batch)
            if acknowledged:
                self.event_ids.update(str(event[id_field]) for event in batch.events)
            return acknowledged

        monkeypatch.setattr(dispatcher, "emit", emit_and_note)
        monkeypatch.setattr(dispatcher, "_post", post_and_note)

    def accepted(self, changes: Iterable[Change]) -> list[Change]:
        """The changes the receiver acknowledged. A record is owed its final state only when its last change was
        acknowledged (an earlier one's event may have been read before the later edits), so a record whose last
        change was refused for good is left out whole."""
        changes = list(changes)
        last: dict[tuple[Provider, str], Change] = {(c.side, c.record_id): c for c in changes}
        owed = {record for record, change in last.items() if change.event_ids & self.event_ids}
        return [change for change in changes if (change.side, change.record_id) in owed]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    outcomes: list[tuple[Change, Outcome]]
    unexpected: list[str]  # emails on either side that no injected change accounts for

    def counts(self) -> dict[str, int]:
        counted = collections.Counter(outcome for _, outcome in self.outcomes)
        return {str(outcome): counted[outcome] for outcome in Outcome}

    def examples(self, outcome: Outcome, limit: int = 5) -> list[Change]:
        return [change for change, seen in self.outcomes if seen is outcome][:limit]


def _by_email(
    records: Iterable[Mapping[str, Any]], values: Callable[[Mapping[str, Any]], _fields.Values]
) -> dict[str, list[_fields.Values]]:
    found: dict[str, list[_fields.Values]] = collections.defaultdict(list)
    for record in records:
        canonical = values(record)
        found[canonical[EMAIL] or ""].append(canonical)
    return found


def classify(stack: Stack, changes: Iterable[Change]) -> Verdict:
    """Each change's outcome, from what both sides hold now (call after `stack.settle()`)."""
    changes = list(changes)
    contacts = _by_email(stack.hubspot_records("contacts"), lambda c: _fields.from_hubspot(SPEC.fields, c))
    customers = _by_email(stack.qbo_entities("Customer"), lambda c: _fields.from_qbo(SPEC.fields, c))
    final = {(c.side, c.record_id, c.field): c.value for c in changes}

    def outcome(change: Change) -> Outcome:
        hubspot, qbo = contacts.get(change.email, []), customers.get(change.email, [])
        if len(hubspot) > 1 or len(qbo) > 1:
            return Outcome.DUPLICATED
        expected = final[change.side, change.record_id, change.field]
        if [values[change.field] for values in (*hubspot, *qbo)] != [expected, expected]:
            return Outcome.LOST
        return Outcome.APPLIED_ONCE

    emails = {change.email for change in changes}
    unexpected = sorted((contacts.keys() | customers.keys()) - emails)
    return Verdict([(change, outcome(change)) for change in changes], unexpected)


async def assert_applied_once(stack: Stack, verdict: Verdict) -> None:
    """Every change applied once, nothing unexpected; a failure names a few of each kind, with the store's history of
    each lost record (its link and last activity), which is where the reason shows."""
    problems: dict[str, Any] = {
        str(outcome): verdict.examples(outcome) for outcome in (Outcome.LOST, Outcome.DUPLICATED)
    } | {"unexpected": verdict.unexpected[:5]}
    for change in verdict.examples(Outcome.LOST, 3):
        on_hubspot = change.side == Provider.HUBSPOT
        link = await stack.store.get_link(
            CONNECTION, Kind.CONTACT, hubspot_id=change.record_id if on_hubspot else None,
            qbo_id=None if on_hubspot else change.record_id,
        )  # fmt: skip
        history = await stack.store.activity(CONNECTION, Kind.CONTACT, link_id=link.id, limit=10) if link else []
        problems[f"history of {change.record_id}"] = (link, [(a.action, a.detail) for a in reversed(history)])
    assert verdict.counts()[Outcome.LOST] == verdict.counts()[Outcome.DUPLICATED] == 0, (verdict.counts(), problems)
    assert verdict.unexpected == [], problems

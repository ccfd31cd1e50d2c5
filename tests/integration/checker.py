"""A Jepsen-style checker for the fault tests and the soak: every change a test injects is a known (record, field,
value) written as a user on one side through the sandboxes; after quiescence each change is classified **applied
once**, **lost**, **duplicated** or **dead-lettered**, the way RabbitMQ's Jepsen checker classifies messages.

`Workload` injects the changes: contacts created on one side (HubSpot contacts, QBO customers, each with a unique
email, its natural key), edited, deleted (HubSpot: archived; QBO: made inactive, QBO's delete for customers) and
merged (two records of one side into one) on that side only, so the final value of every field is the last one
written. `classify` then looks at both sides, record by record, by the record's last state:

- duplicated: the record's email is on more than one record of either side (two customers or contacts);
- live: lost when either side has no active record with its email or does not show the final value of the change's
  field (a change superseded by a later edit of the same field is applied when that later value is: it can no longer
  be told apart); a merge survivor's counterpart must also hold every field the merge moved onto it;
- deleted: lost when its counterpart is still live (an active customer, a live contact); none at all is applied (the
  record was deleted before it ever synced);
- merged away: it is gone from its side (the sandbox saw to it); its counterpart, kept as accounting data or taken
  over by the survivor, is at most one record;
- dead-lettered: would be lost, and the dead-letter queue holds a letter for the record (or its counterpart), which
  the verdict keeps as its history; `explained` says whether the worker wrote that history (attempts, error) or the
  broker dead-lettered the message without one. `dead_letter_problems` holds a run with records broken on purpose
  to it: exactly those records' changes dead-lettered, each letter the worker's history of the record.

Records nobody created (an email the workload never wrote) are `unexpected`.

`Acknowledged` records which webhook events the receiver acknowledged, so a test that makes the receiver refuse some
(a broker restart) checks only the changes it accepted.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import pytest

from services.worker import _fields
from services.worker.rules.contacts import SPEC
from shared.deadletters import DeadLetter
from shared.domain import Kind, Provider
from tests.integration.conftest import CONNECTION, Stack

EDITED_FIELDS = tuple(m for m in SPEC.fields if m.name in ("first_name", "last_name", "phone", "city"))
EMAIL = "email"
DELETED = "deleted"  # a change's `field` for a delete
MERGED = "merged"  # a change's `field` for a merge: the record merged away; `value` is the survivor's id
BROKER_REASONS = frozenset({"rejected", "delivery_limit", "expired", "maxlen", "unknown"})  # x-death, no history


class Outcome(enum.StrEnum):
    APPLIED_ONCE = "applied once"
    LOST = "lost"
    DUPLICATED = "duplicated"
    DEAD_LETTERED = "dead-lettered"


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    side: Provider  # where the user made it
    record_id: str  # the record's id on that side
    email: str  # the record's natural key: how its counterpart on the other side is found
    field: str  # a contacts field (SPEC); "email" for the create, DELETED, MERGED
    value: str  # the field's value; the survivor's id for a merge
    event_ids: frozenset[str] = frozenset()  # the webhook events the sandbox emitted for it


class Workload:
    """Makes changes as a user through the sandboxes and remembers each one."""

    def __init__(self, stack: Stack, rng: random.Random, *, tag: str) -> None:
        self.stack = stack
        self.rng = rng
        self.tag = tag  # in every email and value: tells this workload's records from any other
        self.changes: list[Change] = []
        self.records: list[tuple[Provider, str, str]] = []  # (side, id, email) of the live records, oldest first
        self.emitted: list[str] = []  # event ids emitted by the change being made (see Acknowledged)

    def step(self, create_share: float, delete_share: float = 0.0, merge_share: float = 0.0) -> Change:
        """A create (with probability `create_share`, and always while there is no record), a delete, a merge (when
        two records of one side are old enough) or an edit."""
        draw = self.rng.random()
        if not self.records or draw < create_share:
            return self.create(self.rng.choice(list(Provider)))
        if draw < create_share + delete_share:
            return self.delete()
        if draw < create_share + delete_share + merge_share and (merged := self.merge()) is not None:
            return merged
        return self.edit()

    def create(self, side: Provider, *, kept: bool = True) -> Change:
        """A new record on `side`; `kept` False: no later step edits, deletes or merges it."""
        n = len(self.changes)
        email = f"{self.tag}-{n}@faults.test"
        if side is Provider.HUBSPOT:
            made = self._made(lambda: self.stack.hubspot_edit("contacts", "create", properties={"email": email}))
            record_id = str(made["id"])
        else:
            body = {"DisplayName": f"{self.tag} {n}", "PrimaryEmailAddr": {"Address": email}}
            made = self._made(lambda: self.stack.qbo_edit("Customer", "create", body))
            record_id = str(made["Id"])
        if kept:
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

    def delete(self) -> Change:
        """A record deleted on its side: a HubSpot contact archived, a QBO customer made inactive."""
        side, record_id, email = self.records.pop(self.rng.randrange(len(self.records)))
        if side is Provider.HUBSPOT:
            self._made(lambda: self.stack.hubspot_edit("contacts", "delete", id=record_id))
        else:
            self._made(lambda: self.stack.qbo_edit("Customer", "update", {"Id": record_id, "Active": False}))
        return self._remember(Change(side, record_id, email, DELETED, ""))

    def merge(self, settled: int = 20) -> Change | None:
        """Two records of one side merged into one, both among the older ones (created at least `settled` records
        ago, so usually synced: a merge of records the worker never saw tests the webhook race, not the merge)."""
        older = self.records[: max(len(self.records) - settled, 0)]
        side = self.rng.choice(list(Provider))
        candidates = [record for record in older if record[0] is side]
        if len(candidates) < 2:
            return None
        survivor, loser = self.rng.sample(candidates, 2)
        self.records.remove(loser)
        if side is Provider.HUBSPOT:
            self._made(lambda: self.stack.hubspot_edit("contacts", "merge", id=survivor[1], merge_id=loser[1]))
        else:
            merge = {"survivor_id": survivor[1], "merged_id": loser[1]}
            self._made(lambda: self.stack.qbo_edit("Customer", "merge", merge))
        return self._remember(Change(side, loser[1], loser[2], MERGED, survivor[1]))

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
    letters: dict[tuple[Provider, str], list[DeadLetter]] = dataclasses.field(default_factory=dict)  # by record

    def counts(self) -> dict[str, int]:
        counted = collections.Counter(outcome for _, outcome in self.outcomes)
        return {str(outcome): counted[outcome] for outcome in Outcome}

    def examples(self, outcome: Outcome, limit: int = 5) -> list[Change]:
        return [change for change, seen in self.outcomes if seen is outcome][:limit]

    def history(self, change: Change) -> list[DeadLetter]:
        """The dead letters that explain a dead-lettered change."""
        return self.letters.get((change.side, change.record_id), [])


def explained(letter: DeadLetter) -> bool:
    """The worker gave up on it and said why (attempts, the error); not the broker dropping a message it was handed
    back too often, which carries no history of its own."""
    return letter.attempts > 0 and bool(letter.error_message) and letter.error_category not in BROKER_REASONS


def dead_letter_problems(
    verdict: Verdict, letters: Iterable[DeadLetter], broken: Collection[tuple[Provider, str]], *, connection: str
) -> list[str]:
    """What is wrong with the dead letters of `connection` when exactly its `broken` records (side, id: records the
    provider fails on for good) could not be applied: every change of a broken record must be dead-lettered, each of
    its letters the worker's history of that record (its key, the error's category and message, the attempts, the
    first and last failure); no other change dead-lettered, and no letter naming another record."""
    problems = []
    for change, outcome in verdict.outcomes:
        record = (change.side, change.record_id)
        if record not in broken:
            if outcome is Outcome.DEAD_LETTERED:
                problems.append(f"{change.side} {change.record_id}: dead-lettered, yet not broken")
            continue
        if outcome is not Outcome.DEAD_LETTERED:
            problems.append(f"{change.side} {change.record_id}: {outcome}, not dead-lettered")
        for letter in verdict.history(change):
            key = (letter.connection, letter.kind, letter.side, letter.object_id)
            if key != (connection, Kind.CONTACT, change.side, change.record_id):
                problems.append(f"{change.side} {change.record_id}: a letter names {key}")
            if not explained(letter):
                problems.append(f"{change.side} {change.record_id}: letter {letter.id} has no history")
            elif not letter.first_failed_at or (letter.last_failed_at or 0) < letter.first_failed_at:
                problems.append(f"{change.side} {change.record_id}: letter {letter.id} has no first/last failure")
    for letter in letters:
        if letter.connection == connection and (_side(letter), str(letter.object_id)) not in broken:
            problems.append(f"letter {letter.id} names {letter.kind} {letter.side} {letter.object_id}: not broken")
    return problems


@dataclasses.dataclass(frozen=True, slots=True)
class _Side:
    """One side's records by email, canonical values plus whether the record is live (active, not archived)."""

    by_email: dict[str, list[tuple[_fields.Values, bool]]]

    def live(self, email: str) -> list[_fields.Values]:
        return [values for values, live in self.by_email.get(email, []) if live]

    def count(self, email: str) -> int:
        return len(self.by_email.get(email, []))


def _by_email(
    records: Iterable[Mapping[str, Any]], values: Callable[[Mapping[str, Any]], _fields.Values],
    live: Callable[[Mapping[str, Any]], bool],
) -> _Side:  # fmt: skip
    found: dict[str, list[tuple[_fields.Values, bool]]] = collections.defaultdict(list)
    for record in records:
        canonical = values(record)
        found[canonical[EMAIL] or ""].append((canonical, live(record)))
    return _Side(found)


def classify(stack: Stack, changes: Iterable[Change], letters: Sequence[DeadLetter] = ()) -> Verdict:
    """Each change's outcome, from what both sides hold now (call after `stack.settle()`); `letters` are the dead
    letters of the stack's broker (`DeadLetters.list_letters`)."""
    changes = list(changes)
    contacts = _by_email(
        stack.hubspot_records("contacts"), lambda c: _fields.from_hubspot(SPEC.fields, c), lambda c: True
    )  # live records only
    customers = _by_email(
        stack.qbo_entities("Customer"), lambda c: _fields.from_qbo(SPEC.fields, c), lambda c: c.get("Active", True)
    )
    sides = {Provider.HUBSPOT: contacts, Provider.QUICKBOOKS: customers}
    final = {(c.side, c.record_id, c.field): c.value for c in changes}
    ended = {(c.side, c.record_id): c for c in changes if c.field in (DELETED, MERGED)}
    emails = {(c.side, c.record_id): c.email for c in changes}
    survivors = {(c.side, c.value) for c in changes if c.field == MERGED}

    by_record = _letters_by_record(stack, letters, emails)

    def agree(change: Change) -> bool:
        """Both sides hold one live record with the change's email, agreeing on its field (on every edited field
        for a merge survivor: the merge may have moved values onto it), which holds the final value."""
        own, other = sides[change.side].live(change.email), sides[_other(change.side)].live(change.email)
        if len(own) != 1 or len(other) != 1:
            return False
        fields = [m.name for m in EDITED_FIELDS] if (change.side, change.record_id) in survivors else []
        if change.field != EMAIL:
            fields.append(change.field)
            if own[0][change.field] != final[change.side, change.record_id, change.field]:
                return False
        return all(own[0][name] == other[0][name] for name in fields)

    def outcome(change: Change) -> Outcome:
        if any(side.count(change.email) > 1 for side in sides.values()):
            return Outcome.DUPLICATED
        end = ended.get((change.side, change.record_id))
        if end is None:
            applied = agree(change)
        elif end.field == DELETED:
            applied = not any(side.live(change.email) for side in sides.values())
        else:  # merged away: its side no longer has it; what the other side kept is at most one record
            applied = sides[change.side].count(change.email) == 0
        if applied:
            return Outcome.APPLIED_ONCE
        return Outcome.DEAD_LETTERED if (change.side, change.record_id) in by_record else Outcome.LOST

    unexpected = sorted((contacts.by_email.keys() | customers.by_email.keys()) - set(emails.values()))
    return Verdict([(change, outcome(change)) for change in changes], unexpected, by_record)


def _other(side: Provider) -> Provider:
    return Provider.QUICKBOOKS if side is Provider.HUBSPOT else Provider.HUBSPOT


def _letters_by_record(
    stack: Stack, letters: Sequence[DeadLetter], emails: Mapping[tuple[Provider, str], str]
) -> dict[tuple[Provider, str], list[DeadLetter]]:
    """Each workload record's letters: those naming it, or naming its counterpart (found by email on the other side:
    an apply from the other side's id is the same record's sync)."""
    ids_by_email: dict[str, set[tuple[Provider, str]]] = collections.defaultdict(set)
    for contact in stack.hubspot_records("contacts"):
        ids_by_email[(contact.get("email") or "").lower()].add((Provider.HUBSPOT, str(contact["id"])))
    for customer in stack.qbo_entities("Customer"):
        email = ((customer.get("PrimaryEmailAddr") or {}).get("Address") or "").lower()
        ids_by_email[email].add((Provider.QUICKBOOKS, str(customer["Id"])))
    found: dict[tuple[Provider, str], list[DeadLetter]] = {}
    for record, email in emails.items():
        named = ids_by_email.get(email, set()) | {record}
        mine = [letter for letter in letters if (_side(letter), str(letter.object_id)) in named]
        if mine:
            found[record] = mine
    return found


def _side(letter: DeadLetter) -> Provider | None:
    try:
        return Provider(letter.side or "")
    except ValueError:
        return None


async def history(stack: Stack, change: Change, *, connection: str = CONNECTION, last: int = 10) -> dict[str, Any]:
    """The store's history of a change's record: its link and its last activity, which is where a reason shows."""
    on_hubspot = change.side == Provider.HUBSPOT
    link = await stack.store.get_link(
        connection, Kind.CONTACT, hubspot_id=change.record_id if on_hubspot else None,
        qbo_id=None if on_hubspot else change.record_id,
    )  # fmt: skip
    lines = await stack.store.activity(connection, Kind.CONTACT, link_id=link.id, limit=last) if link else []
    return {"change": change, "link": link, "activity": [(a.at, a.action, a.detail) for a in reversed(lines)]}


async def assert_applied_once(stack: Stack, verdict: Verdict) -> None:
    """Every change applied once, nothing unexpected; a failure names a few of each kind, with the store's history of
    each lost record (its link and last activity), which is where the reason shows."""
    problems: dict[str, Any] = {
        str(outcome): verdict.examples(outcome) for outcome in (Outcome.LOST, Outcome.DUPLICATED)
    } | {"unexpected": verdict.unexpected[:5]}
    for change in verdict.examples(Outcome.LOST, 3):
        problems[f"history of {change.record_id}"] = await history(stack, change)
    for change in verdict.examples(Outcome.DEAD_LETTERED, 3):
        problems[f"dead letters of {change.record_id}"] = [letter.to_dict() for letter in verdict.history(change)]
    assert verdict.counts()[Outcome.LOST] == verdict.counts()[Outcome.DUPLICATED] == 0, (verdict.counts(), problems)
    assert verdict.counts()[Outcome.DEAD_LETTERED] == 0, (verdict.counts(), problems)
    assert verdict.unexpected == [], problems

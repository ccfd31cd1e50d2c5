"""Sync rules, one module per synced object pair. A rule brings one record from the side it changed on to the other
side, or says why not:

    contacts.py   HubSpot contact  <-> QBO Customer
    products.py   HubSpot product  <-> QBO Item (matched by SKU)
    invoices.py   HubSpot invoice  <-> QBO Invoice
    payments.py   HubSpot payment  <-> QBO Payment

A rule returns an `Outcome`, raises `Excluded` (a filter or a rule leaves the record out, not retried) or `Failing`
(cannot sync until someone fixes the data, not retried); a transient `ApiError` is retried by the worker. A record
failing for want of another one (an invoice's customer, a payment's invoice) names it (`Failing.awaits`): the
engine stores it, and that record's sync wakes this one.

Link first: a rule reads the record's link before the records themselves. The two sides of one pair are two
pending keys, so their applies can run at once in two workers; reading the link first makes every record read at
least as new as the link, and a concurrent apply that saves the link after ours read it makes our save fail
(`StaleLink`, rerun). Read the other way round, a record read before another apply's write and a link read after
it look like an edit back to the old value, and that stale value is then written over the newer one.

Writes as plans: a rule computes its writes as a plan (`services/worker/_plan.py`: the store intents and API writes,
in order), a pure function of the records it read and their link, unit-tested through every crash window, and
`_executor.carry_out` writes it: field sync (`_pair.plan_fields`), creates both ways (`_pair.plan_qbo_create`,
`plan_hubspot_create`), claims (`plan_claim`), merges (`plan_repoint`), reviews (`_match.plan_review`), deactivations
and archives, every payment write (both ways), every invoice write (both ways: the HubSpot copy's creation, its line
items, discounts and tax, the QBO invoice's creation and update, voids and deletions; the totals checked by a plan
step). Where a write's answer steers what follows, that is data or a plan's end: a name or DocNumber QBO refuses as
taken moves a create to its next alternative (a step's alternatives); a created record's fields are synced by the
plan that follows, from what QBO made (read: a create replayed for a retry holds the first attempt's values) or what
the HubSpot create wrote (an invoice copy's line items, once the copy they are associated with exists); a HubSpot 409
ends the plan and the rule links to the record it names. Still made by the rule itself: the HubSpot property an
origin lookup ensures on first use (`_origin`, a definition, not a record) and the invoices' "Custom line item" QBO
item, found by name and created once (`_invoice_refs.custom_line_item`, a setting's record, not a synced one).

Versions seen: right after reading the record it syncs (on the side it changed on), a rule calls `saw(...)` with that
record's version (QBO SyncToken, HubSpot updatedAt, `GONE` when it no longer exists) and the record (the engine keeps
what a person recognises it by). The engine records it on the link whatever the outcome (excluded, failing
and skipped included), so the poller queues the record again only for a newer version, and an outcome repeated on a
version already seen is no news (no status write, no activity).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import Any, Protocol

from shared import versions
from shared.clients import HubSpotObject, QboEntity
from shared.connections import SyncContext
from shared.domain import Action, Awaited, Direction, Kind, Provider
from shared.errors import HsqboError
from shared.store import Link
from shared.syncconfig import ConnectionSettings, ObjectSettings

# What the webhooks said beyond "changed": {"deleted": True}, {"merged_ids": {"12": True}}; {"drifted": True} from the
# reconciliation: the two sides differ, compare them whatever the link's versions say.
Hints = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    action: Action  # created, updated, linked, unchanged, echo, deleted, merged, skipped, needs_review
    direction: Direction | None = None
    link: Link | None = None
    detail: str = ""


class Excluded(HsqboError):
    """A filter or a rule leaves this record out of the sync; the record shows the reason."""

    def __init__(self, reason: str, *, category: str = "filtered") -> None:
        super().__init__(reason)
        self.category = category


class Failing(HsqboError):
    """The record cannot sync until its data changes (e.g. a duplicate DisplayName under the `fail` strategy), or
    until the record it `awaits` syncs (`shared.domain.Awaited`: the engine stores it, and that record's sync wakes
    this one)."""

    def __init__(self, message: str, *, category: str, awaits: Awaited | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.awaits = awaits  # the record whose sync (created or linked) may let this one sync: the engine stores it


class Rule(Protocol):
    kind: Kind

    def settings(self, connection: ConnectionSettings) -> ObjectSettings: ...

    async def from_hubspot(self, ctx: SyncContext, object_id: str, hints: Hints) -> Outcome: ...

    async def from_qbo(self, ctx: SyncContext, object_id: str, hints: Hints) -> Outcome: ...


def direction_from(side: Provider) -> Direction:
    return Direction.HUBSPOT_TO_QBO if side == Provider.HUBSPOT else Direction.QBO_TO_HUBSPOT


# --- the version of the source record an apply saw -------------------------------------------------------------------

GONE = versions.GONE  # the version of a record its source no longer has (read: not found)


@dataclasses.dataclass(slots=True)
class Seen:
    version: str | None = None  # the source record's version as the rule last read it; None: not read
    record: HubSpotObject | QboEntity | None = None  # that record as read; None: not read, or gone


_SEEN: contextvars.ContextVar[Seen | None] = contextvars.ContextVar("hsqbo_seen", default=None)


@contextlib.contextmanager
def watching() -> Iterator[Seen]:
    """For the engine: what the rule run inside reports with `saw`."""
    seen = Seen()
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def saw(version: str | None, record: HubSpotObject | QboEntity | None = None) -> None:
    """For a rule: it read the record it syncs at `version` (see the module docstring)."""
    seen = _SEEN.get()
    if seen is not None:
        seen.version = version
        seen.record = record


def qbo_version(entity: QboEntity) -> str:
    return str(entity.get("SyncToken"))


def hubspot_version(record: HubSpotObject) -> str | None:
    return record.updated_at.isoformat() if record.updated_at else None

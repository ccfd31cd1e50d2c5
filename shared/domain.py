"""The words every layer shares: the two providers, the synced object kinds, the key of a record's pending work and
what an apply did to a record. The bottom of hsqbo's dependency graph: it imports nothing of hsqbo, and the store,
the API clients, the envelope, the rules and every service import it (tests/test_layers.py checks the direction)."""

from __future__ import annotations

import dataclasses
import enum


class Provider(enum.StrEnum):
    HUBSPOT = "hubspot"
    QUICKBOOKS = "quickbooks"


class Kind(enum.StrEnum):
    """A synced object pair."""

    CONTACT = "contact"  # HubSpot contact <-> QBO Customer
    PRODUCT = "product"  # HubSpot product <-> QBO Item
    INVOICE = "invoice"
    PAYMENT = "payment"


class Direction(enum.StrEnum):
    HUBSPOT_TO_QBO = "hubspot_to_qbo"
    QBO_TO_HUBSPOT = "qbo_to_hubspot"


class Part(enum.StrEnum):
    """A HubSpot record that belongs to a synced record, its changes the parent's (the value is its object type in
    HubSpot's webhooks)."""

    LINE_ITEM = "line_item"  # of an invoice; likewise the invoice-level discounts, fees and taxes
    DISCOUNT = "discount"
    FEE = "fee"
    TAX = "tax"
    INVOICE = "invoice"  # of its contacts, under the `require_hubspot_invoice` contact filter


@dataclasses.dataclass(frozen=True, slots=True)
class PendingKey:
    """A record with unprocessed changes; `side` is the system the change happened in.

    With `part` set, the change was to a part of one or more records of `kind` (a line item of an invoice) and
    `object_id` is the part's own id: applying it finds the records it belongs to and wakes them. A part's key never
    coalesces with a record's own key."""

    connection: str
    kind: Kind
    side: Provider
    object_id: str
    part: Part | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Awaited:
    """The record a failing record waits for (an invoice its customer, a payment its invoice): its kind and its id on
    one side. Once it is created or linked, the records waiting for it are run again."""

    kind: Kind
    side: Provider
    object_id: str


class Action(enum.StrEnum):
    """What an apply did to a record: the `applied` log line's action and the activity line's."""

    CREATED = "created"  # on the other side
    UPDATED = "updated"
    LINKED = "linked"  # two existing records first joined
    OVERWRITTEN = "overwritten"  # what a first link overwrote (activity only, beside `linked`)
    RESTORED = "restored"  # made active again on the other side
    MERGED = "merged"
    DELETED = "deleted"
    VOIDED = "voided"
    UNCHANGED = "unchanged"  # nothing to write
    ECHO = "echo"  # the change was our own write
    SKIPPED = "skipped"  # nothing to do, saying why
    ROUTED = "routed"  # a part's change, handed to the records it belongs to
    PAUSED = "paused"  # the connection is paused: the record waits
    EXCLUDED = "excluded"  # left out of the sync (the link's status)
    FAILING = "failing"  # failed, not retried until it changes (the link's status)
    NEEDS_REVIEW = "needs_review"  # matched several records: an operator decides

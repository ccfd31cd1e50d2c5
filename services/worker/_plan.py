"""A plan: what a rule decided to write, in order, as data. A planner computes it as a pure function of the records
it read and their link; `_executor.carry_out` is the one place that carries plans out. A plan's steps are store
intents (`SaveLink`: the link with some fields replaced; `SaveOtherLink`: another link, a half link a pair's link
supersedes; `RepointLink`: a merge's link moved or retired; `LogActivity`: a line of the record's history) and API
writes (`CreateQbo`, `CreateQboOneOf`, `UpdateQbo`, `VoidQbo`, `CreateHubSpot`, `UpdateHubSpot`, `ArchiveHubSpot`,
`AssociateInvoicePart`), ordered so that every crash window is safe:

- a crash after any step leaves the store and both APIs as the steps before it left them, and the next apply plans
  again from what it reads then;
- where a re-run could take our write for an edit made there (field sync, a create, an invoice's update), a
  `SaveLink` first records what that side will hold (its content hash, the write intent): the next plan takes a side
  showing exactly that as our own write, the last agreement, never as an edit there;
- a QBO write carries a `requestid` derived from the link's revision as read (`SyncContext.request_id`; for a create
  whose intent the plan saves first, `RequestId`: made under the link as saved last, as a retry reading that intent
  makes it): a retry of the same plan replays QBO's first answer instead of writing twice, and once a later step has
  saved the link the next plan's write is a new one;
- a value only known once a write answers (the ids and versions QBO and HubSpot gave, the total QBO computed) is
  `Answered`, filled in by the executor; `AsJson` saves a map holding such values as JSON text (an invoice's line
  map: QBO line key -> HubSpot line item, discount or tax id); where the answer picks the next write, the choice is
  data (`CreateQboOneOf`: the next name, or no DocNumber, when QBO refuses one as taken), or the plan ends there and
  the rule plans again from what it reads (a HubSpot 409);
- a HubSpot record that takes no idempotency key and needs a second call to attach it (an invoice's discount or tax:
  `CreateHubSpot`, then `AssociateInvoicePart`) is named on the link by a `SaveLink` between the two, so the next
  plan finds it and attaches it (or archives it) instead of making another;
- a check the outcome depends on is a step too (`CheckInvoiceTotal`: the total the other side computed, from a
  write's answer or read back, after the link save it follows): it stops the plan, the record failing.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.clients import NewAssociation
from shared.domain import Action, Direction, Kind, Provider
from shared.money import plain
from shared.store import Link

TOTAL_MISMATCH = "total_mismatch"  # the category of a record whose totals differ (`CheckInvoiceTotal`)


class Answer(enum.StrEnum):
    """A value an API write answers with."""

    QBO_ID = "qbo_id"  # the Id of the entity QBO created
    QBO_SYNC_TOKEN = "qbo_sync_token"  # the SyncToken of the entity after the last QBO write
    HUBSPOT_ID = "hubspot_id"  # the id of the record HubSpot created
    HUBSPOT_UPDATED_AT = "hubspot_updated_at"  # the updatedAt of the record after the last HubSpot write
    QBO_TOTAL = "qbo_total"  # the TotalAmt of the entity after the last QBO write (a transaction's, as QBO computed)


@dataclasses.dataclass(frozen=True, slots=True)
class Answered:
    """A link field's value (or a value in a field's mapping) taken from an earlier write's answer in the same plan:
    the last write's, or the one of the HubSpot write with this `label`; `default` when it gave none."""

    answer: Answer
    default: str | None = None
    label: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class AsJson:
    """A link field's value (or a value in a field's mapping) saved as JSON text once the `Answered` values in
    `value` are filled in: a map of ids some of which a write of the plan makes."""

    value: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class SaveLink:
    """Save the link (as the previous step left it) with these fields replaced; values may be `Answered`."""

    changes: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class SaveOtherLink:
    """Save a link other than the plan's (`link`, as read) with these fields replaced: a half link the pair's link
    supersedes, retired before the pair's link takes its id."""

    link: Link
    changes: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RepointLink:
    """A merge on `side`: the link of `loser` moves to `survivor`, or is retired (and that logged) when the survivor
    has a link of its own; nothing when `loser` has none (moved already)."""

    kind: Kind
    side: Provider
    loser: str
    survivor: str


@dataclasses.dataclass(frozen=True, slots=True)
class RequestId:
    """A QBO requestid the executor makes from these parts with `SyncContext.request_id`, under the link as saved
    last: a create whose intent an earlier step saves takes the intent's revision, as a retry that reads the intent
    (and so sends the same requestid: QBO replays its first answer) does."""

    parts: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class CreateQbo:
    entity: str  # "Payment"
    body: Mapping[str, Any]
    request_id: str | RequestId


class Refusal(enum.StrEnum):
    """A refusal of a create that another body may pass."""

    DUPLICATE_NAME = "duplicate_name"  # shared.errors.DuplicateName: a name-list entity's name is taken (6240)
    DUPLICATE_DOC_NUMBER = "duplicate_doc_number"  # shared.errors.DuplicateDocNumber


@dataclasses.dataclass(frozen=True, slots=True)
class Alternative:
    """One body a `CreateQboOneOf` may send: its body with these fields set (a None value leaves the field out)."""

    fields: Mapping[str, Any]
    request_id: str | RequestId


@dataclasses.dataclass(frozen=True, slots=True)
class AllRefused:
    """What the plan stops with when QBO refuses every alternative: the record is failing (`rules.Failing`)."""

    message: str
    category: str


@dataclasses.dataclass(frozen=True, slots=True)
class CreateQboOneOf:
    """Create a QBO entity with the first of `alternatives` QBO does not refuse for `refusal` (a later name, no
    DocNumber), each sent with its own requestid: a retry sends them in the same order with the same requestids, so
    QBO replays each first answer, its refusals included, and makes nothing twice. Every one refused: `all_refused`
    (None: the last refusal as QBO gave it). `looked_up`: the alternatives are names no record of the entity held
    when the rule looked (a retry after an attempt cut short, `rules._pair.lost_create`): one refused since, and
    held now by a record of the entity, may be that attempt's create landing late, so the plan stops there (a
    conflict: the next apply looks again) rather than make a renamed duplicate under the next name; a name refused
    but held by no record of the entity (a customer's DisplayName held by a vendor) is passed as always."""

    entity: str
    body: Mapping[str, Any]
    alternatives: tuple[Alternative, ...]
    refusal: Refusal
    all_refused: AllRefused | None = None
    looked_up: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class UpdateQbo:
    entity: str  # "Customer"
    body: Mapping[str, Any]  # sparse or full update: Id, SyncToken, the fields
    request_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class VoidQbo:
    entity: str  # "Payment"
    entity_id: str
    sync_token: str
    request_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class CreateHubSpot:
    object_type: str  # "commerce_payments"
    properties: Mapping[str, str]
    associations: tuple[NewAssociation, ...] = ()
    label: str = ""  # names its answers (`Answered.label`) when a plan makes several records


@dataclasses.dataclass(frozen=True, slots=True)
class UpdateHubSpot:
    object_type: str  # "contacts"
    object_id: str
    properties: Mapping[str, str]
    gone_ok: bool = False  # a record deleted in HubSpot meanwhile is left be (else NotFound stops the plan)
    label: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveHubSpot:
    """Archive a HubSpot record; one already gone counts as archived."""

    object_type: str
    object_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class AssociateInvoicePart:
    """Associate a record of an invoice (a discount, fee or tax: HubSpot documents only the invoice's side of these
    associations) with the HubSpot invoice; associating it again changes nothing."""

    invoice_id: str
    object_type: str  # "discounts"
    object_id: str | Answered
    type_id: int  # invoice -> object (411 / 413 / 415)


@dataclasses.dataclass(frozen=True, slots=True)
class CheckInvoiceTotal:
    """The total the other side computed must be `expected` to the cent, else the plan stops here and the record is
    failing `total_mismatch` (what ran stays done). QBO's total is `total` (as read, or `Answered(QBO_TOTAL)`);
    HubSpot's is read from the invoice `hubspot_invoice_id` (its `hs_amount_billed`; the read answers its updatedAt
    under `label`)."""

    expected: Decimal | None
    total: Decimal | Answered | None = None
    hubspot_invoice_id: str | None = None
    label: str = ""

    def failure(self, computed: Decimal | None) -> str | None:
        """Why the totals differ, or None when they agree."""
        if self.expected is None and self.hubspot_invoice_id is None:
            return None  # nothing billed to compare with
        if computed == self.expected:
            return None
        if self.hubspot_invoice_id is not None:
            return f"HubSpot bills {_amount(computed)} for the QuickBooks invoice of {_amount(self.expected)}"
        return f"QuickBooks totals {_amount(computed)} for the HubSpot invoice billing {_amount(self.expected)}"


def _amount(value: Decimal | None) -> str:
    return plain(value) if value is not None else "nothing"


@dataclasses.dataclass(frozen=True, slots=True)
class LogActivity:
    """A line of the record's history, under the link as saved last."""

    action: Action
    detail: str


Step = (
    SaveLink
    | SaveOtherLink
    | RepointLink
    | CreateQbo
    | CreateQboOneOf
    | UpdateQbo
    | VoidQbo
    | CreateHubSpot
    | UpdateHubSpot
    | ArchiveHubSpot
    | AssociateInvoicePart
    | CheckInvoiceTotal
    | LogActivity
)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """The link the plan starts from (as read, or a new one; None for a plan of `RepointLink`s alone), the steps in
    order, and the outcome they make (its link: the link as saved last)."""

    link: Link | None
    steps: tuple[Step, ...]
    action: Action
    direction: Direction | None = None
    detail: str = ""

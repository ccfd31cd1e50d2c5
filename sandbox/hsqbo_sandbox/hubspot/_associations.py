"""Associations between records: the HUBSPOT_DEFINED type ids and a two-way index.

Type ids (reference §4; PYSDK `hubspot/crm/association_type.py`): contact->company primary 1 / unlabeled 279
(reverse 2 / 280), deal->contact 3/4, deal->company primary 5/6 / unlabeled 341/342, deal->line_item 19/20,
invoice->deal 175/176, invoice->contact 177/178, invoice->company 179/180, invoice->line_item 409/410,
invoice->commerce_payment 541/542, invoice->discount / fee / tax 411 / 413 / 415 (reverse 412 / 414 / 416:
inferred from the pairing of every other id, undocumented; hsqbo associates from the invoice side only),
commerce_payment->contact 387/388, ->company 389/390, ->deal 391/392, ->line_item 395/396. (The SDK lists
CONTACT_TO_DEAL 4 but not its reverse; deal->contact 3 is what HubSpot's association guides and every client use.)
Every association is stored in both directions. A primary association (contact->company, deal->company) implies
the unlabeled one (WH-DOC), and a record has at most one primary company. A line item belongs to exactly one
parent, a deal or an invoice (line items guide), so a second one is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hsqbo_sandbox.hubspot._errors import HubSpotError, validation_error


@dataclasses.dataclass(frozen=True, slots=True)
class AssociationKind:
    type_id: int
    from_type: str  # object type names ("contacts")
    to_type: str
    name: str  # v3 `type`, e.g. "contact_to_company" / "contact_to_company_unlabeled"
    label: str | None  # v4 label: "Primary" for primary kinds, None for unlabeled
    reverse_id: int
    primary: bool = False


def _pair(
    from_type: str,
    from_singular: str,
    to_type: str,
    to_singular: str,
    type_id: int,
    reverse_id: int,
    *,
    primary: bool = False,
) -> tuple[AssociationKind, AssociationKind]:
    suffix = "" if primary else "_unlabeled" if (from_type, to_type) in _HAS_PRIMARY else ""
    label = "Primary" if primary else None
    return (
        AssociationKind(type_id, from_type, to_type, f"{from_singular}_to_{to_singular}{suffix}", label, reverse_id,
                        primary),
        AssociationKind(reverse_id, to_type, from_type, f"{to_singular}_to_{from_singular}{suffix}", label, type_id,
                        primary),
    )  # fmt: skip


_HAS_PRIMARY = {("contacts", "companies"), ("companies", "contacts"), ("deals", "companies"), ("companies", "deals")}
LINE_ITEM_PARENTS = ("deals", "invoices")

KINDS: dict[int, AssociationKind] = {
    kind.type_id: kind
    for pair in (
        _pair("contacts", "contact", "companies", "company", 1, 2, primary=True),
        _pair("contacts", "contact", "companies", "company", 279, 280),
        _pair("deals", "deal", "contacts", "contact", 3, 4),
        _pair("deals", "deal", "companies", "company", 5, 6, primary=True),
        _pair("deals", "deal", "companies", "company", 341, 342),
        _pair("deals", "deal", "line_items", "line_item", 19, 20),
        _pair("invoices", "invoice", "deals", "deal", 175, 176),
        _pair("invoices", "invoice", "contacts", "contact", 177, 178),
        _pair("invoices", "invoice", "companies", "company", 179, 180),
        _pair("invoices", "invoice", "line_items", "line_item", 409, 410),
        _pair("invoices", "invoice", "commerce_payments", "commerce_payment", 541, 542),
        _pair("invoices", "invoice", "discounts", "discount", 411, 412),
        _pair("invoices", "invoice", "fees", "fee", 413, 414),
        _pair("invoices", "invoice", "taxes", "tax", 415, 416),
        _pair("commerce_payments", "commerce_payment", "contacts", "contact", 387, 388),
        _pair("commerce_payments", "commerce_payment", "companies", "company", 389, 390),
        _pair("commerce_payments", "commerce_payment", "deals", "deal", 391, 392),
        _pair("commerce_payments", "commerce_payment", "line_items", "line_item", 395, 396),
    )
    for kind in pair
}

# The default (unlabeled) kind per direction: PUT .../associations/default/... and inline associations need it.
DEFAULT_KIND: dict[tuple[str, str], AssociationKind] = {
    (kind.from_type, kind.to_type): kind for kind in KINDS.values() if not kind.primary
}

# Record reference: (object type name, record id)
Ref = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class AssociationChange:
    from_ref: Ref
    to_ref: Ref
    kind: AssociationKind
    removed: bool


def kind_for(from_type: str, to_type: str, type_id: int) -> AssociationKind:
    kind = KINDS.get(type_id)
    if kind is None or kind.from_type != from_type or kind.to_type != to_type:
        raise validation_error(
            f"association type id {type_id} doesn't exist between {from_type} and {to_type}",
            sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
        )
    return kind


class AssociationIndex:
    """from ref -> to type -> to id -> set of type ids (both directions stored)."""

    def __init__(self) -> None:
        self._links: dict[Ref, dict[str, dict[int, set[int]]]] = {}

    def targets(self, ref: Ref, to_type: str) -> dict[int, set[int]]:
        return self._links.get(ref, {}).get(to_type, {})

    def all_targets(self, ref: Ref) -> dict[str, dict[int, set[int]]]:
        return self._links.get(ref, {})

    def add(self, from_ref: Ref, to_ref: Ref, kind: AssociationKind) -> list[AssociationChange]:
        """Link two records; returns the changes made (empty when it already existed)."""
        self._check_single_parent(from_ref, to_ref, kind)
        kinds = [kind]
        if kind.primary:
            kinds.append(DEFAULT_KIND[(kind.from_type, kind.to_type)])
        changes: list[AssociationChange] = []
        if kind.primary:  # the contact's or deal's other primary company loses the label (a company has many)
            holder, company, holder_kind = (
                (from_ref, to_ref, kind) if kind.to_type == "companies" else (to_ref, from_ref, KINDS[kind.reverse_id])
            )
            changes += self._drop_other_primary(holder, company, holder_kind)
        for each in kinds:
            if self._set(from_ref, to_ref, each.type_id):
                self._set(to_ref, from_ref, each.reverse_id)
                changes.append(AssociationChange(from_ref, to_ref, each, removed=False))
        return changes

    def remove(self, from_ref: Ref, to_ref: Ref, type_ids: set[int] | None = None) -> list[AssociationChange]:
        """Unlink (all kinds, or those given); returns the changes made."""
        current = self._links.get(from_ref, {}).get(to_ref[0], {}).get(to_ref[1], set())
        changes = []
        for type_id in sorted(current if type_ids is None else current & type_ids):
            kind = KINDS[type_id]
            self._unset(from_ref, to_ref, type_id)
            self._unset(to_ref, from_ref, kind.reverse_id)
            changes.append(AssociationChange(from_ref, to_ref, kind, removed=True))
        return changes

    def drop_record(self, ref: Ref) -> list[AssociationChange]:
        """Remove every association of a record (archive)."""
        changes = []
        for to_type, targets in list(self._links.get(ref, {}).items()):
            for to_id in list(targets):
                changes += self.remove(ref, (to_type, to_id))
        self._links.pop(ref, None)
        return changes

    def dump(self) -> list[list[Any]]:
        return [
            [from_ref[0], from_ref[1], to_type, to_id, sorted(type_ids)]
            for from_ref, by_type in self._links.items()
            for to_type, targets in by_type.items()
            for to_id, type_ids in targets.items()
        ]

    def load(self, rows: list[list[Any]]) -> None:
        self._links.clear()
        for from_type, from_id, to_type, to_id, type_ids in rows:
            for type_id in type_ids:
                self._set((str(from_type), int(from_id)), (str(to_type), int(to_id)), int(type_id))

    def _set(self, from_ref: Ref, to_ref: Ref, type_id: int) -> bool:
        type_ids = self._links.setdefault(from_ref, {}).setdefault(to_ref[0], {}).setdefault(to_ref[1], set())
        if type_id in type_ids:
            return False
        type_ids.add(type_id)
        return True

    def _unset(self, from_ref: Ref, to_ref: Ref, type_id: int) -> None:
        targets = self._links.get(from_ref, {}).get(to_ref[0], {})
        type_ids = targets.get(to_ref[1])
        if type_ids is None:
            return
        type_ids.discard(type_id)
        if not type_ids:
            del targets[to_ref[1]]

    def _drop_other_primary(self, from_ref: Ref, to_ref: Ref, kind: AssociationKind) -> list[AssociationChange]:
        changes = []
        for other_id, type_ids in list(self.targets(from_ref, kind.to_type).items()):
            if other_id != to_ref[1] and kind.type_id in type_ids:
                changes += self.remove(from_ref, (kind.to_type, other_id), {kind.type_id})
        return changes

    def _check_single_parent(self, from_ref: Ref, to_ref: Ref, kind: AssociationKind) -> None:
        line_item, parent = (to_ref, from_ref) if kind.to_type == "line_items" else (from_ref, to_ref)
        if line_item[0] != "line_items" or parent[0] not in LINE_ITEM_PARENTS:
            return
        others = [(t, i) for t in LINE_ITEM_PARENTS for i in self.targets(line_item, t) if (t, i) != parent]
        if others:
            other_type, other_id = others[0]
            raise HubSpotError(
                400, "VALIDATION_ERROR",
                f"line item {line_item[1]} is already associated with {other_type[:-1]} {other_id}; "
                "a line item can belong to only one deal or invoice",
            )  # fmt: skip

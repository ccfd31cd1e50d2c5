"""One QBO company (realm) in memory: entities by type and id, the indexes the uniqueness rules and queries need,
tombstones of deleted transactions (for CDC), payment applications, and remembered `requestid` answers.

Every lookup a request makes is a dict access; only queries and CDC scan one entity type.
"""

from __future__ import annotations

import collections
import dataclasses
from decimal import Decimal
from typing import Any

from hsqbo_sandbox.qbo._company import CompanySettings

# URL segment (lower case, as Intuit's reference uses) -> entity name
ENTITIES = {name.lower(): name for name in ("Customer", "Item", "Invoice", "Payment", "Account", "TaxCode", "TaxRate")}
WRITABLE = frozenset({"Customer", "Item", "Invoice", "Payment"})
NAME_LISTS = frozenset({"Customer", "Item", "Account", "TaxCode", "TaxRate"})  # carry Active; queries hide inactive
CDC_ENTITIES = frozenset({"Customer", "Item", "Invoice", "Payment", "Account"})  # Intuit excludes TaxCode/TaxRate
REMEMBERED_REQUEST_IDS = 100_000  # per realm; Intuit does not document how long it remembers them


@dataclasses.dataclass(slots=True)
class Record:
    data: dict[str, Any]  # the entity exactly as the API returns it
    created: float  # whole epoch seconds
    updated: float


class Realm:
    def __init__(self, realm_id: str, company_name: str) -> None:
        self.realm_id = realm_id
        self.company_name = company_name
        self.company = CompanySettings()  # home currency, multicurrency, exchange rates, time zone
        self.records: dict[str, dict[str, Record]] = {name: {} for name in ENTITIES.values()}
        self.deleted: dict[str, dict[str, float]] = {name: {} for name in ENTITIES.values()}
        self.next_ids: dict[str, int] = {name: 1 for name in ENTITIES.values()}
        self.display_names: dict[str, str] = {}  # casefolded Customer DisplayName -> Id
        self.item_names: dict[str, str] = {}  # casefolded Item Name -> Id
        self.doc_numbers: dict[str, str] = {}  # Invoice DocNumber -> Id
        self.next_doc_number = 1001
        self.applications: dict[str, dict[str, Decimal]] = {}  # Payment Id -> {Invoice Id: amount applied}
        self.paid_by: dict[str, set[str]] = collections.defaultdict(set)  # Invoice Id -> Payment Ids applied
        self.replies: collections.OrderedDict[str, tuple[int, bytes]] = collections.OrderedDict()

    def new_id(self, entity: str) -> str:
        entity_id = self.next_ids[entity]
        self.next_ids[entity] = entity_id + 1
        return str(entity_id)

    def get(self, entity: str, entity_id: str) -> Record | None:
        return self.records[entity].get(entity_id)

    def applied_to(self, invoice_id: str) -> Decimal:
        applied = (self.applications[payment_id][invoice_id] for payment_id in self.paid_by.get(invoice_id, ()))
        return sum(applied, Decimal(0))

    def remember_reply(self, request_id: str, status: int, body: bytes) -> None:
        self.replies[request_id] = (status, body)
        if len(self.replies) > REMEMBERED_REQUEST_IDS:
            self.replies.popitem(last=False)

    def summary(self) -> dict[str, Any]:
        return {
            "realm_id": self.realm_id,
            "company_name": self.company_name,
            "counts": {entity: len(records) for entity, records in self.records.items()},
        }

    def dump(self) -> dict[str, Any]:
        return {
            "realm_id": self.realm_id,
            "company_name": self.company_name,
            "company": self.company.to_dict(),
            "records": {
                entity: {entity_id: [r.data, r.created, r.updated] for entity_id, r in records.items()}
                for entity, records in self.records.items()
            },
            "deleted": self.deleted,
            "next_ids": self.next_ids,
            "next_doc_number": self.next_doc_number,
            "applications": self.applications,
        }

    @classmethod
    def load(cls, state: dict[str, Any]) -> Realm:
        realm = cls(state["realm_id"], state["company_name"])
        realm.company = CompanySettings(**state.get("company", {}))
        for entity, records in state["records"].items():
            realm.records[entity] = {
                i: Record(_exact(data), created, updated) for i, (data, created, updated) in records.items()
            }
        realm.deleted.update(state["deleted"])
        realm.next_ids.update(state["next_ids"])
        realm.next_doc_number = state["next_doc_number"]
        realm.applications = {payment_id: {invoice_id: _exact(amount) for invoice_id, amount in invoices.items()}
                              for payment_id, invoices in state["applications"].items()}  # fmt: skip
        for payment_id, invoices in realm.applications.items():
            for invoice_id in invoices:
                realm.paid_by[invoice_id].add(payment_id)
        for entity_id, record in realm.records["Customer"].items():
            realm.display_names[record.data["DisplayName"].casefold()] = entity_id
        for entity_id, record in realm.records["Item"].items():
            realm.item_names[record.data["Name"].casefold()] = entity_id
        for entity_id, record in realm.records["Invoice"].items():
            if record.data.get("DocNumber"):
                realm.doc_numbers.setdefault(record.data["DocNumber"], entity_id)
        return realm


def _exact(value: Any) -> Any:
    """A dumped entity with its amounts Decimal again: a state dump is read with floats (its timestamps are), and
    every non-integer number in a QBO entity is an XSD decimal; a float read back from its shortest form is the
    number that was written (at most 15 significant digits, as Intuit allows)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact(item) for item in value]
    return value

"""One HubSpot portal's CRM data: records per object type, unique-value indexes, merges, associations and the
computed properties (line item `amount`, invoice totals and status), with every change reported to a listener
(the webhook events are built from these, `_events.py`).

Decisions where the docs are silent (the stricter reading):
- Record ids are unique across object types within a portal, so a contact id used as a company id is a 404.
- Unique-value collisions: creating a contact whose email exists is 409 CONFLICT "Contact already exists. Existing
  ID: N" [3P]; any other collision (update, or a custom unique property) is 400 VALIDATION_ERROR "Cannot set
  PropertyValueCoordinates{...} on X. Y already has that value." [3P]. Emails are stored lower-cased.
- A merged-away id stays readable and writable as an alias of the surviving record (reads and batch results carry
  the survivor's id). The survivor keeps its values; empty ones are filled from the merged record; the merged
  email moves to `hs_additional_emails` and stays unique.
- Invoices: status starts `draft`; opening a billable invoice needs a contact and a line item (INV); `paid` is set
  by the emulator when associated payments cover the amount (or by a write when `hs_invoice_billable` is
  "false"); `voided` is final; only drafts can be deleted unless the portal allows deleting open invoices.
  `hs_subtotal`, `hs_amount_billed`, `hs_amount_paid`, `hs_balance_due` and `hs_number` are computed, never
  written; their changes are reported with changeSource CALCULATED.
- Amounts: a line item's `hs_total_discount` is quantity x `discount` (a per-unit amount) plus
  `hs_discount_percentage` percent of quantity x price, its `amount` quantity x price less that (line item guide;
  the percent applies to the line's total, as HubSpot's knowledge base shows). The invoice's `hs_subtotal` is the
  sum of its line items' amounts; `hs_amount_billed` applies its discounts, then fees, then taxes (INV), each
  PERCENT one to the running total. Every computed amount is rounded half away from zero to the cent: HubSpot
  documents neither its rounding mode nor the base of a second percent, so this is our reading; hsqbo never relies
  on it (it reads back what HubSpot computed and compares).
- Payments without `hs_latest_status` are `succeeded` (records of revenue received elsewhere, PAY).
- Deals without `pipeline` are in the `default` pipeline (deals guide).
- Currencies: a record's currency property (`hs_currency`, `hs_currency_code`, `hs_line_item_currency_code`,
  `deal_currency_code`) must be the account's company currency or one of its additional currencies (account-info);
  any other is refused as INVALID_OPTION, as for any enumeration value the account does not offer.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import decimal
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox.hubspot._associations import (
    KINDS,
    AssociationChange,
    AssociationIndex,
    AssociationKind,
    Ref,
)
from hsqbo_sandbox.hubspot._errors import HubSpotError, invalid_property_values, not_found, validation_error
from hsqbo_sandbox.hubspot._schema import ADJUSTMENTS, BY_NAME, OBJECT_TYPES, ObjectType, PropertyDef
from hsqbo_sandbox.hubspot._values import InvalidValue, iso_ms, normalize
from shared.money import round_money

HISTORY_DEPTH = 20
ADJUSTMENT_NAMES = tuple(object_type.name for object_type in ADJUSTMENTS)
_CASE_FOLDED_UNIQUE = frozenset({"email", "hs_additional_emails"})  # unique values compared ignoring case
CURRENCY_PROPERTIES = frozenset({"hs_currency", "hs_currency_code", "hs_line_item_currency_code", "deal_currency_code"})


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, as HubSpot reports it (`changeSource`, `sourceId`, property history `sourceType`)."""

    change_source: str  # INTEGRATION | CRM_UI | CALCULATED
    source_id: str | None
    user_id: int | None = None


CALCULATED = Actor("CALCULATED", None)

ChangeKind = Literal["creation", "propertyChange", "deletion", "merge", "restore", "associationChange"]


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    object_type: ObjectType
    object_id: int
    actor: Actor
    occurred_ms: int
    property_name: str | None = None
    property_value: str | None = None
    merged_ids: tuple[int, ...] = ()
    primary_id: int | None = None
    properties_moved: int = 0
    association: AssociationChange | None = None


@dataclasses.dataclass(slots=True)
class Record:
    id: int
    object_type: ObjectType
    properties: dict[str, str]
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None
    history: dict[str, list[tuple[str, int, Actor]]] = dataclasses.field(default_factory=dict)

    @property
    def archived(self) -> bool:
        return self.archived_ms is not None


def _money(value: decimal.Decimal) -> str:
    normalized = round_money(value)  # half away from zero (stricter reading: HubSpot does not document its rounding)
    return str(normalized.to_integral_value()) if normalized == normalized.to_integral_value() else str(normalized)


def _number(value: str | None) -> decimal.Decimal:
    return decimal.Decimal(value) if value else decimal.Decimal(0)


class Portal:
    def __init__(
        self,
        portal_id: int,
        clock: SandboxClock,
        listener: Callable[[Change], None],
        *,
        first_record_id: int = 100_001,
        allow_open_invoice_delete: bool = False,
    ) -> None:
        self.portal_id = portal_id
        self.clock = clock
        self.listener = listener
        self.allow_open_invoice_delete = allow_open_invoice_delete
        # Account settings (account-info): records' currencies must be one of these; HubSpot's example zone.
        self.company_currency = "USD"
        self.additional_currencies: tuple[str, ...] = ()
        self.time_zone = "US/Eastern"
        self.properties: dict[str, dict[str, PropertyDef]] = {
            object_type.name: {prop.name: prop for prop in object_type.properties} for object_type in OBJECT_TYPES
        }
        self.associations = AssociationIndex()
        self._live: dict[str, dict[int, Record]] = {object_type.name: {} for object_type in OBJECT_TYPES}
        self._archived: dict[str, dict[int, Record]] = {object_type.name: {} for object_type in OBJECT_TYPES}
        self._order: dict[str, list[int]] = {object_type.name: [] for object_type in OBJECT_TYPES}
        self._unique: dict[tuple[str, str], dict[str, int]] = {}
        self._aliases: dict[int, int] = {}  # merged-away id -> surviving id
        self._next_id = first_record_id
        self._invoice_numbers = 1000
        self._backdated_seconds = 0.0

    # time

    def now_ms(self) -> int:
        return int((self.clock.now() - self._backdated_seconds) * 1000)

    def clock_utc_offset(self) -> int:
        """The portal's time zone's UTC offset now, in milliseconds."""
        moment = dt.datetime.fromtimestamp(self.clock.now(), zoneinfo.ZoneInfo(self.time_zone))
        offset = moment.utcoffset()
        return int(offset.total_seconds() * 1000) if offset is not None else 0

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset((self.company_currency, *self.additional_currencies))

    @contextlib.contextmanager
    def backdated(self, seconds: float) -> Iterator[None]:
        """Records made inside are stamped `seconds` in the past (seeding an account whose data predates us)."""
        self._backdated_seconds = seconds
        try:
            yield
        finally:
            self._backdated_seconds = 0.0

    # property definitions

    def define_property(self, object_type: ObjectType, prop: PropertyDef) -> PropertyDef:
        defined = self.properties[object_type.name]
        if prop.name in defined:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{prop.name}' already exists.")
        defined[prop.name] = prop
        return prop

    def property_def(self, object_type: ObjectType, name: str) -> PropertyDef | None:
        return self.properties[object_type.name].get(name)

    # reading

    def live(self, object_type: ObjectType) -> dict[int, Record]:
        return self._live[object_type.name]

    def archived_records(self, object_type: ObjectType) -> dict[int, Record]:
        return self._archived[object_type.name]

    def ordered_ids(self, object_type: ObjectType) -> list[int]:
        return self._order[object_type.name]

    def find(self, object_type: ObjectType, key: str, id_property: str | None = None, *,
             archived: bool = False) -> Record | None:  # fmt: skip
        """A record by id (following merges) or by a unique property value; None when absent."""
        if archived:
            return self._archived[object_type.name].get(int(key)) if key.isdigit() else None
        if id_property in (None, "hs_object_id"):
            if not key.isdigit():
                return None
            record_id = int(key)
            record_id = self._aliases.get(record_id, record_id)
            return self._live[object_type.name].get(record_id)
        assert id_property is not None
        prop = self.property_def(object_type, id_property)
        if prop is None or not prop.has_unique_value:
            raise validation_error(f"{id_property} is not a unique property of {object_type.name}; "
                                   "idProperty must name a property with unique values")  # fmt: skip
        found = self._unique.get((object_type.name, id_property), {}).get(self._unique_key(id_property, key))
        return self._live[object_type.name].get(found) if found is not None else None

    def get(self, object_type: ObjectType, key: str, id_property: str | None = None) -> Record:
        record = self.find(object_type, key, id_property)
        if record is None:
            raise not_found(f"No {object_type.singular} with {id_property or 'id'} {key} exists")
        return record

    def ref_exists(self, ref: Ref) -> bool:
        return ref[1] in self._live[ref[0]]

    def resolve_id(self, record_id: int) -> int:
        return self._aliases.get(record_id, record_id)

    def ids_by_value(self, object_type: ObjectType, name: str, value: str) -> set[int] | None:
        """From an index, a superset of the live records whose `name` equals `value` ignoring case: for
        `hs_object_id` (`value` as plain digits) and the unique properties indexed ignoring case (email; contacts
        holding `value` among their additional emails are in the set too). None when no index answers for `name`."""
        if name == "hs_object_id":
            return {int(value)} & self._live[object_type.name].keys() if value.isascii() and value.isdigit() else set()
        prop = self.property_def(object_type, name)
        if prop is None or not prop.has_unique_value or name not in _CASE_FOLDED_UNIQUE:
            return None
        owner = self._unique.get((object_type.name, name), {}).get(value.lower())
        return {owner} if owner is not None else set()

    # writing

    def check_create(
        self, object_type: ObjectType, raw: dict[str, Any], associations: Iterable[tuple[Ref, AssociationKind]] = ()
    ) -> dict[str, str]:
        """The values a create would store; raises what the create would raise, changes nothing."""
        values = self._validate(object_type, raw)
        missing_all = [name for name in object_type.required_all if not values.get(name)]
        if missing_all or (object_type.required_any and not any(values.get(n) for n in object_type.required_any)):
            names = missing_all or list(object_type.required_any)
            raise validation_error(
                f"Missing required properties for {object_type.singular}: {', '.join(names)}",
                errors=[{"message": f"{name} is required", "code": "REQUIRED_PROPERTY", "in": name}
                        for name in names],
            )  # fmt: skip
        for ref, _kind in associations:
            if not self.ref_exists(ref):
                raise validation_error(f"{ref[0]} {ref[1]} to associate with does not exist",
                                       sub_category="crm.associations.INVALID_OBJECT_IDS")  # fmt: skip
        set_values = {name: value for name, value in values.items() if value is not None}
        self._check_unique(object_type, self._next_id, set_values, creating=True)
        return set_values

    def check_update(self, record: Record, raw: dict[str, Any]) -> dict[str, str | None]:
        """The values an update would change; raises what the update would raise, changes nothing."""
        values = self._validate(record.object_type, raw)
        changed = {name: value for name, value in values.items() if record.properties.get(name) != value}
        self._check_unique(record.object_type, record.id, changed, creating=False)
        if "hs_invoice_status" in changed:
            self._check_invoice_status(record, changed["hs_invoice_status"], values)
        return changed

    def create(
        self,
        object_type: ObjectType,
        raw: dict[str, Any],
        actor: Actor,
        *,
        associations: Iterable[tuple[Ref, AssociationKind]] = (),
    ) -> Record:
        links = list(associations)
        set_values = self.check_create(object_type, raw, links)
        record_id = self._allocate_id()
        now = self.now_ms()
        set_values.update(self._creation_defaults(object_type, set_values, now))
        record = Record(record_id, object_type, {}, now, now)
        record.properties.update({"hs_object_id": str(record_id), object_type.created_property: iso_ms(now),
                                  object_type.modified_property: iso_ms(now)})  # fmt: skip
        for name, value in set_values.items():
            self._put(record, name, value, now, actor)
        self._live[object_type.name][record_id] = record
        self._order[object_type.name].append(record_id)  # ids only grow, so the list stays sorted
        self._index(record)
        self._emit(Change("creation", object_type, record_id, actor, now))
        for name, value in set_values.items():
            self._emit(Change("propertyChange", object_type, record_id, actor, now, name, value))
        self._apply_derived(record, actor)
        for ref, kind in links:
            self.associate((object_type.name, record_id), ref, kind, actor)
        return record

    def update(self, record: Record, raw: dict[str, Any], actor: Actor) -> Record:
        changed = self.check_update(record, raw)
        if not changed:
            return record
        self._write(record, changed, actor)
        self._apply_derived(record, actor)
        return record

    def archive(self, record: Record, actor: Actor) -> None:
        object_type = record.object_type
        if object_type.name == "invoices":
            status = record.properties.get("hs_invoice_status")
            if status != "draft" and not (status == "open" and self.allow_open_invoice_delete):
                raise validation_error(f"invoice {record.id} is {status}; only draft invoices can be deleted")
        now = self.now_ms()
        for change in self.associations.drop_record((object_type.name, record.id)):
            self._emit_association(change, actor, now)
            self._refresh_invoices_near(change.to_ref)
        self._unindex(record)
        del self._live[object_type.name][record.id]
        self._remove_order(object_type, record.id)
        record.archived_ms = now
        self._archived[object_type.name][record.id] = record
        self._emit(Change("deletion", object_type, record.id, actor, now))

    def restore(self, object_type: ObjectType, record_id: int, actor: Actor) -> Record:
        record = self._archived[object_type.name].get(record_id)
        if record is None:
            raise not_found(f"No archived {object_type.singular} with id {record_id} exists")
        self._check_unique(object_type, record_id, record.properties, creating=False)
        del self._archived[object_type.name][record_id]
        record.archived_ms = None
        self._live[object_type.name][record_id] = record
        bisect.insort(self._order[object_type.name], record_id)
        self._index(record)
        self._emit(Change("restore", object_type, record_id, actor, self.now_ms()))
        return record

    def merge(self, object_type: ObjectType, primary_key: str, merged_key: str, actor: Actor) -> Record:
        if not object_type.mergeable:
            raise validation_error(f"{object_type.name} cannot be merged")
        primary = self.get(object_type, primary_key)
        merged = self.get(object_type, merged_key)
        if primary.id == merged.id:
            raise validation_error("Cannot merge a record with itself")
        now = self.now_ms()
        moved = {
            name: value
            for name, value in merged.properties.items()
            if name not in object_type.system_properties and not primary.properties.get(name)
            and not self._is_read_only(object_type, name)
        }  # fmt: skip
        self._unindex(merged)
        if object_type.name == "contacts" and merged.properties.get("email"):
            extra = [e for e in primary.properties.get("hs_additional_emails", "").split(";") if e]
            extra.append(merged.properties["email"])
            moved.pop("email", None)
            moved["hs_additional_emails"] = ";".join(extra)
        merged_ids = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
        merged_ids.append(str(merged.id))
        moved["hs_merged_object_ids"] = ";".join(merged_ids)
        del self._live[object_type.name][merged.id]
        self._remove_order(object_type, merged.id)
        for alias, target in list(self._aliases.items()):
            if target == merged.id:
                self._aliases[alias] = primary.id
        self._aliases[merged.id] = primary.id
        for to_type, targets in list(self.associations.all_targets((object_type.name, merged.id)).items()):
            for to_id, type_ids in list(targets.items()):
                for type_id in sorted(type_ids):
                    self.associations.add((object_type.name, primary.id), (to_type, to_id), KINDS[type_id])
        self.associations.drop_record((object_type.name, merged.id))
        self._write(primary, moved, actor, emit=False)
        self._index(primary)
        self._emit(Change("merge", object_type, primary.id, actor, now, merged_ids=(merged.id,),
                          primary_id=primary.id, properties_moved=len(moved)))  # fmt: skip
        return primary

    def associate(self, from_ref: Ref, to_ref: Ref, kind: AssociationKind, actor: Actor) -> None:
        for ref in (from_ref, to_ref):
            if not self.ref_exists(ref):
                raise not_found(f"{ref[0]} {ref[1]} does not exist")
        now = self.now_ms()
        for change in self.associations.add(from_ref, to_ref, kind):
            self._emit_association(change, actor, now)
        self._refresh_invoices_near(from_ref)
        self._refresh_invoices_near(to_ref)

    def dissociate(self, from_ref: Ref, to_ref: Ref, actor: Actor, type_ids: set[int] | None = None) -> None:
        now = self.now_ms()
        for change in self.associations.remove(from_ref, to_ref, type_ids):
            self._emit_association(change, actor, now)
        self._refresh_invoices_near(from_ref)
        self._refresh_invoices_near(to_ref)

    # state

    def dump(self) -> dict[str, Any]:
        def record_state(record: Record) -> dict[str, Any]:
            return {"id": record.id, "properties": record.properties, "created_ms": record.created_ms,
                    "updated_ms": record.updated_ms, "archived_ms": record.archived_ms}  # fmt: skip

        return {
            "portal_id": self.portal_id,
            "next_id": self._next_id,
            "records": {
                name: [record_state(r) for r in (*self._live[name].values(), *self._archived[name].values())]
                for name in self._live
            },
            "custom_properties": {
                name: [dataclasses.asdict(p) for p in props.values() if not p.hubspot_defined]
                for name, props in self.properties.items()
            },
            "aliases": {str(k): v for k, v in self._aliases.items()},
            "associations": self.associations.dump(),
        }

    def load(self, state: dict[str, Any]) -> None:
        for object_type in OBJECT_TYPES:
            for fields in state.get("custom_properties", {}).get(object_type.name, []):
                fields["options"] = tuple(fields.get("options", ()))
                self.properties[object_type.name][fields["name"]] = PropertyDef(**fields)
            for item in state.get("records", {}).get(object_type.name, []):
                record = Record(item["id"], object_type, dict(item["properties"]), item["created_ms"],
                                item["updated_ms"], item["archived_ms"])  # fmt: skip
                if record.archived:
                    self._archived[object_type.name][record.id] = record
                else:
                    self._live[object_type.name][record.id] = record
                    self._index(record)
            self._order[object_type.name] = sorted(self._live[object_type.name])
        self._aliases = {int(k): v for k, v in state.get("aliases", {}).items()}
        self.associations.load(state.get("associations", []))
        self._next_id = max(self._next_id, state.get("next_id", 0))

    # internals: validation

    def _is_read_only(self, object_type: ObjectType, name: str) -> bool:
        prop = self.property_def(object_type, name)
        return prop is None or prop.read_only

    def _validate(self, object_type: ObjectType, raw: dict[str, Any]) -> dict[str, str | None]:
        if not isinstance(raw, dict):
            raise validation_error("properties must be an object of property names to values")
        values: dict[str, str | None] = {}
        issues: list[dict[str, Any]] = []
        for name, value in raw.items():
            prop = self.property_def(object_type, name)
            if prop is None:
                issues.append({"isValid": False, "message": f'Property "{name}" does not exist',
                               "error": "PROPERTY_DOESNT_EXIST", "name": name})  # fmt: skip
                continue
            if prop.read_only:
                issues.append({"isValid": False, "message": f'"{name}" is a read only property; its value cannot '
                               "be set.", "error": "READ_ONLY_VALUE", "name": name})  # fmt: skip
                continue
            try:
                normalized = normalize(prop, value)
            except InvalidValue as exc:
                issues.append({"isValid": False, "message": exc.message, "error": exc.code, "name": name})
                continue
            if name == "email" and normalized is not None:
                if "@" not in normalized or normalized.startswith("@") or normalized.endswith("@"):
                    issues.append({"isValid": False, "message": f"Email address {normalized} is invalid",
                                   "error": "INVALID_EMAIL", "name": name})  # fmt: skip
                    continue
                normalized = normalized.lower()
            if name in CURRENCY_PROPERTIES and normalized is not None and normalized not in self.currencies:
                issues.append({"isValid": False, "error": "INVALID_OPTION", "name": name,
                               "message": f"{normalized} was not one of the allowed options: "
                                          f"{sorted(self.currencies)} (the account's currencies)"})  # fmt: skip
                continue
            values[name] = normalized
        if issues:
            raise invalid_property_values(issues)
        return values

    def _unique_key(self, name: str, value: str) -> str:
        return value.lower() if name in _CASE_FOLDED_UNIQUE else value

    def _unique_names(self, object_type: ObjectType) -> list[str]:
        return [p.name for p in self.properties[object_type.name].values() if p.has_unique_value]

    def _check_unique(self, object_type: ObjectType, record_id: int, values: dict[str, Any], *,
                      creating: bool) -> None:  # fmt: skip
        for name in self._unique_names(object_type):
            value = values.get(name)
            if not value:
                continue
            owner = self._unique.get((object_type.name, name), {}).get(self._unique_key(name, value))
            if owner is None or owner == record_id:
                continue
            if creating and object_type.name == "contacts" and name == "email":
                raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {owner}")
            raise validation_error(
                f"Cannot set PropertyValueCoordinates{{portalId={self.portal_id}, objectTypeId="
                f"{object_type.type_id}, propertyName={name}, value={value}}} on {record_id}. "
                f"{owner} already has that value.",
                errors=[{"message": f"{owner} already has that value.", "code": "UNIQUE_VALUE_CONFLICT", "in": name,
                         "context": {"id": [str(owner)]}}],
            )  # fmt: skip

    def _check_invoice_status(self, record: Record, status: str | None, values: dict[str, str | None]) -> None:
        current = record.properties.get("hs_invoice_status")
        billable = values.get("hs_invoice_billable", record.properties.get("hs_invoice_billable")) != "false"
        ref = ("invoices", record.id)
        if current == "voided":
            raise validation_error(f"invoice {record.id} is voided; a voided invoice cannot change status")
        if status is None:
            raise validation_error("hs_invoice_status cannot be cleared")
        complete = self.associations.targets(ref, "contacts") and self.associations.targets(ref, "line_items")
        if status == "open" and billable and not complete:
            raise validation_error(
                f"invoice {record.id} cannot be opened: it needs one associated contact and at least one line item"
            )
        if status == "paid" and billable and _number(record.properties.get("hs_balance_due")) > 0:
            raise validation_error(
                f"invoice {record.id} cannot be marked paid: associate payments that cover its balance due"
            )

    # internals: writing

    def _allocate_id(self) -> int:
        record_id = self._next_id
        self._next_id += 1
        return record_id

    def _creation_defaults(self, object_type: ObjectType, values: dict[str, str], now: int) -> dict[str, str]:
        if object_type.name == "invoices":
            self._invoice_numbers += 1
            return {
                "hs_invoice_status": values.get("hs_invoice_status", "draft"),
                "hs_invoice_billable": values.get("hs_invoice_billable", "true"),
                "hs_invoice_date": values.get("hs_invoice_date", iso_ms(now)),
                "hs_number": f"INV-{self._invoice_numbers}",
                "hs_amount_billed": "0",
                "hs_amount_paid": "0",
                "hs_balance_due": "0",
            }
        if object_type.name == "commerce_payments":
            return {"hs_latest_status": values.get("hs_latest_status", "succeeded")}
        if object_type.name == "deals":
            return {"pipeline": values.get("pipeline", "default")}
        return {}

    def _put(self, record: Record, name: str, value: str | None, now: int, actor: Actor) -> None:
        if value is None:
            record.properties.pop(name, None)
        else:
            record.properties[name] = value
        history = record.history.setdefault(name, [])
        history.insert(0, (value or "", now, actor))
        del history[HISTORY_DEPTH:]

    def _write(self, record: Record, changed: Mapping[str, str | None], actor: Actor, *, emit: bool = True) -> None:
        if not changed:
            return
        now = self.now_ms()
        self._unindex(record)
        for name, value in changed.items():
            self._put(record, name, value, now, actor)
        record.updated_ms = now
        record.properties[record.object_type.modified_property] = iso_ms(now)
        self._index(record)
        if emit:
            for name, value in changed.items():
                self._emit(Change("propertyChange", record.object_type, record.id, actor, now, name, value or ""))

    def _index(self, record: Record) -> None:
        for name in self._unique_names(record.object_type):
            value = record.properties.get(name)
            if value:
                self._unique.setdefault((record.object_type.name, name), {})[self._unique_key(name, value)] = record.id
        for email in record.properties.get("hs_additional_emails", "").split(";"):
            if email and record.object_type.name == "contacts":
                self._unique.setdefault(("contacts", "email"), {})[email.lower()] = record.id

    def _unindex(self, record: Record) -> None:
        for (type_name, name), index in self._unique.items():
            if type_name != record.object_type.name:
                continue
            values = [record.properties.get(name)]
            if name == "email":
                values += record.properties.get("hs_additional_emails", "").split(";")
            for value in values:
                if value and index.get(self._unique_key(name, value)) == record.id:
                    del index[self._unique_key(name, value)]

    def _remove_order(self, object_type: ObjectType, record_id: int) -> None:
        order = self._order[object_type.name]
        position = bisect.bisect_left(order, record_id)
        if position < len(order) and order[position] == record_id:
            del order[position]

    def _emit(self, change: Change) -> None:
        self.listener(change)

    def _emit_association(self, change: AssociationChange, actor: Actor, now: int) -> None:
        from_type = BY_NAME[change.from_ref[0]]
        self._emit(Change("associationChange", from_type, change.from_ref[1], actor, now, association=change))

    # internals: computed properties

    def _apply_derived(self, record: Record, actor: Actor) -> None:
        name = record.object_type.name
        if name == "line_items":
            quantity = _number(record.properties.get("quantity") or "1")
            gross = quantity * _number(record.properties.get("price"))
            discount = quantity * _number(record.properties.get("discount"))
            discount += gross * _number(record.properties.get("hs_discount_percentage")) / 100
            values = {"hs_total_discount": _money(discount), "amount": _money(gross - discount)}
            self._write(record, self._diff(record, values), CALCULATED)
            self._refresh_invoices_near(("line_items", record.id))
        elif name in ("commerce_payments", *ADJUSTMENT_NAMES):
            self._refresh_invoices_near((name, record.id))
        elif name == "invoices":
            self._refresh_invoice(record)

    def _diff(self, record: Record, values: dict[str, str]) -> dict[str, str | None]:
        return {name: value for name, value in values.items() if record.properties.get(name) != value}

    def _refresh_invoices_near(self, ref: Ref) -> None:
        if ref[0] == "invoices":
            invoice = self._live["invoices"].get(ref[1])
            if invoice is not None:
                self._refresh_invoice(invoice)
            return
        for invoice_id in list(self.associations.targets(ref, "invoices")):
            invoice = self._live["invoices"].get(invoice_id)
            if invoice is not None:
                self._refresh_invoice(invoice)

    def _refresh_invoice(self, invoice: Record) -> None:
        """Subtotal: the line items' amounts; then discounts, fees and taxes in that order (INV), each PERCENT of the
        running total rounded half away from zero to the cent (stricter reading), ties in `hs_sort_order`, then id."""
        ref = ("invoices", invoice.id)
        subtotal = sum(
            (_number(line.properties.get("amount"))
             for line in self._records(self._live["line_items"], self.associations.targets(ref, "line_items"))),
            decimal.Decimal(0),
        )  # fmt: skip
        billed = subtotal
        for sign, name in ((-1, "discounts"), (1, "fees"), (1, "taxes")):
            adjustments = sorted(
                self._records(self._live[name], self.associations.targets(ref, name)),
                key=lambda record: (_number(record.properties.get("hs_sort_order")), record.id),
            )
            for adjustment in adjustments:
                value = _number(adjustment.properties.get("hs_value"))
                if adjustment.properties.get("hs_type") == "PERCENT":
                    value = round_money(billed * value / 100)
                billed += sign * value
        payments = self._records(self._live["commerce_payments"], self.associations.targets(ref, "commerce_payments"))
        paid = sum(
            (_number(payment.properties.get("hs_initial_amount")) for payment in payments
             if payment.properties.get("hs_latest_status") in ("succeeded", "partially_refunded")),
            decimal.Decimal(0),
        )  # fmt: skip
        balance = billed - paid
        values = {"hs_subtotal": _money(subtotal), "hs_amount_billed": _money(billed), "hs_amount_paid": _money(paid),
                  "hs_balance_due": _money(balance)}  # fmt: skip
        status = invoice.properties.get("hs_invoice_status")
        if status == "open" and billed > 0 and balance <= 0:
            values["hs_invoice_status"] = "paid"
        elif status == "paid" and balance > 0 and invoice.properties.get("hs_invoice_billable") != "false":
            values["hs_invoice_status"] = "open"
        self._write(invoice, self._diff(invoice, values), CALCULATED)

    @staticmethod
    def _records(table: dict[int, Record], ids: Iterable[int]) -> Iterator[Record]:
        return (table[i] for i in ids if i in table)

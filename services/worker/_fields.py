"""Mapped fields: each synced object is compared in one canonical form (a dict of strings), whichever side it was
read from, so a value changed on one side can be told from an echo of our own write.

`merge` is the three-way merge against what both sides agreed on at the last sync: a field changed on one side only
takes that side's value; changed on both, the conflict winner's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from shared.syncconfig import ObjectSettings

Values = dict[str, str | None]


def text(value: Any) -> str | None:
    if value is None:
        return None
    cleaned = str(value).strip()
    return cleaned or None


def lower_text(value: Any) -> str | None:
    cleaned = text(value)
    return cleaned.lower() if cleaned else None


def number(value: Any) -> str | None:
    """ "6000.00", 6000 and "6000" are the same number: compare them as one canonical string."""
    cleaned = text(value)
    if cleaned is None:
        return None
    try:
        canonical = Decimal(cleaned).normalize()
    except InvalidOperation:
        return cleaned
    return format(canonical, "f")


@dataclasses.dataclass(frozen=True, slots=True)
class FieldMap:
    """One mapped field: its HubSpot property, its QBO field (dotted path) and how values compare."""

    name: str
    hubspot_property: str
    qbo_field: str
    canonical: Callable[[Any], str | None] = text
    qbo_value: Callable[[str], Any] = str  # a canonical value as the QBO field takes it (UnitPrice: a number)


def active_maps(defaults: Sequence[FieldMap], settings: ObjectSettings) -> list[FieldMap]:
    """The default mappings not switched off, plus the custom ones."""
    chosen = [m for m in defaults if settings.mappings.get(m.name, True)]
    chosen += [FieldMap(c.name, c.hubspot_property, c.qbo_field) for c in settings.custom_mappings]
    return chosen


def get_path(entity: Mapping[str, Any], path: str) -> Any:
    value: Any = entity
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def from_hubspot(maps: Iterable[FieldMap], properties: Mapping[str, str | None]) -> Values:
    return {m.name: m.canonical(properties.get(m.hubspot_property)) for m in maps}


def from_qbo(maps: Iterable[FieldMap], entity: Mapping[str, Any]) -> Values:
    return {m.name: m.canonical(get_path(entity, m.qbo_field)) for m in maps}


def to_hubspot(maps: Iterable[FieldMap], values: Values) -> dict[str, str]:
    """HubSpot properties for `values`; "" clears a property."""
    return {m.hubspot_property: values[m.name] or "" for m in maps if m.name in values}


def to_qbo(maps: Iterable[FieldMap], values: Values, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A QBO body setting `values`. An aggregate (BillAddr...) is sent whole, current fields kept, because a sparse
    update replaces a nested object instead of merging it."""
    body: dict[str, Any] = {}
    for m in maps:
        if m.name not in values:
            continue
        raw = values[m.name]
        value = m.qbo_value(raw) if raw is not None else ""
        head, _, rest = m.qbo_field.partition(".")
        if not rest:
            body[head] = value
            continue
        if head not in body:
            existing = (current or {}).get(head)
            body[head] = dict(existing) if isinstance(existing, Mapping) else {}
        target = body[head]
        *parents, leaf = rest.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return body


def merge(base: Mapping[str, str | None], hubspot: Values, qbo: Values, *, winner: str) -> Values:
    merged: Values = {}
    for name in hubspot.keys() | qbo.keys():
        ours, theirs, agreed = hubspot.get(name), qbo.get(name), base.get(name)
        if ours == theirs or theirs == agreed:
            merged[name] = ours
        elif ours == agreed:
            merged[name] = theirs
        else:
            merged[name] = ours if winner == "hubspot" else theirs
    return merged


def changed(target: Values, current: Values) -> Values:
    """The fields of `target` that differ from `current`."""
    return {name: value for name, value in target.items() if current.get(name) != value}


def content_hash(values: Mapping[str, str | None]) -> str:
    return hashlib.sha256(orjson.dumps(dict(values), option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]

"""CRM search (`POST /crm/v3/objects/{type}/search`): filters, one sort, paging and its limits (SEARCH).

- Filters in a group are ANDed, groups are ORed; at most 5 groups, 6 filters per group, 18 in all (the strictest
  of the documented limits); a body of at most 3,000 characters (checked by the endpoint); `limit` at most 200;
  `after` must be an integer offset; at most `result_cap` (10,000) results per query: paging is offered up to the
  cap and `after` at or past it is 400.
- Operators: EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN HAS_PROPERTY NOT_HAS_PROPERTY CONTAINS_TOKEN
  NOT_CONTAINS_TOKEN. Numbers and dates compare numerically (dates as epoch ms or ISO 8601), strings
  case-insensitively, except enumerations (case-sensitive) and IN/NOT_IN on strings, whose values must be
  lower-case to match (SEARCH). CONTAINS_TOKEN matches whole words, `*` as a wildcard.
- `associations.{type}` pseudo-properties match records associated with the given id.
- No sort: ascending by id. A property missing on a record sorts last.
- Archived records are never returned.

Cost: when every filter group has an EQ or IN filter on `hs_object_id` or on a unique property the store indexes
ignoring case (email), only the records the store's index names are checked (and sorted); otherwise every live
record of the type is.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hsqbo_sandbox.hubspot._errors import validation_error
from hsqbo_sandbox.hubspot._schema import ObjectType, PropertyDef, object_type_named
from hsqbo_sandbox.hubspot._store import Portal, Record
from hsqbo_sandbox.hubspot._values import filter_operand, sort_key

MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
MAX_LIMIT = 200
_TOKEN_SPLIT = re.compile(r"[^0-9a-z*]+")

Predicate = Callable[[Record], bool]


@functools.lru_cache(maxsize=65_536)  # stored values repeat across searches; tokenising dominates the cost
def _tokens(text: str) -> frozenset[str]:
    return frozenset(token for token in _TOKEN_SPLIT.split(text.lower()) if token)


def _token_matcher(pattern: str) -> Callable[[frozenset[str]], bool]:
    if "*" not in pattern:
        return lambda tokens: pattern in tokens
    regex = re.compile(fnmatch.translate(pattern))
    return lambda tokens: any(regex.match(token) for token in tokens)


def _compile_filter(portal: Portal, object_type: ObjectType, spec: Any) -> Predicate:
    if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
        raise validation_error("each filter needs a propertyName and an operator")
    name: str = spec["propertyName"]
    operator = spec.get("operator")
    if name.startswith("associations."):
        return _association_filter(portal, object_type, name.removeprefix("associations."), operator, spec)
    prop = portal.property_def(object_type, name)
    if prop is None:
        raise validation_error(f"There was a problem with the request: property {name} does not exist",
                               sub_category="crm.search.INVALID_PROPERTY")  # fmt: skip

    def value_of(record: Record) -> str | None:
        return record.properties.get(name)

    if operator == "HAS_PROPERTY":
        return lambda record: value_of(record) is not None
    if operator == "NOT_HAS_PROPERTY":
        return lambda record: value_of(record) is None
    if operator in ("IN", "NOT_IN"):
        wanted = {str(v) if prop.type in ("enumeration", "string") else str(filter_operand(prop, str(v)))
                  for v in _values(spec)}  # fmt: skip

        def member(record: Record) -> bool:
            value = value_of(record)
            if value is None:
                return False
            if prop.type == "string":
                return value.lower() in wanted  # stored values compare lower-cased; the query's are taken as sent
            if prop.type == "enumeration":
                return value in wanted
            return str(sort_key(prop, value)) in wanted

        return member if operator == "IN" else (lambda record: value_of(record) is not None and not member(record))
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        matchers = [_token_matcher(pattern) for pattern in _tokens(str(spec.get("value", "")))]

        def contains(record: Record) -> bool:
            value = value_of(record)
            if value is None:
                return False
            tokens = _tokens(value)
            return all(matcher(tokens) for matcher in matchers)

        return contains if operator == "CONTAINS_TOKEN" else (lambda record: not contains(record))
    return _comparison(prop, operator, spec, value_of)


def _values(spec: dict[str, Any]) -> list[Any]:
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise validation_error(f"{spec.get('operator')} needs a non-empty `values` list")
    return values


def _comparison(
    prop: PropertyDef, operator: Any, spec: dict[str, Any], value_of: Callable[[Record], str | None]
) -> Predicate:
    def operand(key: str) -> tuple[int, Decimal | str]:
        raw = spec.get(key)
        if raw is None:
            raise validation_error(f"{operator} on {prop.name} needs `{key}`")
        parsed = filter_operand(prop, str(raw)) if prop.type != "enumeration" else (1, str(raw))
        if parsed is None:
            raise validation_error(f"{raw} is not a valid value to compare with {prop.name}")
        return parsed

    def stored(record: Record) -> tuple[int, Decimal | str] | None:
        value = value_of(record)
        if value is None:
            return None
        return sort_key(prop, value) if prop.type != "enumeration" else (1, value)

    low = operand("value")
    if operator == "BETWEEN":
        high = operand("highValue")
        return lambda r: (s := stored(r)) is not None and low <= s <= high
    comparisons: dict[str, Callable[[tuple[int, Decimal | str], tuple[int, Decimal | str]], bool]] = {
        "EQ": lambda s, v: s == v,
        "NEQ": lambda s, v: s != v,
        "LT": lambda s, v: s < v,
        "LTE": lambda s, v: s <= v,
        "GT": lambda s, v: s > v,
        "GTE": lambda s, v: s >= v,
    }
    compare = comparisons.get(str(operator))
    if compare is None:
        raise validation_error(f"{operator} is not a supported filter operator")
    if operator == "NEQ":
        return lambda r: (s := stored(r)) is None or compare(s, low)
    return lambda r: (s := stored(r)) is not None and compare(s, low)


def _association_filter(portal: Portal, object_type: ObjectType, to_type: str, operator: Any,
                        spec: dict[str, Any]) -> Predicate:  # fmt: skip
    target = object_type_named(to_type)
    if target is None or operator not in ("EQ", "IN"):
        raise validation_error(f"associations.{to_type} supports EQ and IN on a known object type")
    raw_ids = [spec.get("value")] if operator == "EQ" else _values(spec)
    ids = {portal.resolve_id(int(str(v))) for v in raw_ids if str(v).isdigit()}
    return lambda record: bool(ids & portal.associations.targets((object_type.name, record.id), target.name).keys())


def _indexed_ids(portal: Portal, object_type: ObjectType, spec: dict[str, Any]) -> set[int] | None:
    """A superset of the records an (already compiled, so valid) EQ or IN filter can match, from the store's
    indexes; None when the filter has to be checked on every record."""
    operator, name = spec.get("operator"), spec["propertyName"]
    if operator not in ("EQ", "IN") or name.startswith("associations."):
        return None
    raw = [spec["value"]] if operator == "EQ" else spec["values"]
    if name == "hs_object_id":  # compared as a number: "7.0" and "07" match record 7
        operands = (filter_operand(portal.property_def(object_type, name), str(value)) for value in raw)
        keys = [str(int(number)) for operand in operands if operand is not None
                and isinstance(number := operand[1], Decimal) and number == number.to_integral_value()]  # fmt: skip
    else:
        keys = [str(value) for value in raw]
    found: set[int] = set()
    for key in keys:
        ids = portal.ids_by_value(object_type, name, key)
        if ids is None:
            return None
        found |= ids
    return found


def _candidate_ids(portal: Portal, object_type: ObjectType, groups: list[list[dict[str, Any]]]) -> set[int] | None:
    """The records any group can match when each group has an indexed filter (its narrowest one counts, as the
    group's filters are ANDed); None when some group needs every record checked."""
    if not groups:
        return None
    candidates: set[int] = set()
    for specs in groups:
        indexed = [ids for spec in specs if (ids := _indexed_ids(portal, object_type, spec)) is not None]
        if not indexed:
            return None
        candidates |= min(indexed, key=len)
    return candidates


def _query_predicate(portal: Portal, object_type: ObjectType, query: str) -> Predicate:
    """Free-text `query`: every word is a prefix of a word in one of the type's default searchable properties."""
    words = _tokens(query)
    searchable = [n for n in (*object_type.default_properties, "hs_sku", "domain", "phone") if
                  portal.property_def(object_type, n)]  # fmt: skip

    def matches(record: Record) -> bool:
        tokens = [t for n in searchable for t in _tokens(record.properties.get(n, ""))]
        return all(any(t.startswith(w) for t in tokens) for w in words)

    return matches


def search(portal: Portal, object_type: ObjectType, body: Any, *, result_cap: int) -> tuple[list[Record], int, int]:
    """(page of records, total matches, offset of the next page or -1)."""
    if not isinstance(body, dict):
        raise validation_error("The search request body must be a JSON object")
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise validation_error(f"There can be at most {MAX_GROUPS} filterGroups", sub_category="TOO_MANY_GROUPS")
    filter_count = 0
    compiled: list[list[Predicate]] = []
    specs: list[list[dict[str, Any]]] = []
    for group in groups:
        filters = group.get("filters", []) if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation_error("each filterGroup needs a `filters` list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(f"A filterGroup can have at most {MAX_FILTERS_PER_GROUP} filters")
        filter_count += len(filters)
        compiled.append([_compile_filter(portal, object_type, spec) for spec in filters])
        specs.append(filters)
    if filter_count > MAX_FILTERS:
        raise validation_error(f"A search can have at most {MAX_FILTERS} filters in all")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LIMIT:
        raise validation_error(f"limit must be an integer from 0 to {MAX_LIMIT}")
    after_raw = body.get("after", "0") or "0"
    if not str(after_raw).isdigit():
        raise validation_error(f"after must be an integer offset, got {after_raw!r}")
    after = int(str(after_raw))
    if after >= result_cap:
        raise validation_error(
            f"Paging past {result_cap} results is not allowed; narrow the query (e.g. hs_lastmodifieddate GTE the "
            "last value seen) instead",
            sub_category="crm.search.PAGINATION_LIMIT_EXCEEDED",
        )
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise validation_error("Only one sort is allowed")
    query = body.get("query")
    predicates: list[Predicate] = [] if not isinstance(query, str) or not query else [
        _query_predicate(portal, object_type, query)]  # fmt: skip

    def wanted(record: Record) -> bool:
        if not all(p(record) for p in predicates):
            return False
        return not compiled or any(all(f(record) for f in group) for group in compiled)

    live = portal.live(object_type)
    candidates = _candidate_ids(portal, object_type, specs)
    ids = portal.ordered_ids(object_type) if candidates is None else sorted(candidates)
    matches = [record for i in ids if (record := live.get(i)) is not None and wanted(record)]
    if sorts:
        matches = _sorted(portal, object_type, matches, sorts[0])
    # A cursor at the cap is still offered, and then refused: that is how a client learns it hit the cap.
    page_end = min(after + limit, len(matches), result_cap)
    next_after = page_end if page_end < len(matches) and limit > 0 else -1
    return matches[after:page_end], len(matches), next_after


def _sorted(portal: Portal, object_type: ObjectType, records: list[Record], spec: Any) -> list[Record]:
    if isinstance(spec, str):
        spec = {"propertyName": spec.lstrip("-"), "direction": "DESCENDING" if spec.startswith("-") else "ASCENDING"}
    if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
        raise validation_error("a sort needs a propertyName")
    name = spec["propertyName"]
    descending = spec.get("direction", "ASCENDING") == "DESCENDING"
    prop = portal.property_def(object_type, name)
    present = [r for r in records if r.properties.get(name) is not None]
    missing = [r for r in records if r.properties.get(name) is None]
    present.sort(key=lambda r: (sort_key(prop, r.properties[name]), r.id), reverse=descending)
    return present + missing

"""The subset of QBO's query language real clients send, parsed by a small tokenizer and evaluated by a scan:

    SELECT * | COUNT(*) | Field[, Field...] FROM Entity
      [WHERE cond [AND cond ...]]      cond: Field (= | != | < | > | <= | >=) literal
                                             Field IN (literal, ...) | Field LIKE 'pattern%'
      [ORDER BY Field [ASC|DESC][, ...]] [STARTPOSITION n] [MAXRESULTS n]

Keywords and field names are case-insensitive (`Metadata.LastUpdatedTime` works), there is no OR (QBO has none),
MAXRESULTS is at most 1000 (default 100), STARTPOSITION is 1-based. String comparisons ignore case, like QBO's.
Fields are dotted paths; a reference (`CustomerRef`) compares by its value; MetaData times compare as instants,
so a date or any offset works. Name-list entities (Customer, Item, Account...) return only active records unless
the query mentions `Active`, as QBO does.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from hsqbo_sandbox.qbo import _errors as errors
from hsqbo_sandbox.qbo._store import ENTITIES, NAME_LISTS, Record
from hsqbo_sandbox.qbo._timestamps import parse_time

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
TIME_FIELDS = {"metadata.lastupdatedtime": "updated", "metadata.createtime": "created"}

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>)"
    r"|(?P<punct>[(),*])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_KEYWORDS = frozenset({"select", "from", "where", "and", "in", "like", "order", "orderby", "by", "asc", "desc",
                       "startposition", "maxresults", "count"})  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string | number | op | punct | word | keyword
    text: str
    value: Any


@dataclasses.dataclass(slots=True)
class Condition:
    field: str  # lower-cased dotted path
    op: str  # = != < > <= >= in like
    values: list[Any]


@dataclasses.dataclass(slots=True)
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None  # None: *
    conditions: list[Condition] = dataclasses.field(default_factory=list)
    order: list[tuple[str, bool]] = dataclasses.field(default_factory=list)  # (field, descending)
    start: int = 1
    max_results: int = DEFAULT_RESULTS


def _tokenize(text: str) -> list[Token]:
    tokens, position, text = [], 0, text.strip().rstrip(";")
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise errors.query_parse_error(f"Encountered an unexpected character at column {position + 1}")
        position = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "string":
            tokens.append(Token(kind, raw, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind == "number":
            tokens.append(Token(kind, raw, Decimal(raw) if "." in raw else int(raw)))  # exact, as amounts are
        elif kind == "word" and raw.lower() in _KEYWORDS:
            tokens.append(Token("keyword", raw.lower(), raw.lower()))
        elif kind == "word" and raw.lower() in ("true", "false"):
            tokens.append(Token("bool", raw, raw.lower() == "true"))
        else:
            tokens.append(Token(kind, raw, raw))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str | None = None, text: str | None = None) -> Token:
        token = self.peek()
        if token is None or (kind and token.kind != kind) or (text and token.text.lower() != text):
            found = f'"{token.text}"' if token else "<EOF>"
            raise errors.query_parse_error(f"Encountered {found} where {text or kind} was expected")
        self.position += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token is not None and token.text.lower() == text:
            self.position += 1
            return True
        return False

    def literal(self) -> Any:
        token = self.peek()
        if token is None or token.kind not in ("string", "number", "bool"):
            raise errors.query_parse_error(f"Encountered {token.text if token else '<EOF>'} where a value was expected")
        self.position += 1
        return token.value

    def parse(self) -> Query:
        self.take("keyword", "select")
        count = fields = None
        if self.accept("count"):
            self.take("punct", "(")
            self.take("punct", "*")
            self.take("punct", ")")
            count = True
        elif self.accept("*"):
            fields = None
        else:
            fields = [self.take("word").text]
            while self.accept(","):
                fields.append(self.take("word").text)
        self.take("keyword", "from")
        entity_word = self.take("word").text
        entity = ENTITIES.get(entity_word.lower())
        if entity is None:
            raise errors.query_invalid(f"unknown entity {entity_word}")
        query = Query(entity, count=bool(count), fields=fields)
        if self.accept("where"):
            query.conditions.append(self.condition())
            while self.accept("and"):
                query.conditions.append(self.condition())
        if self.accept("orderby") or (self.accept("order") and self.take("keyword", "by")):
            query.order.append(self.ordering())
            while self.accept(","):
                query.order.append(self.ordering())
        while (token := self.peek()) is not None:
            if token.text in ("startposition", "maxresults"):
                self.position += 1
                number = self.take("number").value
                if not isinstance(number, int) or number < 1:
                    raise errors.query_invalid(f"{token.text.upper()} must be a positive whole number")
                if token.text == "startposition":
                    query.start = number
                elif number > MAX_RESULTS:
                    raise errors.query_invalid(f"value {number} is too large. Max allowed value is {MAX_RESULTS}")
                else:
                    query.max_results = number
            else:
                raise errors.query_parse_error(f'Encountered "{token.text}" at the end of the query')
        return query

    def condition(self) -> Condition:
        field = self.take("word").text.lower()
        if self.accept("in"):
            self.take("punct", "(")
            values = [self.literal()]
            while self.accept(","):
                values.append(self.literal())
            self.take("punct", ")")
            return Condition(field, "in", values)
        if self.accept("like"):
            return Condition(field, "like", [self.literal()])
        return Condition(field, self.take("op").text, [self.literal()])

    def ordering(self) -> tuple[str, bool]:
        field = self.take("word").text.lower()
        if self.accept("desc"):
            return field, True
        self.accept("asc")
        return field, False


def parse(text: str) -> Query:
    return _Parser(text).parse()


_FIELD_NAMES: dict[str, str] = {}  # lower-cased field name -> its spelling in entities (one spelling per name)


def _lookup(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        key = _FIELD_NAMES.get(part)
        if key is None:
            key = next((k for k in value if k.lower() == part), None)
            if key is None:
                return None
            _FIELD_NAMES[part] = key
        value = value.get(key)
    if isinstance(value, dict) and "value" in value:
        return value["value"]  # a reference compares by its Id
    if isinstance(value, dict) and "Address" in value:
        return value["Address"]  # PrimaryEmailAddr is filterable by the address itself
    return value


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Decimal(value) if value.replace(".", "", 1).lstrip("-").isdigit() else value.casefold()
        except (ValueError, InvalidOperation):
            return value.casefold()
    return value


def _getter(field: str) -> Callable[[Record], Any]:
    if field in TIME_FIELDS:
        attribute = TIME_FIELDS[field]
        return lambda record: getattr(record, attribute)
    return lambda record: _comparable(_lookup(record.data, field))


def _predicate(condition: Condition) -> Callable[[Record], bool]:
    get = _getter(condition.field)
    if condition.field in TIME_FIELDS:
        try:
            values = [parse_time(str(value)) for value in condition.values]
        except ValueError:
            raise errors.query_invalid(f"{condition.values[0]!r} is not a date or date-time") from None
    else:
        values = [_comparable(value) for value in condition.values]
    if condition.op == "like":
        pattern = re.compile(
            "^" + ".*".join(re.escape(part) for part in str(condition.values[0]).casefold().split("%")) + "$"
        )
        return lambda record: isinstance(v := get(record), str) and pattern.match(v) is not None
    if condition.op == "in":
        return lambda record: get(record) in values
    target = values[0]
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    check = compare[condition.op]

    def matches(record: Record) -> bool:
        value = get(record)
        try:
            return value is not None and check(value, target)
        except TypeError:  # comparing a number field with a string literal, etc.
            return False

    return matches


def _sort(rows: list[Record], order: list[tuple[str, bool]]) -> None:
    """Rows arrive in Id order; stable sorts from the last ORDER BY field to the first keep Id as the tie-break.
    Missing values sort last ascending (first descending)."""
    for field, descending in reversed(order):
        get = _getter(field)

        def key(record: Record, get: Callable[[Record], Any] = get) -> tuple[bool, Any]:
            value = get(record)
            return value is None, value if value is not None else 0

        try:
            rows.sort(key=key, reverse=descending)
        except TypeError:  # values of mixed types: compare their text
            rows.sort(key=lambda record: (key(record)[0], str(key(record)[1])), reverse=descending)


def execute(
    query: Query, records: dict[str, Record], unique_indexes: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """The QueryResponse object (without the envelope) for `query` over one entity's records (by Id, in Id order).
    `unique_indexes` (lower-cased field -> casefolded value -> Id) narrow `=`/IN conditions to a few candidates."""
    conditions = list(query.conditions)
    if query.entity in NAME_LISTS and not any(c.field == "active" for c in conditions):
        conditions.append(Condition("active", "=", [True]))
    predicates = [_predicate(condition) for condition in conditions]
    candidates = _candidates(conditions, records, unique_indexes or {})
    matching = (r for r in candidates if all(p(r) for p in predicates))
    if query.count:
        return {"totalCount": sum(1 for _ in matching)}
    end = query.start - 1 + query.max_results
    if query.order:
        rows = list(matching)
        _sort(rows, query.order)
    else:  # already in Id order: stop at the end of the page
        rows = list(itertools.islice(matching, end))
    page = rows[query.start - 1 : end]
    if not page:
        return {}
    entities = [r.data for r in page] if query.fields is None else [_project(r.data, query.fields) for r in page]
    return {query.entity: entities, "startPosition": query.start, "maxResults": len(page)}


def _candidates(
    conditions: list[Condition], records: dict[str, Record], unique_indexes: dict[str, dict[str, str]]
) -> Iterable[Record]:
    for condition in conditions:
        if condition.op not in ("=", "in"):
            continue
        if condition.field == "id":
            ids = {str(value) for value in condition.values}
        elif condition.field in unique_indexes:
            index = unique_indexes[condition.field]
            ids = {index[key] for value in condition.values if (key := str(value).casefold()) in index}
        else:
            continue
        return [records[i] for i in sorted(ids, key=lambda i: int(i) if i.isdigit() else 0) if i in records]
    return records.values()


def _project(data: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    wanted = {field.split(".")[0].lower() for field in fields} | {"id"}
    return {**{key: value for key, value in data.items() if key.lower() in wanted}, "sparse": True}

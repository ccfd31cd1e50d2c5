"""QuickBooks Online Accounting API v3 client for one company (realm).

Entities are named as in the API (`Customer`, `Item`, `Invoice`, `Payment`) and passed as plain JSON dicts: QBO
objects are large and the sync rules read only a few fields. Every write takes a `request_id` (the `requestid` query
parameter; use a UUID, at most 50 characters) so that a retried write returns the first answer instead of writing
twice. Build query literals with `qbo_quote`. Errors raise the `ApiError` kinds of `shared.errors`.

Given a `Coalescer` (`_batching.py`), the single calls of every apply in flight meet in batch calls, each caller
getting its own answer or its own error:
- reads by id of one entity: one `select * from <Entity> where Id in (...)` query (name-list entities with
  `Active in (true, false)`: a query otherwise leaves inactive records out, a read does not); near the read budget
  one CDC call first (`DegradedReads`). A record the query does not answer (deleted) is read on its own, so its
  caller gets the read's own answer or error;
- sparse updates (any entity): one `POST /batch` of up to 30 items, each with its own `bId` (a batch QBO refuses as
  a whole, 400, goes again as single calls, so one item's fault stays its own). QBO takes one
  `requestid` per batch, none per item: it is derived (uuid5) from the items' own requestids, so an identical retry
  replays the batch's first answer. A retry that meets other neighbours is a new batch: an update that went through
  then carries a SyncToken QBO has moved past, so QBO refuses it (5010, stale) instead of writing twice, and the
  apply re-reads and finds its own write. The stricter reading: nothing relies on QBO replaying a batch;
- Customer and Item creates: one `POST /batch` of up to 30 create items (`CREATE_BATCH_ENTITIES`), its requestid
  derived from the items' as for updates. QBO takes no requestid per item, so a create's guard against a lost answer
  is in two layers. Here: a batch call of creates that gets no answer (timeout, connection error, 5xx) is resent at
  once, identical (same items, same requestid: QBO replays its first answer if it made anything), up to
  `CREATE_RESENDS` times; an item of a resent batch refused as a duplicate name (its first send's own create, QBO
  not replaying) fails as a conflict (`StaleObject`), so that its retry looks. Above (`lost_create` in
  services/worker/rules/_pair.py): the retry of a create cut short (its intent kept on its link) first looks for the
  record the lost attempt may have made, by its candidate names, and adopts it when it is provably ours; it never
  takes a name refused since the look for another record's (the next name would make a renamed duplicate);
- Invoice and Payment creates, voids and deletes stay single calls with their own requestid, a create's only guard
  against a lost answer being QBO replaying it by that requestid, which a batch has none of per item: a Payment has
  no field a retry could find it by, and an Invoice whose DocNumber is taken (or that has none) is numbered by QBO,
  leaving only its PrivateNote marker, which a query cannot filter on.
A lookup by a key of many records (`find`: customers by email, items by SKU, invoices by DocNumber) is one `select *
from <Entity> where <field> in (...)` query for the applies in flight, each caller getting the rows of its own key
(compared ignoring case, as QBO compares strings). Intuit's query reference lists IN among the operators of a WHERE
clause on a filterable property, and PrimaryEmailAddr, Sku and DocNumber are filterable (as are the names `lost_create`
looks up); no page says IN is refused on any of them, and none shows IN on an email: that is the reading taken, and
the sandbox takes IN wherever it takes `=`.
A batch of one goes as the single call: a lone change costs what it did, and /batch calls (40 a minute per realm,
`qbo_batch_per_minute`, its own window in `_limits.py`) are spent only where they save calls.

While the engine applies a change of a QBO record (`with qbo.changed(entity, id, at_ms, written_sync_token=...)`), a
read of that record no newer than our own last write of it, when its link recorded that write, is answered from the
write's answer: the echo of our own write costs no read; likewise the linked record of a change from HubSpot whose
link is current (`with qbo.counterpart(...)`): the update uses the SyncToken our write answered, and a 5010 (stale)
makes the retry read (`_echoes.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from shared.clients._auth import TokenSource
from shared.clients._batching import Coalescer
from shared.clients._degraded import DegradedReads
from shared.clients._echoes import OurWrites
from shared.clients._errors import qbo_error, qbo_fault, qbo_fault_error
from shared.clients._limits import CallLimits
from shared.clients._session import ApiSession, QueryParams, path_segment
from shared.clients._transport import Response, Transport
from shared.clients._usage import UsageMeter
from shared.company import QboCompany
from shared.domain import Provider
from shared.errors import ApiError, DuplicateName, ServerError, StaleObject, TransportError, ValidationFailed

MINOR_VERSION = 75  # since 2025-08-01 Intuit ignores anything lower; no higher version is documented
QUERY_PAGE_LIMIT = 1000  # MAXRESULTS above 1000 is refused
BATCH_LIMIT = 30  # items per batch request
# Creates batched: a lost batch answer is guarded by an identical resend and by the rules' lookup of a kept intent.
CREATE_BATCH_ENTITIES = frozenset({"Customer", "Item"})
CREATE_RESENDS = 2  # identical resends of a batch of creates that got no answer
FIND_BATCH_LIMIT = 30  # keys per `<field> in (...)` lookup: its rows stay far below a query's 1,000
READ_BATCH_LIMIT = 100  # ids per `Id in (...)` query: a short GET line, far below a query's 1,000 rows
# Name-list entities hsqbo reads by id: a query leaves their inactive records out unless it names `Active`.
NAME_LIST_ENTITIES = frozenset({"Customer", "Item"})
_BATCH_REQUEST_IDS = uuid.UUID("0f6f7c5e-3b7a-4a43-9d8e-5f1b2f7a6c21")
_REQUEST_ID_MAX = 50
_BATCH_REQUEST_ID_MAX = 36

QboEntity = dict[str, Any]
BatchItemResult = QboEntity | list[QboEntity] | ApiError


def qbo_quote(value: str) -> str:
    """`value` as a quoted literal of QBO's query language: backslash escapes quotes and itself."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclasses.dataclass(frozen=True, slots=True)
class CdcResult:
    """Changed records per entity; deleted ones carry only `Id`, `status: "Deleted"` and `MetaData`. `time` is the
    server's clock at the answer: the next `changed_since`."""

    entities: dict[str, list[QboEntity]]
    time: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class BatchOperation:
    """One item of a batch request; build it with the class methods."""

    bid: str
    operation: Literal["create", "update", "delete", "query"]
    entity: str | None
    body: Mapping[str, Any] | str  # the entity payload, or the query statement
    options: str | None = None

    @classmethod
    def create(cls, bid: str, entity: str, body: Mapping[str, Any]) -> BatchOperation:
        return cls(bid, "create", entity, body)

    @classmethod
    def update(cls, bid: str, entity: str, body: Mapping[str, Any], *, sparse: bool = True) -> BatchOperation:
        return cls(bid, "update", entity, {**body, "sparse": sparse})

    @classmethod
    def delete(cls, bid: str, entity: str, entity_id: str, sync_token: str) -> BatchOperation:
        return cls(bid, "delete", entity, {"Id": entity_id, "SyncToken": sync_token})

    @classmethod
    def void(cls, bid: str, entity: str, entity_id: str, sync_token: str) -> BatchOperation:
        return cls(bid, "update", entity, {"Id": entity_id, "SyncToken": sync_token}, options="void")

    @classmethod
    def query(cls, bid: str, statement: str) -> BatchOperation:
        return cls(bid, "query", None, statement)

    def to_json(self) -> dict[str, Any]:
        if self.operation == "query":
            return {"bId": self.bid, "Query": self.body}
        item: dict[str, Any] = {"bId": self.bid, "operation": self.operation, str(self.entity): self.body}
        if self.options:
            item["optionsData"] = self.options
        return item


@dataclasses.dataclass(frozen=True, slots=True)
class _Write:
    """A create or a sparse update waiting for its batch."""

    operation: Literal["create", "update"]
    entity: str
    body: Mapping[str, Any]  # an update's with "sparse": true
    request_id: str


class QboClient:
    def __init__(
        self,
        base_url: str,
        realm_id: str,
        auth: TokenSource,
        transport: Transport,
        *,
        minorversion: int = MINOR_VERSION,
        limits: CallLimits | None = None,
        usage: UsageMeter | None = None,
        degraded: DegradedReads | None = None,
        coalescer: Coalescer | None = None,
        ours: OurWrites | None = None,
    ) -> None:
        """`limits`: the realm's client-side rate limits (`CallLimits.for_qbo`); None sends unthrottled. `usage`
        counts its calls per month (`UsageRecorder.meter`); `degraded` reads by CDC near the read budget;
        `coalescer` puts concurrent reads and updates together in batch calls (see above); `ours` keeps our writes'
        answers (one per company: every client of the company shares what it wrote)."""
        self.realm_id = realm_id
        self._usage = usage
        self._degraded = degraded
        self._coalescer = coalescer
        self._ours = ours or OurWrites()  # our writes' answers: the echo of our own write costs no read (`_echoes.py`)
        self._session = ApiSession(Provider.QUICKBOOKS, base_url, auth, transport, _classify, limits, usage)
        self._company = f"/v3/company/{path_segment(realm_id)}"
        self._minorversion = str(minorversion)

    # --- single records -----------------------------------------------------------------------------------------

    async def read(self, entity: str, entity_id: str) -> QboEntity:
        if (ours := self._ours.echo(entity, entity_id)) is not None:  # the change being applied is our own write
            return ours
        if self._coalescer is None:
            record = await self._read_one(entity, entity_id)
        else:
            many = functools.partial(self._read_many, entity)
            record = await self._coalescer.submit(
                ("qbo.read", entity), entity_id, many, limit=READ_BATCH_LIMIT, one_at_a_time=True
            )
        self._ours.saw(entity, record)  # a later update from HubSpot may go unread (`_echoes.py`)
        return record

    async def create(self, entity: str, body: Mapping[str, Any], *, request_id: str) -> QboEntity:
        if self._coalescer is None or entity not in CREATE_BATCH_ENTITIES:
            return await self._write("create", entity, dict(body), request_id)
        create = _Write("create", entity, dict(body), request_id)
        return await self._coalescer.submit(
            "qbo.create", create, self._create_many, limit=BATCH_LIMIT, one_at_a_time=True
        )

    async def find(self, entity: str, field: str, key: str) -> list[QboEntity]:
        """The records of `entity` (name-list ones inactive too) whose `field` (a dotted path; an email field by its
        address) equals `key`, ignoring case as QBO's string comparisons do, in Id order. Concurrent finds on one
        field meet in one `<field> in (...)` query, its rows handed to each caller by its key."""
        if self._coalescer is None:
            return (await self._find_many(entity, field, [key]))[0]
        many = functools.partial(self._find_many, entity, field)
        return await self._coalescer.submit(("qbo.find", entity, field), key, many, limit=FIND_BATCH_LIMIT)

    async def update(self, entity: str, body: Mapping[str, Any], *, request_id: str, sparse: bool = True) -> QboEntity:
        """`body` carries `Id` and the current `SyncToken`. Sparse: only the fields sent change (line arrays are
        still replaced whole); full: every writable field left out is cleared."""
        if self._coalescer is None or not sparse:
            return await self._write("update", entity, {**body, "sparse": sparse}, request_id)
        update = _Write("update", entity, {**body, "sparse": True}, request_id)
        return await self._coalescer.submit("qbo.update", update, self._update_many, limit=BATCH_LIMIT)

    changed = staticmethod(OurWrites.changed)  # `with qbo.changed(entity, id, at_ms, written_sync_token=...):`
    counterpart = staticmethod(OurWrites.counterpart)  # `with qbo.counterpart(entity, id, sync_token):` likewise

    async def _read_one(self, entity: str, entity_id: str) -> QboEntity:
        response = await self._call("read", "GET", f"/{entity.lower()}/{path_segment(entity_id)}")
        return _entity(response.json(), entity)

    async def _read_many(self, entity: str, ids: Sequence[str]) -> list[QboEntity | Exception]:
        """Each id's record: near the read budget from one CDC call, the others from one `Id in` query; what neither
        answers (a deleted record) read on its own, with that read's own answer or error."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, QboEntity] = {}
        if len(wanted) > 1 and self._degraded is not None and await self._degraded.active():
            found = await self._degraded.read_many(self._changed, entity, wanted)
        rest = [entity_id for entity_id in wanted if entity_id not in found]
        if len(rest) > 1:
            where = f"Id IN ({', '.join(qbo_quote(entity_id) for entity_id in rest)})"
            if entity in NAME_LIST_ENTITIES:
                where += " AND Active IN (true, false)"
            rows = await self.query(f"{_select('*', entity, where, None)} MAXRESULTS {len(rest)}")
            found |= {str(row.get("Id")): row for row in rows if str(row.get("Id")) in rest}
        answers: dict[str, QboEntity | Exception] = dict(found)
        for entity_id in wanted:
            if entity_id not in answers:
                try:
                    answers[entity_id] = await self._read_one(entity, entity_id)
                except ApiError as exc:
                    answers[entity_id] = exc
        return [answers[entity_id] for entity_id in ids]

    async def _find_many(self, entity: str, field: str, keys: Sequence[str]) -> list[list[QboEntity]]:
        wanted = list(dict.fromkeys(keys))
        where = f"{field} IN ({', '.join(qbo_quote(key) for key in wanted)})"
        if entity in NAME_LIST_ENTITIES:
            where += " AND Active IN (true, false)"
        rows = await self.query(f"{_select('*', entity, where, 'Id')} MAXRESULTS {QUERY_PAGE_LIMIT}")
        if len(rows) >= QUERY_PAGE_LIMIT:  # maybe cut: each key on its own (a key of 1,000 rows is no match anyway)
            if len(wanted) == 1:
                return [rows]
            return [(await self._find_many(entity, field, [key]))[0] for key in keys]
        found: dict[str, list[QboEntity]] = {key.casefold(): [] for key in wanted}
        for row in rows:
            value = _field_value(row, field)
            if isinstance(value, str) and value.casefold() in found:
                found[value.casefold()].append(row)
        return [found[key.casefold()] for key in keys]

    async def _create_many(self, creates: Sequence[_Write]) -> list[QboEntity | Exception]:
        """`_write_many` for creates, a call that got no answer resent up to `CREATE_RESENDS` times. A name refused
        as taken in a resent batch may be taken by the first send's own create (QBO ran it, but replayed nothing): the
        item fails as a conflict, not as taken, and the retry looks for the record it made (see above)."""
        answers, resent = await self._write_many(creates, resends=CREATE_RESENDS)
        if not resent:
            return answers
        return [
            StaleObject(f"name taken when resent: {answer.message}", provider=Provider.QUICKBOOKS)
            if isinstance(answer, DuplicateName)
            else answer
            for answer in answers
        ]

    async def _update_many(self, updates: Sequence[_Write]) -> list[QboEntity | Exception]:
        """`_write_many` for sparse updates; a record refused as stale is forgotten as ours (its next update reads)."""
        answers, _ = await self._write_many(updates, resends=0)
        for update, answer in zip(updates, answers, strict=True):
            if isinstance(answer, StaleObject):
                self._ours.forget(update.entity, str(update.body.get("Id")))
        return answers

    async def _write_many(self, writes: Sequence[_Write], *, resends: int) -> tuple[list[QboEntity | Exception], bool]:
        """One batch call for several writes (one alone goes as the single call, with its own requestid): each item's
        record (remembered as ours) or Fault, one left unanswered a 5xx of its own. A batch QBO refuses whole goes
        again as single calls, each with its own answer. A call that got no answer (a transport error, a 5xx) is
        resent, identical (same items, same requestid derived from theirs), up to `resends` times; the second value
        says whether it was."""
        if len(writes) == 1:
            (write,) = writes
            return [await self._write(write.operation, write.entity, dict(write.body), write.request_id)], False
        operations = [
            BatchOperation(str(number), write.operation, write.entity, write.body)
            for number, write in enumerate(writes, 1)
        ]
        request_id = _batch_request_id(write.request_id for write in writes)
        for resent in range(resends + 1):
            try:
                answers = await self.batch(operations, request_id=request_id)
                break
            except (TransportError, ServerError):
                if resent == resends:
                    raise
            except ValidationFailed as refused:
                if refused.transient:
                    raise
                return [await self._write_alone(write) for write in writes], False
        missing = ServerError("batch item left unanswered", provider=Provider.QUICKBOOKS, status=200)
        results: list[QboEntity | Exception] = []
        for operation, write in zip(operations, writes, strict=True):
            answer = answers.get(operation.bid, missing)
            if isinstance(answer, dict):
                self._ours.remember(write.entity, answer)
            results.append(answer if isinstance(answer, dict | Exception) else missing)
        return results, resent > 0

    async def _write_alone(self, write: _Write) -> QboEntity | Exception:
        try:
            return await self._write(write.operation, write.entity, dict(write.body), write.request_id)
        except ApiError as exc:
            return exc

    async def delete(self, entity: str, entity_id: str, sync_token: str, *, request_id: str) -> QboEntity:
        """Transactions only (Customer and Item are retired with `Active: false`). Answers `{"Id", "status":
        "Deleted"}`."""
        body = {"Id": entity_id, "SyncToken": sync_token}
        return await self._write("delete", entity, body, request_id, [("operation", "delete")])

    async def void(self, entity: str, entity_id: str, sync_token: str, *, request_id: str) -> QboEntity:
        """Zero a transaction but keep it. A Payment is voided by a sparse update with `include=void`."""
        body: dict[str, Any] = {"Id": entity_id, "SyncToken": sync_token}
        if entity.lower() == "payment":
            params = [("operation", "update"), ("include", "void")]
            body["sparse"] = True
        else:
            params = [("operation", "void")]
        return await self._write("void", entity, body, request_id, params)

    # --- company settings ---------------------------------------------------------------------------------------

    async def company_settings(self) -> QboCompany:
        """Home currency and multicurrency (`Preferences.CurrencyPrefs`), the time zone if the company reports one
        (`CompanyInfo.DefaultTimeZone`, documented in Intuit's XSD only), and the UTC offset of the preferences
        answer's `time` (QBO's clock in the company's offset; None when missing or unparsable)."""
        answer = (await self._call("preferences", "GET", "/preferences")).json()
        preferences = _entity(answer, "Preferences")
        info_path = f"/companyinfo/{path_segment(self.realm_id)}"
        info = _entity((await self._call("companyinfo", "GET", info_path)).json(), "CompanyInfo")
        currency = preferences.get("CurrencyPrefs") or {}
        home = (currency.get("HomeCurrency") or {}).get("value")
        if not home:
            raise ValueError("Preferences carry no CurrencyPrefs.HomeCurrency")
        zone = info.get("DefaultTimeZone")
        return QboCompany(
            home_currency=str(home).upper(),
            multicurrency=bool(currency.get("MultiCurrencyEnabled", False)),
            time_zone=str(zone) if zone else None,
            clock_offset=_offset(answer.get("time")),
        )

    async def exchange_rate(self, currency: str, as_of: date) -> Decimal:
        """Home-currency units per one unit of `currency` on `as_of` (multicurrency companies only)."""
        params = [("sourcecurrencycode", currency), ("asofdate", as_of.isoformat())]
        rate = _entity((await self._call("exchangerate", "GET", "/exchangerate", params)).json(), "ExchangeRate")
        return Decimal(str(rate["Rate"]))

    # --- queries ------------------------------------------------------------------------------------------------

    async def query(self, statement: str) -> list[QboEntity]:
        """The rows of one `SELECT` (QBO pages at 100 rows unless the statement says MAXRESULTS)."""
        response = await self._call("query", "GET", "/query", [("query", statement)])
        return _rows(response.json().get("QueryResponse") or {})

    async def query_all(
        self,
        entity: str,
        *,
        where: str | None = None,
        order_by: str | None = None,
        page_size: int = QUERY_PAGE_LIMIT,
    ) -> AsyncIterator[QboEntity]:
        """Every row, STARTPOSITION/MAXRESULTS page after page. Give an `order_by` (e.g. "Id") so rows changed
        while paging are neither skipped nor repeated by a shifting order."""
        size = min(page_size, QUERY_PAGE_LIMIT)
        start = 1
        while True:
            rows = await self.query(f"{_select('*', entity, where, order_by)} STARTPOSITION {start} MAXRESULTS {size}")
            for row in rows:
                yield row
            if len(rows) < size:
                return
            start += size

    async def count(self, entity: str, *, where: str | None = None) -> int:
        response = await self._call("count", "GET", "/query", [("query", _select("COUNT(*)", entity, where, None))])
        return int((response.json().get("QueryResponse") or {}).get("totalCount", 0))

    async def cdc(self, entities: Sequence[str], changed_since: datetime) -> CdcResult:
        """Records of `entities` changed since `changed_since` (at most 30 days back; QBO returns at most 1000
        objects per call and says nothing when it cut: treat 1000 as maybe truncated and shrink the window)."""
        if changed_since.tzinfo is None:
            raise ValueError("changed_since must carry a time zone")
        params = [("entities", ",".join(entities)), ("changedSince", changed_since.isoformat(timespec="seconds"))]
        data = (await self._call("cdc", "GET", "/cdc", params)).json()
        changed: dict[str, list[QboEntity]] = {entity: [] for entity in entities}
        for block in data.get("CDCResponse", ()):
            for response in block.get("QueryResponse", ()):
                for name, value in response.items():
                    if isinstance(value, list):
                        changed.setdefault(name, []).extend(value)
        return CdcResult(changed, _time(data))

    async def _changed(self, entities: Sequence[str], changed_since: datetime) -> dict[str, list[QboEntity]]:
        return (await self.cdc(entities, changed_since)).entities

    # --- batch --------------------------------------------------------------------------------------------------

    async def batch(self, operations: Sequence[BatchOperation], *, request_id: str) -> dict[str, BatchItemResult]:
        """Up to 30 independent operations in one call (QBO runs them in any order); the answer maps each `bid` to
        the record written, the rows queried, or the item's `ApiError` (a failed item does not fail the call)."""
        if not 0 < len(operations) <= BATCH_LIMIT:
            raise ValueError(f"a batch holds 1 to {BATCH_LIMIT} operations, not {len(operations)}")
        _check_request_id(request_id, _BATCH_REQUEST_ID_MAX)
        body = {"BatchItemRequest": [operation.to_json() for operation in operations]}
        params = [("requestid", request_id)]
        response = await self._call("batch", "POST", "/batch", params, json=body)
        if self._usage is not None:  # metered per item, like the calls it stands for (the batch itself is not)
            for operation in operations:
                self._usage.count(operation.operation)
        return {str(item.get("bId")): _batch_item(item) for item in response.json().get("BatchItemResponse", ())}

    async def _write(
        self, operation: str, entity: str, body: QboEntity, request_id: str, params: QueryParams = ()
    ) -> QboEntity:
        _check_request_id(request_id, _REQUEST_ID_MAX)
        params = [*params, ("requestid", request_id)]
        try:
            response = await self._call(operation, "POST", f"/{entity.lower()}", params, json=body)
        except StaleObject:
            self._ours.forget(entity, str(body.get("Id")))
            raise
        written = _entity(response.json(), entity)
        self._ours.remember(entity, written)
        return written

    async def _call(
        self, operation: str, method: str, path: str, params: QueryParams = (), *, json: Any = None
    ) -> Response:
        params = [*params, ("minorversion", self._minorversion)]
        return await self._session.call(operation, method, self._company + path, params=params, json=json)


def _classify(response: Response) -> ApiError | None:
    if not 200 <= response.status < 300:
        return qbo_error(response)
    if b'"Fault"' in response.body and qbo_fault(response) is not None:  # a whole-request Fault inside a 200
        return qbo_error(response)
    return None


def _batch_request_id(request_ids: Iterable[str]) -> str:
    """A batch's requestid, from its items' own: the same items make the same batch, which QBO replays."""
    return str(uuid.uuid5(_BATCH_REQUEST_IDS, "\n".join(sorted(request_ids))))


def _field_value(record: Mapping[str, Any], field: str) -> Any:
    """The value of a dotted query field in a record: an email field (`PrimaryEmailAddr`) by its address."""
    value: Any = record
    for key in field.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value.get("Address") if isinstance(value, Mapping) else value


def _check_request_id(request_id: str, limit: int) -> None:
    if not 0 < len(request_id) <= limit:
        raise ValueError(f"requestid must be 1 to {limit} characters")


def _select(what: str, entity: str, where: str | None, order_by: str | None) -> str:
    statement = f"SELECT {what} FROM {entity}"
    if where:
        statement += f" WHERE {where}"
    if order_by:
        statement += f" ORDER BY {order_by}"
    return statement


def _entity(data: Mapping[str, Any], entity: str) -> QboEntity:
    """The record in `{"<Entity>": {...}, "time": ...}`; the answer's casing of the name may differ from ours."""
    for name, value in data.items():
        if name.lower() == entity.lower() and isinstance(value, dict):
            return value
    raise ValueError(f"answer carries no {entity}")


def _rows(query_response: Mapping[str, Any]) -> list[QboEntity]:
    """The entity list of a QueryResponse; absent when no rows are left."""
    return next((value for value in query_response.values() if isinstance(value, list)), [])


def _batch_item(item: Mapping[str, Any]) -> BatchItemResult:
    if isinstance(item.get("Fault"), dict):
        return qbo_fault_error(item["Fault"], status=200)
    if isinstance(item.get("QueryResponse"), dict):
        return _rows(item["QueryResponse"])
    records = [value for name, value in item.items() if name != "bId" and isinstance(value, dict)]
    if not records:
        return ApiError("batch item answered neither a record nor a fault", provider=Provider.QUICKBOOKS, status=200)
    return dict(records[0])


def _offset(stamp: Any) -> timedelta | None:
    """The UTC offset a date-time stamp carries; None for no stamp, an unparsable one, or one without an offset."""
    try:
        return datetime.fromisoformat(stamp).utcoffset() if isinstance(stamp, str) else None
    except ValueError:
        return None


def _time(data: Mapping[str, Any]) -> datetime | None:
    value = data.get("time")
    return datetime.fromisoformat(value) if isinstance(value, str) else None

"""HubSpot CRM client: v3 objects (read, write, batch, search), v4 associations, v3 property definitions.

Object types are the API's path names (`contacts`, `companies`, `products`, `line_items`, `invoices`,
`commerce_payments`) or type ids (`0-1`). Every property value HubSpot returns is a string or null; send strings, and
`""` to clear a value. Errors raise the `ApiError` kinds of `shared.errors`; a call outside the token's scopes raises
`MissingScopes` naming the scopes to grant (the scopes of every call: `shared/clients/_scopes.py`).

Given a `Coalescer` (`_batching.py`), the single calls of every apply in flight meet in batch calls of up to 100
inputs, each caller getting its own record or its own error:
- reads by id or by a unique property (`get` without associations; `idProperty`, e.g. a contact by its email) of
  one object type, property list and id property: `batch/read` (with its `idProperty`). A key the answer names as
  missing (207, OBJECT_NOT_FOUND) is NotFound to its caller; one the answer neither holds nor names (a merged-away
  id: HubSpot answers with the survivor, whose id is another; an email HubSpot matched as another contact's
  secondary one) is read on its own, so its caller sees what a single read answers;
- creates of one object type: `batch/create`, each input with its own properties, inline associations and
  `objectWriteTraceId`, so that HubSpot answers each input alone (207; untraced, one refused input refuses the
  whole call, 409 naming the first taken email only). A refused input whose error names the record already holding
  the value (Conflict with its id: a contact's email, a product's or invoice's unique `hsqbo_qbo_*_id`) is that
  refusal to its caller; an input refused otherwise is created on its own, so its caller sees what the single
  create answers, and each rule's handling of a refused create (`contacts.adopted_intent`, `rules/_origin.py`) is
  exactly as it is. HubSpot takes no idempotency key: a batch whose answer is lost (or an input an answer names
  neither way: it may have been made, a ServerError to its caller) is retried by each apply, which finds what the
  lost call made before creating again (a contact by its unique email, a product by the unique property carrying
  its item's id), as after a lost single create;
- updates by id of one object type: `batch/update`, each input with its own `objectWriteTraceId` so that HubSpot
  answers a failed input alone (207) instead of failing the call; an input answered neither way is updated on its
  own. Two updates of one record never share a call (HubSpot refuses repeated ids): the second goes in the next;
- records by the value of a string property (`search_by`, e.g. products by SKU) with one object type, property,
  property list and sort: one search with an `IN` filter of the values (up to 100, lower-cased as `IN` on strings
  needs; more searches when the body would pass HubSpot's 3,000 characters; every page), each caller getting the
  records with its value ignoring case, as the single `EQ` search answers. HubSpot's search allows about 5 requests
  a second per account: one search per batch instead of one per record;
- association listings of one object type pair: the v4 associations `batch/read`. A record HubSpot answers with
  no associations (207, `NO_ASSOCIATIONS_FOUND`) has none; one whose associations come in pages, or that the answer
  names with another error or not at all, is listed on its own.
A batch of one goes as the single call; a batch HubSpot refuses as a whole (400, or 409 for a create) goes again as
single calls, so one input's fault stays its own.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.clients._auth import TokenSource
from shared.clients._batching import Coalescer
from shared.clients._errors import hubspot_batch_error, hubspot_error
from shared.clients._limits import CallLimits
from shared.clients._scopes import Call, scopes_to_grant
from shared.clients._session import ApiSession, QueryParams, path_segment
from shared.clients._transport import Response, Transport
from shared.clients._usage import UsageMeter
from shared.company import HubSpotAccount
from shared.domain import Provider
from shared.errors import ApiError, Conflict, MissingScopes, NotFound, ServerError, ValidationFailed

BATCH_LIMIT = 100  # inputs per object batch call
SEARCH_PAGE_LIMIT = 200
SEARCH_IN_LIMIT = 100  # values in one IN filter: HubSpot documents no limit; 100, as its other batches
SEARCH_BODY_LIMIT = 3000  # characters in a search request's body (SEARCH)
_ASSOCIATIONS_PAGE_LIMIT = 500
_ASSOCIATIONS_BATCH_LIMIT = 1000  # inputs per associations batch read (HubSpot raised it to 1,000 in 2025)
_NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"  # the 207 error of a record with none of that type

Properties = Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotObject:
    id: str
    properties: dict[str, str | None]
    created_at: datetime | None
    updated_at: datetime | None
    archived: bool = False
    associations: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # to-type -> ids, first seen first
    new: bool | None = None  # batch upsert only: True when the record was created

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HubSpotObject:
        associations: dict[str, list[str]] = {}
        for to_type, listing in (data.get("associations") or {}).items():
            ids = associations.setdefault(to_type, [])
            for item in listing.get("results", ()):
                if str(item["id"]) not in ids:  # a labelled and an unlabelled association list the same id twice
                    ids.append(str(item["id"]))
        return cls(
            id=str(data["id"]),
            properties=dict(data.get("properties") or {}),
            created_at=_timestamp(data.get("createdAt")),
            updated_at=_timestamp(data.get("updatedAt")),
            archived=bool(data.get("archived", False)),
            associations=associations,
            new=data.get("new"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotBatch:
    """A batch answer: the records that worked, and one error per failed group of inputs (`error.ids`). A batch read
    leaves out ids that do not exist: compare what you asked for with `results`."""

    results: list[HubSpotObject]
    errors: list[ApiError]


@dataclasses.dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[HubSpotObject]
    total: int
    after: str | None  # cursor of the next page, None on the last


@dataclasses.dataclass(frozen=True, slots=True)
class NewAssociation:
    """An association made together with a new record (`create(..., associations=...)`)."""

    to_id: str
    type_id: int
    category: str = "HUBSPOT_DEFINED"


@dataclasses.dataclass(frozen=True, slots=True)
class AssociationType:
    category: str
    type_id: int
    label: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Association:
    to_id: str
    types: tuple[AssociationType, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotProperty:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    unique: bool


class HubSpotClient:
    def __init__(
        self,
        base_url: str,
        auth: TokenSource,
        transport: Transport,
        *,
        limits: CallLimits | None = None,
        usage: UsageMeter | None = None,
        coalescer: Coalescer | None = None,
    ) -> None:
        """`limits`: the portal's client-side rate limits (`CallLimits.for_hubspot`); None sends unthrottled. `usage`
        counts its calls per month (`UsageRecorder.meter`); `coalescer` puts concurrent reads and updates together
        in batch calls (see above)."""
        self._session = ApiSession(Provider.HUBSPOT, base_url, auth, transport, _classify, limits, usage)
        self._coalescer = coalescer

    # --- objects ------------------------------------------------------------------------------------------------

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        properties: Sequence[str] = (),
        associations: Sequence[str] = (),
        id_property: str | None = None,
    ) -> HubSpotObject:
        """One record by id, or by the value of a unique property (`id_property`). NotFound if absent or archived."""
        if self._coalescer is not None and not associations:
            read = functools.partial(self._read_many, object_type, tuple(properties), id_property)
            group = ("hubspot.read", object_type, tuple(properties), id_property)
            return await self._coalescer.submit(group, object_id, read, limit=BATCH_LIMIT)
        return await self._get(object_type, object_id, properties, associations, id_property)

    async def _get(
        self,
        object_type: str,
        object_id: str,
        properties: Sequence[str],
        associations: Sequence[str],
        id_property: str | None,
    ) -> HubSpotObject:
        params: list[tuple[str, str]] = [("properties", name) for name in properties]
        params += [("associations", to_type) for to_type in associations]
        if id_property:
            params.append(("idProperty", id_property))
        response = await self._call("get", "GET", f"{_objects(object_type)}/{path_segment(object_id)}", params)
        return HubSpotObject.from_json(response.json())

    async def create(
        self, object_type: str, properties: Properties, *, associations: Sequence[NewAssociation] = ()
    ) -> HubSpotObject:
        if self._coalescer is not None:
            create = functools.partial(self._create_many, object_type)
            group = ("hubspot.create", object_type)
            return await self._coalescer.submit(group, (properties, tuple(associations)), create, limit=BATCH_LIMIT)
        return await self._create(object_type, properties, associations)

    async def _create(
        self, object_type: str, properties: Properties, associations: Sequence[NewAssociation]
    ) -> HubSpotObject:
        body = _new_record(properties, associations)
        response = await self._call("create", "POST", _objects(object_type), json=body)
        return HubSpotObject.from_json(response.json())

    async def _create_many(
        self, object_type: str, creates: Sequence[tuple[Properties, Sequence[NewAssociation]]]
    ) -> list[HubSpotObject | Exception]:
        """Each create's record from one `batch/create` (see the module docstring); one create alone: the single
        create."""
        answers: list[HubSpotObject | Exception | None] = [None] * len(creates)
        if len(creates) > 1:
            inputs = [
                {**_new_record(properties, associations), "objectWriteTraceId": _trace_id(position)}
                for position, (properties, associations) in enumerate(creates)
            ]
            path = f"{_objects(object_type)}/batch/create"
            try:
                answer = (await self._call("batch_create", "POST", path, json={"inputs": inputs})).json()
            except (ValidationFailed, Conflict) as refused:  # refused as a whole: each create on its own below
                if refused.transient:
                    raise
                answer = {}
            else:  # an input answered neither way may have been made: its apply runs again and finds it
                answers[:] = [_unanswered_create() for _ in creates]
            traced = {_trace_id(position): position for position in range(len(creates))}
            for item in answer.get("results", ()):
                if (made := traced.get(str(item.get("objectWriteTraceId")))) is not None:
                    answers[made] = HubSpotObject.from_json(item)
            for item in answer.get("errors", ()):
                error = hubspot_batch_error(item)
                for named in error.ids:
                    if (refused_at := traced.get(named)) is not None:
                        # A refusal naming the record holding the value is the single create's; any other is
                        # created on its own below, so its caller sees what the single create answers.
                        named_holder = isinstance(error, Conflict) and error.existing_id is not None
                        answers[refused_at] = error if named_holder else None
        results: list[HubSpotObject | Exception] = []
        for position, (properties, associations) in enumerate(creates):
            found = answers[position]
            if found is None:  # alone, refused with the batch, or refused without naming the holder: on its own
                try:
                    found = await self._create(object_type, properties, associations)
                except ApiError as exc:
                    found = exc
            results.append(found)
        return results

    async def update(
        self, object_type: str, object_id: str, properties: Properties, *, id_property: str | None = None
    ) -> HubSpotObject:
        if self._coalescer is not None and not id_property:
            update = functools.partial(self._update_many, object_type)
            group = ("hubspot.update", object_type)
            return await self._coalescer.submit(group, (object_id, properties), update, limit=BATCH_LIMIT)
        return await self._update(object_type, object_id, properties, id_property)

    async def _update(
        self, object_type: str, object_id: str, properties: Properties, id_property: str | None
    ) -> HubSpotObject:
        params = [("idProperty", id_property)] if id_property else []
        path = f"{_objects(object_type)}/{path_segment(object_id)}"
        response = await self._call("update", "PATCH", path, params, json={"properties": dict(properties)})
        return HubSpotObject.from_json(response.json())

    async def archive(self, object_type: str, object_id: str) -> None:
        await self._call("archive", "DELETE", f"{_objects(object_type)}/{path_segment(object_id)}")

    async def batch_read(
        self,
        object_type: str,
        ids: Sequence[str],
        *,
        properties: Sequence[str] = (),
        id_property: str | None = None,
    ) -> HubSpotBatch:
        """Many records by id (or unique property), in calls of at most 100. No associations (HubSpot's rule)."""
        answers: list[Mapping[str, Any]] = []
        for chunk in _chunks(ids, BATCH_LIMIT):
            body: dict[str, Any] = {"inputs": [{"id": i} for i in chunk], "properties": list(properties)}
            if id_property:
                body["idProperty"] = id_property
            response = await self._call("batch_read", "POST", f"{_objects(object_type)}/batch/read", json=body)
            answers.append(response.json())
        return _batch(answers)

    async def _read_many(
        self, object_type: str, properties: tuple[str, ...], id_property: str | None, keys: Sequence[str]
    ) -> list[HubSpotObject | Exception]:
        """Each key's record from one `batch/read` (one key alone: the single read); see the module docstring."""
        wanted = list(dict.fromkeys(keys))
        answers: dict[str, HubSpotObject | Exception] = {}
        if len(wanted) > 1:
            asked = properties if id_property is None or id_property in properties else (*properties, id_property)
            try:
                batch = await self.batch_read(object_type, wanted, properties=asked, id_property=id_property)
            except ValidationFailed as refused:  # refused as a whole: each read on its own below
                if refused.transient:
                    raise
            else:
                by_key = {_key(id_property, key): key for key in wanted}
                for record in batch.results:
                    value = record.id if id_property is None else record.properties.get(id_property)
                    if (key := by_key.get(_key(id_property, value))) is not None:
                        shown = {name: v for name, v in record.properties.items() if name != id_property}
                        answers[key] = record if asked is properties else dataclasses.replace(record, properties=shown)
                for error in batch.errors:
                    if isinstance(error, NotFound):
                        named = (by_key.get(_key(id_property, missing)) for missing in error.ids)
                        answers |= {key: error for key in named if key is not None}
        for key in wanted:
            if key not in answers:
                try:
                    answers[key] = await self._get(object_type, key, properties, (), id_property)
                except ApiError as exc:
                    answers[key] = exc
        return [answers[key] for key in keys]

    async def _update_many(
        self, object_type: str, updates: Sequence[tuple[str, Properties]]
    ) -> list[HubSpotObject | Exception]:
        """Each update's record from `batch/update` calls, a record's updates in calls of their own (see the module
        docstring); one update alone: the single update."""
        answers: list[HubSpotObject | Exception | None] = [None] * len(updates)
        rounds: list[dict[str, int]] = []  # each call's record id -> its update's position
        for position, (object_id, _) in enumerate(updates):
            call = next((ids for ids in rounds if object_id not in ids), None)
            if call is None:
                rounds.append(call := {})
            call[object_id] = position
        for call in rounds:
            if len(call) > 1:
                inputs = [
                    {"id": object_id, "properties": dict(updates[at][1]), "objectWriteTraceId": _trace_id(at)}
                    for object_id, at in call.items()
                ]
                path = f"{_objects(object_type)}/batch/update"
                try:
                    answer = (await self._call("batch_update", "POST", path, json={"inputs": inputs})).json()
                except ValidationFailed as refused:  # refused as a whole: each update on its own below
                    if refused.transient:
                        raise
                    continue
                traced = {_trace_id(position): position for position in call.values()}
                for item in answer.get("results", ()):
                    if (answered := traced.get(str(item.get("objectWriteTraceId")))) is not None:
                        answers[answered] = HubSpotObject.from_json(item)
                for item in answer.get("errors", ()):
                    error = hubspot_batch_error(item)
                    for named in error.ids:  # trace ids, or the record ids HubSpot did not find
                        hit = traced.get(named, call.get(named) if isinstance(error, NotFound) else None)
                        if hit is not None:
                            answers[hit] = error
        results: list[HubSpotObject | Exception] = []
        for position, (object_id, properties) in enumerate(updates):
            found = answers[position]
            if found is None:  # alone, or answered neither way: on its own
                try:
                    found = await self._update(object_type, object_id, properties, None)
                except ApiError as exc:
                    found = exc
            results.append(found)
        return results

    async def batch_upsert(self, object_type: str, id_property: str, inputs: Mapping[str, Properties]) -> HubSpotBatch:
        """Create or update records keyed by a unique property: `inputs` maps its value to the properties to write.
        Each input carries its key as `objectWriteTraceId`, so a partial failure (207) names the inputs it hit."""
        answers: list[Mapping[str, Any]] = []
        for chunk in _chunks(list(inputs), BATCH_LIMIT):
            body = {
                "inputs": [
                    {"id": key, "idProperty": id_property, "properties": dict(inputs[key]), "objectWriteTraceId": key}
                    for key in chunk
                ]
            }
            response = await self._call("batch_upsert", "POST", f"{_objects(object_type)}/batch/upsert", json=body)
            answers.append(response.json())
        return _batch(answers)

    # --- search -------------------------------------------------------------------------------------------------

    async def search(
        self,
        object_type: str,
        *,
        filter_groups: Sequence[Mapping[str, Any]] = (),
        properties: Sequence[str] = (),
        sorts: Sequence[Mapping[str, str]] = (),
        limit: int = SEARCH_PAGE_LIMIT,
        after: str | None = None,
    ) -> SearchPage:
        """One page of `POST .../search`. Filter groups are ORed, the filters inside one ANDed; at most 10,000
        results per query (page past that and HubSpot answers 400): re-query from the last seen modification date."""
        body: dict[str, Any] = {
            "filterGroups": list(filter_groups),
            "properties": list(properties),
            "sorts": list(sorts),
            "limit": min(limit, SEARCH_PAGE_LIMIT),
        }
        if after is not None:
            body["after"] = after
        response = await self._call("search", "POST", f"{_objects(object_type)}/search", json=body)
        data = response.json()
        return SearchPage(
            results=[HubSpotObject.from_json(item) for item in data.get("results", ())],
            total=int(data.get("total", 0)),
            after=_next_after(data),
        )

    async def search_all(
        self,
        object_type: str,
        *,
        filter_groups: Sequence[Mapping[str, Any]] = (),
        properties: Sequence[str] = (),
        sorts: Sequence[Mapping[str, str]] = (),
        page_size: int = SEARCH_PAGE_LIMIT,
    ) -> AsyncIterator[HubSpotObject]:
        """Every result of a search, page after page."""
        after: str | None = None
        while True:
            page = await self.search(
                object_type,
                filter_groups=filter_groups,
                properties=properties,
                sorts=sorts,
                limit=page_size,
                after=after,
            )
            for record in page.results:
                yield record
            if page.after is None or not page.results:
                return
            after = page.after

    async def search_by(
        self,
        object_type: str,
        property_name: str,
        value: str,
        *,
        properties: Sequence[str] = (),
        sorts: Sequence[Mapping[str, str]] = (),
    ) -> list[HubSpotObject]:
        """Every live record whose string property `property_name` equals `value` (as HubSpot's search compares
        strings: ignoring case), in the order of `sorts`, with `properties` (`property_name` always among them).
        Given a coalescer, the lookups of concurrent applies (one object type, property, properties and sorts) meet
        in one search with an `IN` filter (see the module docstring); each caller gets the records with its value."""
        sort_key = tuple(tuple(sorted(sort.items())) for sort in sorts)
        if self._coalescer is not None:
            group = ("hubspot.search_by", object_type, property_name, tuple(properties), sort_key)
            run = functools.partial(self._search_many, object_type, property_name, tuple(properties), tuple(sorts))
            return await self._coalescer.submit(group, value, run, limit=SEARCH_IN_LIMIT)
        return (await self._search_many(object_type, property_name, properties, sorts, [value]))[0]

    async def _search_many(
        self,
        object_type: str,
        property_name: str,
        properties: Sequence[str],
        sorts: Sequence[Mapping[str, str]],
        values: Sequence[str],
    ) -> list[list[HubSpotObject]]:
        """Each value's records: one value alone by `EQ`, several by `IN` (lower-cased, as `IN` on strings needs)
        in searches whose body stays within HubSpot's 3,000 characters; every page of each."""
        wanted = list(dict.fromkeys(value.lower() for value in values))
        properties = properties if property_name in properties else (*properties, property_name)
        searches: list[dict[str, Any]] = (
            [{"propertyName": property_name, "operator": "EQ", "value": values[0]}]
            if len(wanted) == 1
            else [
                {"propertyName": property_name, "operator": "IN", "values": chunk}
                for chunk in _in_chunks(wanted, _search_body_chars(property_name, properties, sorts))
            ]
        )
        found: dict[str, list[HubSpotObject]] = {value: [] for value in wanted}
        for search in searches:
            after: str | None = None
            while True:
                page = await self.search(
                    object_type,
                    filter_groups=[{"filters": [search]}],
                    properties=properties,
                    sorts=sorts,
                    after=after,
                )
                for record in page.results:
                    if (matched := found.get((record.properties.get(property_name) or "").lower())) is not None:
                        matched.append(record)
                if page.after is None or not page.results:
                    break
                after = page.after
        return [list(found[value.lower()]) for value in values]

    # --- associations (v4) --------------------------------------------------------------------------------------

    async def list_associations(self, from_type: str, object_id: str, to_type: str) -> list[Association]:
        if self._coalescer is not None:
            listing = functools.partial(self._associations_many, from_type, to_type)
            group = ("hubspot.associations", from_type, to_type)
            return await self._coalescer.submit(group, object_id, listing, limit=_ASSOCIATIONS_BATCH_LIMIT)
        return await self._list_associations(from_type, object_id, to_type)

    async def _associations_many(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> list[list[Association] | Exception]:
        """Each record's associations from one `batch/read` (one record alone: the single listing)."""
        wanted = list(dict.fromkeys(ids))
        answers: dict[str, list[Association] | Exception] = {}
        if len(wanted) > 1:
            path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
            body = {"inputs": [{"id": object_id} for object_id in wanted]}
            try:
                data = (await self._call("batch_read_associations", "POST", path, json=body)).json()
            except ValidationFailed as refused:  # refused as a whole: each listed on its own below
                if refused.transient:
                    raise
                data = {}
            for item in data.get("results", ()):
                from_id = str((item.get("from") or {}).get("id"))
                if from_id in wanted and not _next_after(item):
                    answers[from_id] = [_association(to) for to in item.get("to", ())]
            for error in data.get("errors", ()):
                if error.get("subCategory") == _NO_ASSOCIATIONS:
                    context = error.get("context") or {}
                    answers |= {str(i): [] for i in context.get("fromObjectId", ()) if str(i) in wanted}
        for object_id in wanted:
            if object_id not in answers:
                try:
                    answers[object_id] = await self._list_associations(from_type, object_id, to_type)
                except ApiError as exc:
                    answers[object_id] = exc
        return [answers[object_id] for object_id in ids]

    async def _list_associations(self, from_type: str, object_id: str, to_type: str) -> list[Association]:
        path = f"/crm/v4/objects/{from_type}/{path_segment(object_id)}/associations/{to_type}"
        found: list[Association] = []
        after: str | None = None
        while True:
            params = [("limit", str(_ASSOCIATIONS_PAGE_LIMIT))] + ([("after", after)] if after else [])
            data = (await self._call("list_associations", "GET", path, params)).json()
            found += [_association(item) for item in data.get("results", ())]
            after = _next_after(data)
            if after is None:
                return found

    async def associate(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        *,
        type_id: int | None = None,
        category: str = "HUBSPOT_DEFINED",
    ) -> None:
        """Associate two records: with the given type (label), or with the default unlabelled type when `type_id` is
        None. Idempotent: associating an associated pair again changes nothing."""
        pair = f"{from_type}/{path_segment(from_id)}/associations"
        if type_id is None:
            path = f"/crm/v4/objects/{pair}/default/{to_type}/{path_segment(to_id)}"
            await self._call("associate", "PUT", path)
        else:
            path = f"/crm/v4/objects/{pair}/{to_type}/{path_segment(to_id)}"
            spec = [{"associationCategory": category, "associationTypeId": type_id}]
            await self._call("associate", "PUT", path, json=spec)

    async def remove_association(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Remove every association between the two records."""
        path = f"/crm/v4/objects/{from_type}/{path_segment(from_id)}/associations/{to_type}/{path_segment(to_id)}"
        await self._call("remove_association", "DELETE", path)

    # --- account settings ---------------------------------------------------------------------------------------

    async def account_settings(self) -> HubSpotAccount:
        """The portal the token belongs to (`portalId`), its company currency, additional currencies and time zone
        (`GET /account-info/v3/details`; scope `oauth`, which every OAuth app holds)."""
        data = (await self._call("account_details", "GET", "/account-info/v3/details")).json()
        return HubSpotAccount(
            company_currency=str(data["companyCurrency"]).upper(),
            additional_currencies=tuple(str(code).upper() for code in data.get("additionalCurrencies") or ()),
            time_zone=str(data.get("timeZone") or "UTC"),
            portal_id=str(data["portalId"]),
        )

    # --- property definitions -----------------------------------------------------------------------------------

    async def ensure_property(
        self,
        object_type: str,
        name: str,
        *,
        label: str,
        group_name: str,
        type: str = "string",
        field_type: str = "text",
        unique: bool = False,
    ) -> HubSpotProperty:
        """The property definition, created if missing. An existing definition is returned as it is (HubSpot cannot
        make a property unique after creation): check `.unique` when it matters."""
        path = f"/crm/v3/properties/{object_type}"
        try:
            return _property(await self._call("get_property", "GET", f"{path}/{path_segment(name)}"))
        except NotFound:
            pass
        definition = {
            "name": name,
            "label": label,
            "groupName": group_name,
            "type": type,
            "fieldType": field_type,
            "hasUniqueValue": unique,
        }
        try:
            return _property(await self._call("create_property", "POST", path, json=definition))
        except Conflict:  # created meanwhile by another process
            return _property(await self._call("get_property", "GET", f"{path}/{path_segment(name)}"))

    async def _call(
        self, operation: str, method: str, path: str, params: QueryParams = (), *, json: Any = None
    ) -> Response:
        try:
            return await self._session.call(operation, method, path, params=params, json=json)
        except MissingScopes as refused:
            raise refused.naming(scopes_to_grant(refused.scopes, Call(method, path, params, json))) from refused


def _classify(response: Response) -> ApiError | None:
    return None if 200 <= response.status < 300 else hubspot_error(response)


def _objects(object_type: str) -> str:
    return f"/crm/v3/objects/{object_type}"


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _next_after(data: Mapping[str, Any]) -> str | None:
    after = ((data.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _association(item: Mapping[str, Any]) -> Association:
    return Association(
        to_id=str(item["toObjectId"]),
        types=tuple(
            AssociationType(kind["category"], int(kind["typeId"]), kind.get("label"))
            for kind in item.get("associationTypes", ())
        ),
    )


def _unanswered_create() -> ServerError:
    return ServerError("HubSpot's batch create answered nothing for this input", provider=Provider.HUBSPOT)


def _new_record(properties: Properties, associations: Sequence[NewAssociation]) -> dict[str, Any]:
    """A create's body, or one input of a batch create: the properties and the associations made with it."""
    body: dict[str, Any] = {"properties": dict(properties)}
    if associations:
        body["associations"] = [
            {
                "to": {"id": association.to_id},
                "types": [{"associationCategory": association.category, "associationTypeId": association.type_id}],
            }
            for association in associations
        ]
    return body


def _search_body_chars(property_name: str, properties: Sequence[str], sorts: Sequence[Mapping[str, str]]) -> int:
    """The characters of a search body whose one `IN` filter has no values yet (its cursor at its longest)."""
    skeleton = {
        "filterGroups": [{"filters": [{"propertyName": property_name, "operator": "IN", "values": []}]}],
        "properties": list(properties),
        "sorts": list(sorts),
        "limit": SEARCH_PAGE_LIMIT,
        "after": "10000",
    }
    return len(json.dumps(skeleton))


def _in_chunks(values: Sequence[str], used_by_the_rest: int) -> list[list[str]]:
    """`values` in lists whose `IN` filter keeps the search body within SEARCH_BODY_LIMIT characters."""
    chunks: list[list[str]] = [[]]
    used = used_by_the_rest
    for value in values:
        cost = len(json.dumps(value)) + 2  # the separator too
        if chunks[-1] and used + cost > SEARCH_BODY_LIMIT:
            chunks.append([])
            used = used_by_the_rest
        chunks[-1].append(value)
        used += cost
    return chunks


def _key(id_property: str | None, value: str | None) -> str | None:
    """A record's key as a batch read compares it: its id, or its unique property's value (an email in any case:
    HubSpot keeps emails lower-cased)."""
    return value.lower() if value is not None and id_property == "email" else value


def _trace_id(position: int) -> str:
    """An input's `objectWriteTraceId`: never a record id (those are digits), so an error naming it is unambiguous."""
    return f"u{position}"


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[start : start + size] for start in range(0, len(items), size))


def _batch(answers: Iterable[Mapping[str, Any]]) -> HubSpotBatch:
    results: list[HubSpotObject] = []
    errors: list[ApiError] = []
    for answer in answers:
        results += [HubSpotObject.from_json(item) for item in answer.get("results", ())]
        errors += [hubspot_batch_error(item) for item in answer.get("errors", ())]
    return HubSpotBatch(results, errors)


def _property(response: Response) -> HubSpotProperty:
    data = response.json()
    return HubSpotProperty(
        name=data["name"],
        label=data.get("label", ""),
        type=data.get("type", ""),
        field_type=data.get("fieldType", ""),
        group_name=data.get("groupName", ""),
        unique=bool(data.get("hasUniqueValue", False)),
    )

"""The emulated QBO Accounting API on Intuit's paths, `/v3/company/{realmId}/...` (`minorversion` accepted):

    GET  {entity}/{id}                      read
    POST {entity}                           create, or update when the body has an Id (full, or `"sparse": true`)
    POST {entity}?operation=delete          Invoice, Payment
    POST invoice?operation=void             Invoice void
    POST payment?operation=update&include=void   Payment void (Intuit's documented form)
    GET  query?query=...  / POST query      see _query.py
    GET  cdc?entities=A,B&changedSince=...  changes of the last 30 days, deleted as {"status": "Deleted"}
    POST batch                              {"BatchItemRequest": [...]} up to 30 items, per-item Fault in a 200
    GET  preferences                        {"Preferences": {..., "CurrencyPrefs": {...}}}  (see _company.py)
    GET  companyinfo/{realmId}              {"CompanyInfo": {..., "DefaultTimeZone"}}
    GET  exchangerate?sourcecurrencycode=EUR&asofdate=2026-01-05   {"ExchangeRate": {...}} (multicurrency only)

Writes honour `requestid` (a repeat returns the original answer and changes nothing) and
`include=allowduplicatedocnum`. Every answer carries `time`, the clock in the realm's zone (its offset as QBO's is,
in the company's local offset); errors are Fault bodies (_errors.py).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox.qbo import _company as company
from hsqbo_sandbox.qbo import _errors as errors
from hsqbo_sandbox.qbo import _query as query_language
from hsqbo_sandbox.qbo import _rules as rules
from hsqbo_sandbox.qbo._errors import QboFault
from hsqbo_sandbox.qbo._store import CDC_ENTITIES, ENTITIES, Realm
from hsqbo_sandbox.qbo._timestamps import COMPANY_TZ, company_date, company_time, company_time_ms, parse_time
from shared import money

if TYPE_CHECKING:
    from hsqbo_sandbox.qbo._sandbox import QboSandbox

BATCH_MAX_ITEMS = 30
CDC_MAX_OBJECTS = 1000
CDC_MAX_AGE_SECONDS = 30 * 86400
REQUEST_ID_MAX_LENGTH = 50


def render(payload: dict[str, Any], status: int, now: float, zone: dt.tzinfo = COMPANY_TZ) -> Response:
    """The answer; its `time` is the clock in the realm's zone (`zone`; before the realm is known, Pacific)."""
    body = money.dumps({**payload, "time": company_time_ms(now, zone)})
    return Response(body, status_code=status, media_type="application/json", headers={"intuit_tid": uuid.uuid4().hex})


def render_fault(fault: QboFault, now: float, zone: dt.tzinfo = COMPANY_TZ) -> Response:
    response = render({"Fault": fault.fault()}, fault.status, now, zone)
    if fault.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
    return response


class Api:
    def __init__(self, sandbox: QboSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        prefix = "/v3/company/{realm_id}"
        return [
            Route(f"{prefix}/query", self.query, methods=["GET", "POST"]),
            Route(f"{prefix}/cdc", self.cdc, methods=["GET"]),
            Route(f"{prefix}/batch", self.batch, methods=["POST"]),
            Route(f"{prefix}/preferences", self.preferences, methods=["GET"]),
            Route(f"{prefix}/companyinfo/{{company_id}}", self.company_info, methods=["GET"]),
            Route(f"{prefix}/exchangerate", self.exchange_rate, methods=["GET"]),
            Route(f"{prefix}/{{entity}}/{{entity_id}}", self.read, methods=["GET"]),
            Route(f"{prefix}/{{entity}}", self.write, methods=["POST"]),
        ]

    # plumbing

    def _authorize(self, request: Request) -> Realm:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.authentication_failed("Authorization header is missing or is not a Bearer token")
        grant = self.sandbox.tokens.lookup(token.strip())
        if grant is None:
            raise errors.authentication_failed("Token expired or revoked, or not a token this app issued")
        realm_id = request.path_params["realm_id"]
        realm = self.sandbox.realms.get(realm_id)
        if grant.account_id != realm_id or realm is None:
            raise errors.authorization_failed(f"The token does not grant access to company {realm_id}")
        return realm

    async def _answer(self, request: Request, handler: Any) -> Response:
        now = self.sandbox.clock.now()
        try:
            realm = self._authorize(request)
        except QboFault as fault:
            return render_fault(fault, now)
        try:
            payload = await handler(request, realm)
        except QboFault as fault:
            return render_fault(fault, now, realm.company.zone)
        return render(payload, 200, now, realm.company.zone)

    @staticmethod
    async def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = money.loads(await request.body())
        except ValueError:  # not JSON, or not UTF-8
            raise errors.QboFault("2010", "Request has invalid or unsupported property",
                                  "The request body is not valid JSON") from None  # fmt: skip
        if not isinstance(body, dict):
            raise errors.invalid("body", "must be a JSON object")
        return body

    @staticmethod
    def _entity(segment: str) -> str:
        entity = ENTITIES.get(segment.lower())
        if entity is None:
            raise errors.unsupported("Read", segment)
        return entity

    # routes

    async def read(self, request: Request) -> Response:
        async def handle(request: Request, realm: Realm) -> dict[str, Any]:
            entity = self._entity(request.path_params["entity"])
            record = realm.get(entity, request.path_params["entity_id"])
            if record is None:
                raise errors.not_found(entity, request.path_params["entity_id"])
            return {entity: record.data}

        return await self._answer(request, handle)

    async def preferences(self, request: Request) -> Response:
        async def handle(request: Request, realm: Realm) -> dict[str, Any]:
            return {"Preferences": company.preferences(realm.company, self.sandbox.clock.now())}

        return await self._answer(request, handle)

    async def company_info(self, request: Request) -> Response:
        async def handle(request: Request, realm: Realm) -> dict[str, Any]:
            if request.path_params["company_id"] != realm.realm_id:
                raise errors.not_found("CompanyInfo", request.path_params["company_id"])
            info = company.company_info(realm.company, realm.realm_id, realm.company_name, self.sandbox.clock.now())
            return {"CompanyInfo": info}

        return await self._answer(request, handle)

    async def exchange_rate(self, request: Request) -> Response:
        async def handle(request: Request, realm: Realm) -> dict[str, Any]:
            today = company_date(self.sandbox.clock.now())
            code, as_of = request.query_params.get("sourcecurrencycode"), request.query_params.get("asofdate")
            return {"ExchangeRate": company.exchange_rate(realm.company, code, as_of, today)}

        return await self._answer(request, handle)

    async def write(self, request: Request) -> Response:
        async def handle(realm: Realm, now: float) -> Response:
            entity = self._entity(request.path_params["entity"])
            body = await self._json_body(request)
            operation = self._operation(entity, request.query_params.get("operation"),
                                        request.query_params.get("include"), body)  # fmt: skip
            include = request.query_params.get("include", "")
            options = rules.Options(allow_duplicate_doc_number="allowduplicatedocnum" in include)
            outcome = self.sandbox.apply(realm, entity, operation, body, options)
            return render({entity: outcome.body}, 200, now, realm.company.zone)

        return await self._replayable(request, handle, request_id_max=REQUEST_ID_MAX_LENGTH)

    async def _replayable(
        self,
        request: Request,
        handle: Callable[[Realm, float], Awaitable[Response]],
        *,
        request_id_max: int | None = None,
    ) -> Response:
        """A write honouring `requestid`: a repeated id answers the first answer again and changes nothing."""
        now = self.sandbox.clock.now()
        try:
            realm = self._authorize(request)
        except QboFault as fault:
            return render_fault(fault, now)
        request_id = request.query_params.get("requestid")
        if request_id is not None:
            if request_id_max is not None and len(request_id) > request_id_max:
                return render_fault(errors.invalid("requestid", f"is longer than {request_id_max} characters"), now)
            if request_id in realm.replies:
                status, answer = realm.replies[request_id]
                return Response(answer, status_code=status, media_type="application/json")
        try:
            response = await handle(realm, now)
        except QboFault as fault:
            response = render_fault(fault, now, realm.company.zone)
        if request_id is not None and response.status_code < 500:
            realm.remember_reply(request_id, response.status_code, bytes(response.body))
        return response

    @staticmethod
    def _operation(entity: str, operation: str | None, include: str | None, body: dict[str, Any]) -> str:
        if include == "void" and entity == "Payment" and operation in (None, "update"):
            return "void"
        if operation == "void" and entity == "Invoice":
            return "void"
        if operation in (None, "create", "update"):
            return "update" if body.get("Id") else "create"
        if operation == "delete":
            return "delete"
        raise errors.unsupported(str(operation), entity)

    async def query(self, request: Request) -> Response:
        async def handle(request: Request, realm: Realm) -> dict[str, Any]:
            text = request.query_params.get("query")
            if request.method == "POST":
                text = (await request.body()).decode()
            if not text:
                raise errors.required("query")
            return {"QueryResponse": run_query(realm, text)}

        return await self._answer(request, handle)

    async def cdc(self, request: Request) -> Response:
        async def handle(request: Request, realm: Realm) -> dict[str, Any]:
            return changed_data(realm, request.query_params.get("entities"),
                                request.query_params.get("changedSince"), self.sandbox.clock.now())  # fmt: skip

        return await self._answer(request, handle)

    async def batch(self, request: Request) -> Response:
        async def handle(realm: Realm, now: float) -> Response:
            items = (await self._json_body(request)).get("BatchItemRequest")
            if not isinstance(items, list) or not items:
                raise errors.required("BatchItemRequest")
            if len(items) > BATCH_MAX_ITEMS:
                raise errors.invalid("BatchItemRequest", f"holds {len(items)} items; at most {BATCH_MAX_ITEMS}")
            items_answered = [self._batch_item(realm, item) for item in items]
            return render({"BatchItemResponse": items_answered}, 200, now, realm.company.zone)

        return await self._replayable(request, handle)

    def _batch_item(self, realm: Realm, item: Any) -> dict[str, Any]:
        b_id = item.get("bId") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict) or not b_id:
                raise errors.required("bId")
            if self.sandbox.faults.refuses_batch_item(json.dumps(item)):
                raise errors.business_rule("refused by the sandbox's fault injection (batch_item_fault)")
            if "Query" in item:
                return {"bId": b_id, "QueryResponse": run_query(realm, str(item["Query"]))}
            entity = next((ENTITIES[k.lower()] for k in item if k.lower() in ENTITIES), None)
            if entity is None:
                raise errors.required("entity")
            body = item[entity] if entity in item else next(v for k, v in item.items() if k.lower() == entity.lower())
            operation = str(item.get("operation", "create"))
            options_data = item.get("optionsData") or ""
            if operation == "update" and "void" in options_data:
                operation = "void"
            elif operation not in ("create", "update", "delete"):
                raise errors.unsupported(operation, entity)
            options = rules.Options(allow_duplicate_doc_number="allowduplicatedocnum" in options_data)
            outcome = self.sandbox.apply(realm, entity, operation, body, options)
            return {"bId": b_id, entity: outcome.body}
        except QboFault as fault:
            return {"bId": b_id, "Fault": fault.fault()}


def run_query(realm: Realm, text: str) -> dict[str, Any]:
    parsed = query_language.parse(text)
    indexes = {"Customer": {"displayname": realm.display_names}, "Item": {"name": realm.item_names},
               "Invoice": {"docnumber": realm.doc_numbers}}.get(parsed.entity)  # fmt: skip
    return query_language.execute(parsed, realm.records[parsed.entity], indexes)


def changed_data(realm: Realm, entities_param: str | None, since_param: str | None, now: float) -> dict[str, Any]:
    if not entities_param:
        raise errors.required("entities")
    if not since_param:
        raise errors.required("changedSince")
    entities = []
    for name in entities_param.split(","):
        entity = ENTITIES.get(name.strip().lower())
        if entity not in CDC_ENTITIES:
            raise errors.invalid("entities", f"{name.strip()} is not supported by change data capture")
        entities.append(entity)
    try:
        since = parse_time(since_param)
    except ValueError:
        raise errors.invalid("changedSince", f"{since_param!r} is not a date-time") from None
    if since < now - CDC_MAX_AGE_SECONDS:
        raise errors.invalid("changedSince", "must be within the last 30 days")
    budget = CDC_MAX_OBJECTS
    responses = []
    for entity in entities:
        changed = sorted((r for r in realm.records[entity].values() if r.updated >= since),
                         key=lambda r: (r.updated, int(r.data["Id"])))  # fmt: skip
        rows: list[dict[str, Any]] = [r.data for r in changed[:budget]]
        deleted = sorted((when, entity_id) for entity_id, when in realm.deleted[entity].items() if when >= since)
        rows += [{"status": "Deleted", "domain": "QBO", "Id": entity_id,
                  "MetaData": {"LastUpdatedTime": company_time(when)}}
                 for when, entity_id in deleted[: budget - len(rows)]]  # fmt: skip
        budget -= len(rows)
        response: dict[str, Any] = {"startPosition": 1, "maxResults": len(rows), "totalCount": len(rows)}
        if rows:
            response[entity] = rows
        responses.append(response)
    return {"CDCResponse": [{"QueryResponse": responses}]}

"""The QBO sandbox's own control routes, JSON under `/_sandbox/`; the shared ones (requests, faults, clock,
webhooks, state) and the conventions (snake_case, realms named by `realm_id`, errors) are in
`sandbox/hsqbo_sandbox/_control.py`. A refusal by a QBO rule carries the Fault body in "provider_error".

GET  accounts       {"accounts": [{"realm_id", "company_name", "counts": {entity: n}}]}
POST accounts       {"realm_id"?, "company_name"?} -> 201 the new realm (with its accounts and tax codes)
POST user-edit      {"realm_id", "entity", "action": create|update|delete|void|merge, "data"} -> {entity: record}
                    act as a QBO user: no SyncToken, updates are sparse, merge takes data {"survivor_id",
                    "merged_id"}; emits webhooks like a real edit; makes Group (bundle) items, which the API
                    cannot
POST seed           {"realm_id"? (default: a new realm), "customers"?, "items"?, "invoices"?, "seed"?}
                    -> 201 {"realm_id", counts}: a demo book (multi-invoice payments, items with and without Sku)
POST tokens         {"realm_id", "client_id"?} -> 201 {"access_token", "refresh_token", "expires_in",
                    "x_refresh_token_expires_in", "realm_id"}
GET  company        ?realm_id= -> the realm's company settings {"home_currency", "multicurrency", "time_zone",
                    "reports_time_zone", "exchange_rates": {code: rate}}
PUT  company        {"realm_id", and any of those} -> the settings (multicurrency cannot be turned off; time_zone
                    is the company's IANA zone, its clock's offset in every `time`; reports_time_zone false makes
                    CompanyInfo carry no DefaultTimeZone)
GET  limits         the throttles every realm gets: {"requests_per_minute", "max_concurrent", "batch_per_minute"}
PUT  limits         {name: value, ...} changes some of them -> the limits
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox._control import Json, answer, control_routes, read_object, required
from hsqbo_sandbox.qbo._errors import QboFault

if TYPE_CHECKING:
    from hsqbo_sandbox.qbo._sandbox import QboSandbox


def _qbo_error(exc: Exception) -> tuple[int, Json] | None:
    return (exc.status, {"Fault": exc.fault()}) if isinstance(exc, QboFault) else None


class Control:
    def __init__(self, sandbox: QboSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        own = {
            ("GET", "accounts"): self.list_accounts,
            ("POST", "accounts"): self.create_account,
            ("POST", "user-edit"): self.user_edit,
            ("POST", "seed"): self.seed,
            ("POST", "tokens"): self.issue_token,
            ("GET", "company"): self.get_company,
            ("PUT", "company"): self.put_company,
            ("GET", "limits"): self.get_limits,
            ("PUT", "limits"): self.put_limits,
        }
        return control_routes(self.sandbox, own, provider_error=_qbo_error)

    async def list_accounts(self, request: Request) -> Response:
        return answer({"accounts": [realm.summary() for realm in self.sandbox.realms.values()]})

    async def create_account(self, request: Request) -> Response:
        body = await read_object(request)
        realm = self.sandbox.create_realm(body.get("realm_id"), body.get("company_name"))
        return answer(realm.summary(), 201)

    async def user_edit(self, request: Request) -> Response:
        body = await read_object(request, exact=True)
        entity = str(body.get("entity", ""))
        outcome = self.sandbox.user_edit(str(required(body, "realm_id")), entity, str(required(body, "action")),
                                         body.get("data") or {})  # fmt: skip
        return answer({outcome.changes[0].entity if outcome.changes else entity: outcome.body})

    async def seed(self, request: Request) -> Response:
        counts = await read_object(request)
        realm_id = counts.pop("realm_id", None)
        return answer(self.sandbox.seed(realm_id, **counts), 201)

    async def issue_token(self, request: Request) -> Response:
        body = await read_object(request)
        realm_id = str(required(body, "realm_id"))
        if realm_id not in self.sandbox.realms:
            raise KeyError(realm_id)
        return answer(self.sandbox.issue_token(realm_id, body.get("client_id")), 201)

    async def get_company(self, request: Request) -> Response:
        realm = self.sandbox.realms[str(request.query_params.get("realm_id", ""))]
        return answer(realm.company.to_dict())

    async def put_company(self, request: Request) -> Response:
        body = await read_object(request)
        realm = self.sandbox.realms[str(required(body, "realm_id"))]
        realm.company.configure({key: value for key, value in body.items() if key != "realm_id"})
        return answer(realm.company.to_dict())

    async def get_limits(self, request: Request) -> Response:
        return answer(self.sandbox.limiter.limits.to_dict())

    async def put_limits(self, request: Request) -> Response:
        limits = self.sandbox.limiter.limits
        changes = await read_object(request)
        unknown = set(changes) - set(limits.to_dict())
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
        for name, value in changes.items():
            setattr(limits, name, int(value))
        return answer(limits.to_dict())

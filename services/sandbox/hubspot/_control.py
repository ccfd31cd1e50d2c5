"""The control surface under `/_sandbox/` (JSON; no authentication; never rate limited or faulted):

GET  /_sandbox/accounts                      portals and their limits
POST /_sandbox/accounts                      {portalId?, burstLimit?, dailyLimit?, searchPerSecond?,
                                             searchResultCap?, allowOpenInvoiceDelete?} -> 201 the portal
PATCH /_sandbox/accounts/{portalId}          change those limits
POST /_sandbox/tokens                        {portalId, kind: "oauth"|"private", token?} -> OAuth token pair
                                             (access_token, refresh_token, expires_in) or {token} (private app)
POST /_sandbox/user-edit                     act as a HubSpot user (changeSource CRM_UI, sourceId userId:N):
                                             {portalId, objectType, action: create|update|delete|restore|merge|
                                             associate|dissociate, id?, properties?, userId? (default 1),
                                             mergeId?, toObjectType?, toId?, associationTypeId?}
POST /_sandbox/seed                          {portalId?, companies?, contactsPerCompany?, loneContacts?,
                                             products?, invoices?, seed?} -> counts (no webhooks: the data is
                                             there before the app is installed)
GET|DELETE /_sandbox/requests                the API request log (filters: account, since, method,
                                             path_contains, status)
GET|PUT /_sandbox/faults                     the FaultConfig (PUT: fields to change)
GET|POST /_sandbox/clock                     {now, offset}; POST {advance: seconds}
GET|PUT /_sandbox/webhooks                   dispatcher stats; PUT {url} changes the target
POST /_sandbox/webhooks/drain                {timeout?} -> {drained, stats}
GET  /_sandbox/state                         everything, as the state file holds it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.sandbox.hubspot._api import json_body
from services.sandbox.hubspot._errors import HubSpotError, validation_error
from services.sandbox.hubspot._render import error_response, json_response

if TYPE_CHECKING:
    from services.sandbox.hubspot import HubSpotSandbox

_LIMIT_FIELDS = {
    "burstLimit": "burst_limit",
    "dailyLimit": "daily_limit",
    "searchPerSecond": "search_per_second",
    "searchResultCap": "search_result_cap",
    "allowOpenInvoiceDelete": "allow_open_invoice_delete",
}
_SEED_FIELDS = {
    "companies": "companies",
    "contactsPerCompany": "contacts_per_company",
    "loneContacts": "lone_contacts",
    "products": "products",
    "invoices": "invoices",
    "seed": "seed",
}


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise validation_error("the body must be a JSON object")
    return body


def _renamed(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    unknown = set(body) - set(names) - {"portalId"}
    if unknown:
        raise validation_error(f"unknown fields: {', '.join(sorted(unknown))}")
    return {names[key]: value for key, value in body.items() if key in names}


class ControlApi:
    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        handlers = {
            ("/_sandbox/accounts", "GET"): self.list_accounts,
            ("/_sandbox/accounts", "POST"): self.create_account,
            ("/_sandbox/accounts/{portalId:int}", "PATCH"): self.configure_account,
            ("/_sandbox/tokens", "POST"): self.issue_token,
            ("/_sandbox/user-edit", "POST"): self.user_edit,
            ("/_sandbox/seed", "POST"): self.seed,
            ("/_sandbox/requests", "GET"): self.list_requests,
            ("/_sandbox/requests", "DELETE"): self.clear_requests,
            ("/_sandbox/faults", "GET"): self.get_faults,
            ("/_sandbox/faults", "PUT"): self.put_faults,
            ("/_sandbox/clock", "GET"): self.get_clock,
            ("/_sandbox/clock", "POST"): self.advance_clock,
            ("/_sandbox/webhooks", "GET"): self.webhook_stats,
            ("/_sandbox/webhooks", "PUT"): self.set_webhook_url,
            ("/_sandbox/webhooks/drain", "POST"): self.drain,
            ("/_sandbox/state", "GET"): self.state,
        }
        return [Route(path, self._guarded(handler), methods=[method]) for (path, method), handler in handlers.items()]

    @staticmethod
    def _guarded(handler: Any) -> Any:
        async def run(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except HubSpotError as exc:
                return error_response(exc)
            except (ValueError, TypeError, KeyError) as exc:
                return error_response(validation_error(str(exc)))
            return response

        return run

    async def list_accounts(self, request: Request) -> Response:
        return json_response({"results": [account.settings() for account in self.sandbox.accounts]})

    async def create_account(self, request: Request) -> Response:
        body = _object(await json_body(request))
        portal_id = self.sandbox.create_portal(body.get("portalId"), **_renamed(body, _LIMIT_FIELDS))
        return json_response(self.sandbox.accounts.get(portal_id).settings(), 201)

    async def configure_account(self, request: Request) -> Response:
        account = self.sandbox.accounts.get(request.path_params["portalId"])
        account.configure(**_renamed(_object(await json_body(request)), _LIMIT_FIELDS))
        return json_response(account.settings())

    async def issue_token(self, request: Request) -> Response:
        body = _object(await json_body(request))
        portal_id = int(body["portalId"])
        if body.get("kind", "oauth") == "private":
            return json_response({"token": self.sandbox.private_app_token(portal_id, body.get("token"))}, 201)
        pair = self.sandbox.issue_token(portal_id)
        return json_response({"access_token": pair.access_token, "refresh_token": pair.refresh_token,
                              "expires_in": pair.expires_in, "hub_id": portal_id}, 201)  # fmt: skip

    async def user_edit(self, request: Request) -> Response:
        body = _object(await json_body(request))
        return json_response(self.sandbox.user_edit(**{_snake(key): value for key, value in body.items()}))

    async def seed(self, request: Request) -> Response:
        body = _object(await json_body(request))
        return json_response(self.sandbox.seed(body.get("portalId"), **_renamed(body, _SEED_FIELDS)))

    async def list_requests(self, request: Request) -> Response:
        params = request.query_params
        filters: dict[str, Any] = {key: params[key] for key in ("account", "method", "path_contains") if key in params}
        if "since" in params:
            filters["since"] = float(params["since"])
        if "status" in params:
            filters["status"] = int(params["status"])
        entries = self.sandbox.requests.list(**filters)
        return json_response({"count": len(entries), "requests": [entry.to_dict() for entry in entries]})

    async def clear_requests(self, request: Request) -> Response:
        self.sandbox.requests.clear()
        return Response(status_code=204)

    async def get_faults(self, request: Request) -> Response:
        return json_response(self.sandbox.faults.config.to_dict())

    async def put_faults(self, request: Request) -> Response:
        return json_response(self.sandbox.faults.update(**_object(await json_body(request))).to_dict())

    async def get_clock(self, request: Request) -> Response:
        return json_response({"now": self.sandbox.clock.now(), "offset": self.sandbox.clock.offset})

    async def advance_clock(self, request: Request) -> Response:
        self.sandbox.clock.advance(float(_object(await json_body(request)).get("advance", 0)))
        return await self.get_clock(request)

    async def webhook_stats(self, request: Request) -> Response:
        return json_response(self.sandbox.webhooks.stats())

    async def set_webhook_url(self, request: Request) -> Response:
        self.sandbox.webhooks.set_url(_object(await json_body(request)).get("url"))
        return json_response(self.sandbox.webhooks.stats())

    async def drain(self, request: Request) -> Response:
        timeout = float(_object(await json_body(request)).get("timeout", 10.0))
        drained = await self.sandbox.webhooks.drain(timeout)
        return json_response({"drained": drained, "stats": self.sandbox.webhooks.stats()})

    async def state(self, request: Request) -> Response:
        return json_response(self.sandbox.dump())


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)

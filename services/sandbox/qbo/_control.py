"""The QBO sandbox's control surface, JSON under `/_sandbox/` (never faulted, throttled or logged):

GET  accounts                      realms (id, company name, entity counts)
POST accounts                      {"realm_id"?, "company_name"?} -> new realm with accounts and tax codes
POST user-edit                     {"realm_id", "entity", "action": create|update|delete|void|merge, "data"}
                                   act as a QBO user (no SyncToken, update is sparse; merge takes
                                   {"survivor_id", "merged_id"}); emits webhooks like a real edit
POST seed                          {"realm_id"?, "customers"?, "items"?, "invoices"?, "seed"?} demo book
GET  requests                      ?account=&since=&method=&path_contains=&status= the request log; DELETE clears
GET  faults / PUT faults           the FaultConfig / change some of its fields
GET  limits / PUT limits           per-realm throttles (requests_per_minute, max_concurrent, batch_per_minute)
GET  webhooks / PUT webhooks       dispatcher stats / {"url": ...}
POST webhooks/drain                {"timeout": seconds} -> {"drained": bool, ...stats}
GET  clock / POST clock/advance    {"seconds": n}
POST tokens                        {"realm_id", "client_id"?} -> a token pair for that realm
GET  state / PUT state             dump / load everything (realms, tokens, clock offset)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.qbo._errors import QboFault

if TYPE_CHECKING:
    from services.sandbox.qbo._sandbox import QboSandbox


def _error(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


class Control:
    def __init__(self, sandbox: QboSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        routes = {
            "accounts": (self.accounts, ["GET", "POST"]),
            "user-edit": (self.user_edit, ["POST"]),
            "seed": (self.seed, ["POST"]),
            "requests": (self.requests, ["GET", "DELETE"]),
            "faults": (self.faults, ["GET", "PUT"]),
            "limits": (self.limits, ["GET", "PUT"]),
            "webhooks": (self.webhooks, ["GET", "PUT"]),
            "webhooks/drain": (self.drain, ["POST"]),
            "clock": (self.clock, ["GET"]),
            "clock/advance": (self.advance, ["POST"]),
            "tokens": (self.tokens, ["POST"]),
            "state": (self.state, ["GET", "PUT"]),
        }
        return [Route(f"/_sandbox/{path}", self._guarded(handler), methods=methods)
                for path, (handler, methods) in routes.items()]  # fmt: skip

    @staticmethod
    def _guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except QboFault as fault:
                return JSONResponse({"Fault": fault.fault()}, status_code=fault.status)
            except KeyError as exc:
                return _error(f"unknown {exc.args[0]!r}", 404)
            except (TypeError, ValueError) as exc:
                return _error(str(exc))
            return response

        return endpoint

    async def accounts(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            realm = self.sandbox.create_realm(body.get("realm_id"), body.get("company_name"))
            return JSONResponse(realm.summary(), status_code=201)
        return JSONResponse({"accounts": [realm.summary() for realm in self.sandbox.realms.values()]})

    async def user_edit(self, request: Request) -> Response:
        body = await _body(request)
        outcome = self.sandbox.user_edit(str(body["realm_id"]), str(body.get("entity", "")), str(body["action"]),
                                         body.get("data") or {})  # fmt: skip
        entity = outcome.changes[0].entity if outcome.changes else body.get("entity", "")
        return JSONResponse({entity: outcome.body})

    async def seed(self, request: Request) -> Response:
        body = await _body(request)
        counts = {key: int(body[key]) for key in ("customers", "items", "invoices", "seed") if key in body}
        return JSONResponse(self.sandbox.seed(body.get("realm_id"), **counts), status_code=201)

    async def requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.sandbox.requests.clear()
            return JSONResponse({"cleared": True})
        params = request.query_params
        entries = self.sandbox.requests.list(
            account=params.get("account"),
            since=float(params["since"]) if "since" in params else None,
            method=params.get("method"),
            path_contains=params.get("path_contains"),
            status=int(params["status"]) if "status" in params else None,
        )
        return JSONResponse({"count": len(entries), "requests": [entry.to_dict() for entry in entries]})

    async def faults(self, request: Request) -> Response:
        if request.method == "PUT":
            self.sandbox.faults.update(**await _body(request))
        return JSONResponse(self.sandbox.faults.config.to_dict())

    async def limits(self, request: Request) -> Response:
        if request.method == "PUT":
            for name, value in (await _body(request)).items():
                if not hasattr(self.sandbox.limiter.limits, name):
                    raise ValueError(f"unknown limit {name!r}")
                setattr(self.sandbox.limiter.limits, name, int(value))
        return JSONResponse(self.sandbox.limiter.limits.to_dict())

    async def webhooks(self, request: Request) -> Response:
        if request.method == "PUT":
            self.sandbox.webhooks.set_url((await _body(request)).get("url"))
        return JSONResponse({**self.sandbox.webhooks.stats(), "format": self.sandbox.webhook_format})

    async def drain(self, request: Request) -> Response:
        timeout = float((await _body(request)).get("timeout", 10.0))
        drained = await self.sandbox.webhooks.drain(timeout)
        return JSONResponse({"drained": drained, **self.sandbox.webhooks.stats()})

    async def clock(self, request: Request) -> Response:
        return JSONResponse({"now": self.sandbox.clock.now(), "offset": self.sandbox.clock.offset})

    async def advance(self, request: Request) -> Response:
        self.sandbox.clock.advance(float((await _body(request))["seconds"]))
        return await self.clock(request)

    async def tokens(self, request: Request) -> Response:
        body = await _body(request)
        realm_id = str(body["realm_id"])
        if realm_id not in self.sandbox.realms:
            raise KeyError(realm_id)
        return JSONResponse(self.sandbox.issue_token(realm_id, body.get("client_id")), status_code=201)

    async def state(self, request: Request) -> Response:
        if request.method == "PUT":
            self.sandbox.load(await _body(request))
        return JSONResponse(self.sandbox.dump())

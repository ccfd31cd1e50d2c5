"""What every emulated API endpoint does around its handler: authenticate the bearer token, apply the portal's
rate limits (429 + headers), refuse a call outside the token's scopes (403 MISSING_SCOPES, `_scopes.py`), turn
`HubSpotError` into HubSpot's error body, and parse JSON bodies and list-valued query parameters the way HubSpot
accepts them (`properties=a,b` or repeated)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from hsqbo_sandbox.hubspot._accounts import Account, Accounts
from hsqbo_sandbox.hubspot._auth import Authenticator, Caller
from hsqbo_sandbox.hubspot._errors import HubSpotError, validation_error
from hsqbo_sandbox.hubspot._ratelimit import RateLimiter, rate_limit_body
from hsqbo_sandbox.hubspot._render import error_response, json_response
from hsqbo_sandbox.hubspot._schema import ObjectType, object_type_named
from hsqbo_sandbox.hubspot._scopes import check, requirements
from hsqbo_sandbox.hubspot._store import Actor, Portal
from shared import money

_CALLER_KEY = "hubspot_caller"


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    account: Account
    caller: Caller

    @property
    def portal(self) -> Portal:
        return self.account.portal

    @property
    def actor(self) -> Actor:
        return self.caller.actor


Handler = Callable[[Request, Context], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class ApiGuard:
    def __init__(self, auth: Authenticator, accounts: Accounts, limiter: RateLimiter) -> None:
        self.auth = auth
        self.accounts = accounts
        self.limiter = limiter

    def endpoint(self, handler: Handler, *, search: bool = False) -> Endpoint:
        async def run(request: Request) -> Response:
            try:
                caller = self.auth.authenticate(request.headers.get("authorization"))
            except HubSpotError as exc:
                return error_response(exc)
            request.scope.setdefault("state", {})[_CALLER_KEY] = caller
            account = self.accounts.get(caller.portal_id)
            verdict = self.limiter.admit(caller.portal_id, account.limits, search=search,
                                         private_app=caller.private_app)  # fmt: skip
            if not verdict.allowed:
                assert verdict.policy is not None
                return json_response(rate_limit_body(verdict.policy), 429, verdict.headers)
            try:
                check(caller.scopes, await _requirements(request))
                response = await handler(request, Context(account, caller))
            except HubSpotError as exc:
                response = error_response(exc)
            response.headers.update(verdict.headers)
            return response

        return run


async def _requirements(request: Request) -> list[frozenset[str]]:
    """The scopes the request needs; a create's body is read for the associations it makes."""
    body: Any = None
    if request.method == "POST":
        try:
            body = money.loads(await request.body() or b"null")
        except ValueError:  # not JSON, or not UTF-8
            body = None  # the handler answers the malformed body
    return requirements(request.method, request.url.path, list_param(request, "associations") or (), body)


def identify(scope: Scope) -> tuple[str | None, str | None]:
    """(portal id, OAuth client id) of a request, for the request log."""
    caller = scope.get("state", {}).get(_CALLER_KEY)
    if not isinstance(caller, Caller):
        return None, None
    return str(caller.portal_id), caller.client_id


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return money.loads(raw) if raw else None
    except ValueError:  # not JSON, or not UTF-8
        raise validation_error("Invalid input JSON on line 1: the request body is not valid JSON") from None


def list_param(request: Request, name: str) -> list[str] | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def object_type_param(request: Request, key: str = "objectType") -> ObjectType:
    name = request.path_params[key]
    object_type = object_type_named(name)
    if object_type is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return object_type


def inputs_of(body: Any, *, limit: int) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation_error("The request body needs an `inputs` list")
    inputs: list[Any] = body["inputs"]
    if len(inputs) > limit:
        raise validation_error(f"Batch inputs are limited to {limit}; got {len(inputs)}",
                               context={"limit": [str(limit)]})  # fmt: skip
    return inputs


def int_param(request: Request, name: str, default: int, *, maximum: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise validation_error(f"{name} must be an integer from 1 to {maximum}")
    return int(text)

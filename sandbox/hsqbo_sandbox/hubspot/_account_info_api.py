"""The account information API: `GET /account-info/v3/details` (and the dated `/account-info/2026-03/details`),
scope `oauth`: the portal's id, time zone, company currency and additional currencies (set per portal through the
control surface, `PATCH /_sandbox/accounts/{portal_id}`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox.hubspot._api import ApiGuard, Context
from hsqbo_sandbox.hubspot._render import json_response


class AccountInfoApi:
    def __init__(self, guard: ApiGuard) -> None:
        self.guard = guard

    def routes(self) -> list[Route]:
        details = self.guard.endpoint(self.details)
        return [
            Route("/account-info/v3/details", details, methods=["GET"]),
            Route("/account-info/2026-03/details", details, methods=["GET"]),
        ]

    async def details(self, request: Request, ctx: Context) -> Response:
        return json_response(ctx.account.details())

"""Authentication: bearer tokens on API calls, the OAuth install flow on HubSpot's real paths, private-app tokens.

- `GET /oauth/authorize?client_id&redirect_uri&scope[&state][&portal_id]` approves at once for the configured
  client and redirects to `redirect_uri?code=...[&state=...]` (`portal_id`, a sandbox extension, picks the
  installing portal; default: the first portal).
- `POST /oauth/v1/token`, `/oauth/v3/token`, `/oauth/2026-03/token`: form-encoded `grant_type`
  (`authorization_code` | `refresh_token`), `client_id`, `client_secret`, `code`, `redirect_uri`, `refresh_token`.
  Answer (SPEC `AccessTokenResponse`): access_token, refresh_token, expires_in (1800: 30-minute tokens),
  token_type "bearer", token_use "access_token", hub_id, scopes. Refresh tokens do not rotate (HubSpot returns
  the same one). Errors are 400 with the RFC 6749 fields plus HubSpot's legacy ones:
  `{"error", "error_description", "status" (BAD_AUTH_CODE | BAD_REFRESH_TOKEN | BAD_CLIENT_ID | ...), "message",
  "correlationId"}` (reference §7).
- `GET /oauth/v1/access-tokens/{token}`: token metadata (hub_id, app_id, scopes, expires_in).
- API calls: `Authorization: Bearer <token>`; missing/unknown -> 401 INVALID_AUTHENTICATION, expired -> 401
  EXPIRED_AUTHENTICATION "The OAuth token used to make this call expired N second(s) ago." [3P]; a call outside
  the token's scopes -> 403 MISSING_SCOPES (`_scopes.py`).
- Tokens carry scopes: an install grants the authorize URL's `scope` (plus `optional_scope`), a private-app token
  and `issue_token` grant `DEFAULT_SCOPES` (hsqbo's requested set) unless told fewer.
- Writes made with the app's OAuth tokens are attributed to the app (changeSource INTEGRATION, sourceId = app id);
  a private-app token is attributed to its own app id.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hsqbo_sandbox._oauth import Grant, OAuthError, TokenIssuer
from hsqbo_sandbox.hubspot._accounts import Accounts
from hsqbo_sandbox.hubspot._errors import HubSpotError
from hsqbo_sandbox.hubspot._render import json_response
from hsqbo_sandbox.hubspot._scopes import EVERY_SCOPE
from hsqbo_sandbox.hubspot._store import Actor

# hsqbo's HubSpot project (its app's registration), as HubSpot knows it once `hs project upload` has run.
HUBSPOT_PROJECT = Path(__file__).parents[3] / "deploy" / "hubspot-app"


def app_scopes(project: Path) -> tuple[str, ...]:
    """The required scopes the project's app declares; without the project (the sandbox installed on its own), every
    scope the emulator checks."""
    app = project / "src" / "app" / "app-hsmeta.json"
    if not app.is_file():
        return EVERY_SCOPE
    return tuple(json.loads(app.read_text(encoding="utf-8"))["config"]["auth"]["requiredScopes"])


# The scopes of an installed hsqbo: what its app registration asks for (the scopes each call needs are checked
# independently, in `_scopes.py`). Tests grant fewer through `issue_token(scopes=...)` or the control surface.
DEFAULT_SCOPES = " ".join(app_scopes(HUBSPOT_PROJECT))
PRIVATE_APP_PREFIX = "private-app:"

_LEGACY_STATUS = {
    "invalid_grant": "BAD_GRANT",
    "invalid_client": "BAD_CLIENT_ID",
    "invalid_request": "BAD_REQUEST",
    "unsupported_grant_type": "BAD_GRANT_TYPE",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    portal_id: int
    client_id: str
    actor: Actor
    private_app: bool
    scopes: frozenset[str]  # granted: OAuth tokens carry their install's, private-app tokens their app's


class Authenticator:
    def __init__(self, tokens: TokenIssuer, accounts: Accounts, *, client_id: str, client_secret: str, app_id: str):
        self.tokens = tokens
        self.accounts = accounts
        self.client_id = client_id
        self.app_id = app_id
        tokens.register_client(client_id, client_secret)

    def register_private_app_token(
        self, portal_id: int, token: str, *, app_id: str | None = None, scopes: str = DEFAULT_SCOPES
    ) -> None:
        self.accounts.get(portal_id)
        self.tokens.register_static(token, str(portal_id), client_id=PRIVATE_APP_PREFIX + (app_id or self.app_id),
                                    scope=scopes)  # fmt: skip

    def caller(self, grant: Grant) -> Caller:
        private = grant.client_id.startswith(PRIVATE_APP_PREFIX)
        app_id = grant.client_id.removeprefix(PRIVATE_APP_PREFIX) if private else self.app_id
        return Caller(int(grant.account_id), grant.client_id, Actor("INTEGRATION", app_id), private,
                      frozenset(grant.scope.split()))  # fmt: skip

    def authenticate(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HubSpotError(
                401, "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )  # fmt: skip
        token = token.strip()
        grant = self.tokens.lookup(token)
        if grant is None:
            expired = self.tokens.expired_seconds_ago(token)
            if expired is not None:
                raise HubSpotError(401, "EXPIRED_AUTHENTICATION",
                                   f"The OAuth token used to make this call expired {int(expired)} second(s) ago.",
                                   context={"expire time": [f"{int(expired)} second(s) ago"]})  # fmt: skip
            raise HubSpotError(401, "INVALID_AUTHENTICATION", "The OAuth token used to make this call is not valid.")
        if self.accounts.find(int(grant.account_id)) is None:
            raise HubSpotError(401, "INVALID_AUTHENTICATION", "The portal this token belongs to no longer exists.")
        return self.caller(grant)

    # OAuth endpoints

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if client_id != self.client_id or not redirect_uri:
            return json_response(
                {"status": "error", "message": "Unknown client_id or missing redirect_uri",
                 "correlationId": str(uuid.uuid4()), "category": "VALIDATION_ERROR"},
                400,
            )  # fmt: skip
        portal_text = params.get("portal_id", "")
        account = self.accounts.get(int(portal_text)) if portal_text.isdigit() else self.accounts.first()
        scope = " ".join(params.get("scope", DEFAULT_SCOPES).split() + params.get("optional_scope", "").split())
        code = self.tokens.issue_code(str(account.portal_id), client_id, scope=scope,
                                      redirect_uri=redirect_uri)  # fmt: skip
        query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)

    async def token(self, request: Request) -> Response:
        # Form-encoded body only (v3 refuses query parameters); parsed here to need no multipart library.
        form_encoded = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))) if form_encoded else {}
        grant_type = fields.get("grant_type")
        try:
            if not form_encoded:
                raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
            self.tokens.check_client(fields.get("client_id"), fields.get("client_secret"))
            client_id = fields["client_id"]
            if grant_type == "authorization_code":
                if not fields.get("code"):
                    raise OAuthError("invalid_request", "missing code")
                pair = self.tokens.exchange_code(fields["code"], client_id, redirect_uri=fields.get("redirect_uri"))
            elif grant_type == "refresh_token":
                if not fields.get("refresh_token"):
                    raise OAuthError("invalid_request", "missing refresh_token")
                pair = self.tokens.refresh(fields["refresh_token"], client_id)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except OAuthError as exc:
            status = _LEGACY_STATUS.get(exc.error, "BAD_REQUEST")
            if exc.error == "invalid_grant":
                status = "BAD_REFRESH_TOKEN" if grant_type == "refresh_token" else "BAD_AUTH_CODE"
            return json_response(
                {"error": exc.error, "error_description": exc.description, "status": status,
                 "message": exc.description, "correlationId": str(uuid.uuid4())},
                400,
            )  # fmt: skip
        return json_response(
            {
                "token_type": "bearer",
                "token_use": "access_token",
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "expires_in": pair.expires_in,
                "hub_id": int(pair.account_id),
                "scopes": pair.scope.split(),
            },
            200,
        )

    async def access_token_info(self, request: Request) -> Response:
        token = request.path_params["token"]
        grant = self.tokens.lookup(token)
        if grant is None:
            return json_response(
                {"status": "error", "message": "The access token is invalid or expired", "category": "NOT_FOUND",
                 "correlationId": str(uuid.uuid4())},
                404,
            )  # fmt: skip
        caller = self.caller(grant)
        info: dict[str, Any] = {"token": token, "hub_id": caller.portal_id, "app_id": int(caller.actor.source_id or 0),
                                "scopes": grant.scope.split(), "token_type": "access", "user": "sandbox@example.com",
                                "hub_domain": f"portal-{caller.portal_id}.example.com"}  # fmt: skip
        return json_response(info, 200)

    def routes(self) -> list[Route]:
        token_paths = ("/oauth/v1/token", "/oauth/v3/token", "/oauth/2026-03/token")
        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            *(Route(path, self.token, methods=["POST"]) for path in token_paths),
            Route("/oauth/v1/access-tokens/{token}", self.access_token_info, methods=["GET"]),
        ]

"""Intuit's OAuth 2.0 endpoints, on their real paths:

    GET  /connect/oauth2                 authorize: auto-approves a registered client and redirects to
                                         redirect_uri?code=...&state=...&realmId=... (the company is the one named
                                         by the extra `realm_id` parameter, else the first realm)
    POST /oauth2/v1/tokens/bearer        grant_type=authorization_code | refresh_token, HTTP Basic client auth
    POST /v2/oauth2/tokens/revoke        {"token": "..."} (access or refresh), HTTP Basic client auth

Token answers: token_type, access_token, expires_in (3600), refresh_token, x_refresh_token_expires_in (100 days,
rolling). Refresh tokens rotate on every refresh; the previous one keeps answering for a short grace (see
sandbox/hsqbo_sandbox/_oauth.py). Errors are RFC 6749 bodies: `{"error": "invalid_grant"}` (400) and
`{"error": "invalid_client"}` (401).
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hsqbo_sandbox._oauth import OAuthError, TokenPair

if TYPE_CHECKING:
    from hsqbo_sandbox.qbo._sandbox import QboSandbox

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"


def token_answer(pair: TokenPair) -> dict[str, object]:
    return {
        "token_type": "bearer",
        "access_token": pair.access_token,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "x_refresh_token_expires_in": pair.refresh_expires_in,
    }


def _oauth_error(error: OAuthError) -> Response:
    status = 401 if error.error == "invalid_client" else 400
    return JSONResponse({"error": error.error}, status_code=status)


class Auth:
    def __init__(self, sandbox: QboSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/connect/oauth2", self.authorize, methods=["GET"]),
            Route("/oauth2/v1/tokens/bearer", self.token, methods=["POST"]),
            Route("/v2/oauth2/tokens/revoke", self.revoke, methods=["POST"]),
        ]

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if not self.sandbox.tokens.is_client(client_id) or not redirect_uri:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        answer: dict[str, str] = {"state": params.get("state", "")}
        if params.get("response_type") != "code":
            answer["error"] = "unsupported_response_type"
        elif ACCOUNTING_SCOPE not in params.get("scope", "").split():
            answer["error"] = "invalid_scope"
        else:
            realm = self.sandbox.realm_for_consent(params.get("realm_id"))
            answer["code"] = self.sandbox.tokens.issue_code(
                realm.realm_id, client_id, scope=params["scope"], redirect_uri=redirect_uri
            )
            answer["realmId"] = realm.realm_id
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urllib.parse.urlencode(answer)}", status_code=302)

    def _client(self, request: Request) -> str:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic authorization") from None
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "client authentication must use HTTP Basic")
        self.sandbox.tokens.check_client(client_id, secret)
        return client_id

    async def token(self, request: Request) -> Response:
        # a urlencoded form; parsed here rather than with request.form(), which needs python-multipart
        form = dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            client_id = self._client(request)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                pair = self.sandbox.tokens.exchange_code(
                    str(form.get("code", "")), client_id, redirect_uri=str(form.get("redirect_uri", "")) or None
                )
            elif grant_type == "refresh_token":
                pair = self.sandbox.tokens.refresh(str(form.get("refresh_token", "")), client_id)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except OAuthError as error:
            return _oauth_error(error)
        return JSONResponse(token_answer(pair), headers={"Cache-Control": "no-store"})

    async def revoke(self, request: Request) -> Response:
        try:
            self._client(request)
            body = await request.json()
        except OAuthError as error:
            return _oauth_error(error)
        except ValueError:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        self.sandbox.tokens.revoke(str(token))
        return Response(status_code=200)

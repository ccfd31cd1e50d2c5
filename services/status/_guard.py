"""Who may use the status page: every request passes these checks before any page sees it, so a new route or form is
protected without doing anything (its POST forms include `{{ csrf_field() }}`).

    forwarded headers   X-Forwarded-Proto and -For are believed from HSQBO_TRUSTED_PROXIES only (uvicorn's
                        ProxyHeadersMiddleware): behind a TLS proxy the page knows it is https (redirect URIs, cookies)
    target              a query string that is not UTF-8 is refused, 400 (shared.asgi.ValidTarget)
    Host allow-list     a Host that is neither an IP address, loopback's names, HSQBO_OAUTH_REDIRECT_BASE_URL's host nor
                        one of HSQBO_STATUS_ALLOWED_HOSTS is refused, 421: a DNS-rebinding site reaches the page under
                        its own name and is turned away before the password or the token matter
    signed session      Starlette's SessionMiddleware: a cookie signed with a key derived from HSQBO_ENCRYPTION_KEY, so
                        any replica, and the process after a restart, reads it; a forged or altered one is an empty
                        session. It holds the login and the CSRF token.
    login               with HSQBO_STATUS_PASSWORD set, a page needs a logged-in session (GET/POST /login, POST
                        /logout) or HTTP Basic (user `hsqbo`, for scripts). Unauthenticated, a browser is sent to
                        /login and anything else answered 401. Changing the password logs every session out.
    wrong passwords     10 a minute from one address, then 429 for that address (per process)
    CSRF                every POST carries the session's token (form field `csrf_token`, or header X-CSRF-Token),
                        whatever its Origin, else 403. A script GETs a page first for the cookie and the token (its
                        <meta name="csrf-token">).
    NUL                 a path, query or form with a NUL character is refused, 400: no store keeps one

GET /healthz passes everything except the Host check: probes carry no password (and it tells nothing).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Sequence

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared.asgi import ValidTarget
from shared.config import Settings

__all__ = ["CSRF_FIELD", "HEALTH_PATH", "LOGIN_PATH", "LOGOUT_PATH", "USER", "browser_binding", "guard_middleware",
           "signing_key"]  # fmt: skip

USER = "hsqbo"
HEALTH_PATH = "/healthz"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "hsqbo_status"
SESSION_SECONDS = 12 * 3600  # a login lasts a working day
MAX_FORM_BYTES = 1024 * 1024  # the page's forms are a few ids; anything bigger is not one of them
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_CSRF, _LOGIN = "csrf", "login"  # session keys


def signing_key(settings: Settings) -> str:
    """The key that signs the session cookie and the OAuth state: derived from HSQBO_ENCRYPTION_KEY, which every
    replica has (the page reads the accounts' credentials with it), else this process's own (a restart logs out)."""
    if settings.encryption_key is not None:
        key = settings.encryption_key.get_secret_value().encode()
        return hmac.new(key, b"hsqbo status page signing key", hashlib.sha256).hexdigest()
    return _process_key()


@functools.cache
def _process_key() -> str:
    return secrets.token_hex(32)


def browser_binding(request: Request) -> str:
    """Names the browser session without revealing its token: the OAuth state carries it, so a consent started in
    one browser cannot be finished in another (login CSRF: a stranger's account connected in the operator's)."""
    return hashlib.sha256(_csrf_token(request).encode()).hexdigest()[:32]


def _csrf_token(request: Request) -> str:
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = request.session[_CSRF] = secrets.token_urlsafe(32)
    return token


@pass_context
def _csrf_field(context: Context) -> Markup:
    token = _csrf_token(context["request"])
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


@pass_context
def _csrf_meta(context: Context) -> Markup:
    """Every page carries the token (base.html's head), so a script reads it from whatever page it GETs."""
    return Markup('<meta name="csrf-token" content="{}">').format(_csrf_token(context["request"]))


@pass_context
def _logged_in(context: Context) -> bool:
    return _LOGIN in context["request"].session


def guard_middleware(settings: Settings, password: str | None, templates: Environment) -> list[Middleware]:
    """The page's checks, outermost first, as Starlette middleware; adds `csrf_field()` (inside every POST form),
    `csrf_meta()` (base.html's head) and `logged_in()` to the templates."""
    templates.globals["csrf_field"] = _csrf_field
    templates.globals["csrf_meta"] = _csrf_meta
    templates.globals["logged_in"] = _logged_in
    public = settings.oauth_redirect_base_url
    key = signing_key(settings)
    return [
        Middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies)),
        Middleware(ValidTarget),
        Middleware(AllowedHosts, names=[*LOOPBACK_NAMES, public.host or "", *settings.status_allowed_hosts]),
        Middleware(
            SessionMiddleware,
            secret_key=key,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_SECONDS,
            same_site="lax",
            https_only=public.scheme == "https",
        ),
        Middleware(Guard, password=password, key=key, templates=templates),
    ]


class AllowedHosts:
    """Refuses (421) a request whose Host is a name not in `names` ("*.example.com": its subdomains; "*": any).
    An IP address is always allowed: a page can only reach it under its own origin, so it cannot rebind it."""

    def __init__(self, app: ASGIApp, names: Sequence[str]) -> None:
        self.app = app
        self.any = "*" in names
        self.names = frozenset(name.lower().rstrip(".") for name in names if name and not name.startswith("*."))
        self.suffixes = tuple(name.lower()[1:] for name in names if name.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any and not self.allowed(Request(scope).headers.get("host", "")):
            await PlainTextResponse("unknown Host: add it to HSQBO_STATUS_ALLOWED_HOSTS", 421)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allowed(self, header: str) -> bool:
        host = header.strip().lower()
        if host.startswith("["):  # [v6]:port
            host = host[1 : host.find("]")] if "]" in host else ""
        elif host.count(":") == 1:
            host = host.partition(":")[0]
        host = host.rstrip(".")
        if not host:
            return False
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return host in self.names or host.endswith(self.suffixes)


class Guard:
    """Login (session or HTTP Basic) and the CSRF token; serves /login and /logout itself."""

    def __init__(self, app: ASGIApp, password: str | None, key: str, templates: Environment) -> None:
        self.app = app
        self.password = password
        # What a logged-in session holds: changes with the password (and the key), so a new password logs all out.
        self.login = (
            None if password is None
            else hmac.new(key.encode(), b"login:" + password.encode(), hashlib.sha256).hexdigest()[:32]
        )  # fmt: skip
        self.templates = templates
        self.attempts = Attempts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        _csrf_token(request)  # every session has one from its first page on
        form = FormData()
        if request.method == "POST":
            body = await _read_body(receive)
            if body is None:
                await PlainTextResponse("request body too large", 413)(scope, receive, send)
                return
            receive = _replay(body, receive)
            request = Request(scope, receive)
            try:
                form = await request.form()
            except (HTTPException, MultiPartException, ValueError):  # a malformed multipart body, too many fields...
                await PlainTextResponse("malformed form", 400)(scope, receive, send)
                return
            receive = _replay(body, receive)  # the page reads the form again
        answer = self.check(request, form)
        if answer is not None:
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, request: Request, form: FormData) -> Response | None:
        """The answer when the request goes no further; None when the page may answer it."""
        path, query = request.scope["path"], request.scope["query_string"].decode("latin-1")
        fields = [*request.query_params.multi_items(), *form.multi_items()]
        if "\x00" in path or any("\x00" in text for field in fields for text in field if isinstance(text, str)):
            return PlainTextResponse("NUL characters are not allowed", 400)  # no store keeps them
        client = request.client.host if request.client is not None else ""
        guessing = (path == LOGIN_PATH and request.method == "POST") or "authorization" in request.headers
        if guessing and (wait := self.attempts.wait(client)) is not None:
            return PlainTextResponse("too many wrong passwords: try again later", 429, {"Retry-After": str(wait)})
        if not self.authenticated(request, client) and path != LOGIN_PATH:
            if request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", ""):
                target = path + (f"?{query}" if query else "")
                return RedirectResponse(f"{LOGIN_PATH}?{urllib.parse.urlencode({'next': target})}", 303)
            return PlainTextResponse(
                "password required", 401, {"WWW-Authenticate": 'Basic realm="hsqbo status", charset="UTF-8"'}
            )
        if request.method == "POST":
            given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), _csrf_token(request).encode()):
                return PlainTextResponse("missing or stale form token: reload the page and try again", 403)
        if path == LOGIN_PATH:
            if request.method not in ("GET", "HEAD", "POST"):
                return PlainTextResponse("Method Not Allowed", 405, {"Allow": "GET, HEAD, POST"})
            return self.login_page(request, form)
        if path == LOGOUT_PATH and request.method == "POST":
            request.session.clear()
            return _redirect(LOGIN_PATH if self.password is not None else "/", "logged out")
        return None

    def authenticated(self, request: Request, client: str) -> bool:
        if self.password is None:
            return True
        held = request.session.get(_LOGIN)
        if isinstance(held, str) and self.login is not None and hmac.compare_digest(held, self.login):
            return True
        if "authorization" not in request.headers:
            return False
        given = _basic_password(request.headers["authorization"])
        if given is not None and hmac.compare_digest(given, self.password.encode()):
            return True
        self.attempts.failed(client)
        return False

    def login_page(self, request: Request, form: FormData) -> Response:
        given_next = form.get("next") if request.method == "POST" else request.query_params.get("next")
        target = _local_path(given_next if isinstance(given_next, str) else "/")
        if self.password is None or self.login is None:
            return RedirectResponse(target, 303)  # loopback without a password: nothing to log into
        error = None
        if request.method == "POST":
            given = form.get("password")
            if isinstance(given, str) and hmac.compare_digest(given.encode(), self.password.encode()):
                request.session.clear()  # a new session: a token an attacker planted before the login is gone
                request.session[_LOGIN] = self.login
                request.session[_CSRF] = secrets.token_urlsafe(32)
                return RedirectResponse(target, 303)
            self.attempts.failed(request.client.host if request.client is not None else "")
            error = "wrong password"
        page = self.templates.get_template("login.html").render(
            request=request, notice=request.query_params.get("notice"), now=time.time(), next=target, error=error
        )
        return HTMLResponse(page, 401 if error else 200)


class Attempts:
    """Wrong passwords (login form or HTTP Basic) per client address: past `limit` in `window` seconds, that address
    is refused (429) until its oldest failure leaves the window. The operator, from another address, still logs in.
    Each process counts its own."""

    def __init__(
        self, limit: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic, most: int = 10_000
    ) -> None:
        self.limit, self.window, self.clock, self.most = limit, window, clock, most
        self.failures: dict[str, deque[float]] = {}

    def wait(self, client: str) -> int | None:
        """Seconds `client` must wait before it may try a password again; None when it may now."""
        now = self.clock()
        failures = self.failures.get(client)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str) -> None:
        now = self.clock()
        if len(self.failures) >= self.most:  # many addresses: forget those whose failures are all old
            self.failures = {k: v for k, v in self.failures.items() if v and v[-1] > now - self.window}
        self.failures.setdefault(client, deque()).append(now)


def _basic_password(header: str) -> bytes | None:
    """The password of an HTTP Basic header for user `hsqbo`, as bytes (any charset), else None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip().encode("latin-1"), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, given = decoded.partition(b":")
    return given if colon and hmac.compare_digest(user, USER.encode()) else None


def _local_path(given: str) -> str:
    """`given` when it is a path on this site, else "/": /login?next= never sends the operator elsewhere."""
    parts = urllib.parse.urlsplit(given)
    local = given.startswith("/") and not given.startswith(("//", "/\\")) and not parts.scheme and not parts.netloc
    return given if local and given.isprintable() else "/"


def _redirect(url: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?{urllib.parse.urlencode({'notice': notice})}", status_code=303)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None past MAX_FORM_BYTES."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then whatever the connection sends (its disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay

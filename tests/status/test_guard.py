"""The status page's guard (services/status/_guard.py): Host allow-list, login by signed session or HTTP Basic, CSRF
token on every POST, forwarded headers from trusted proxies only, and the OAuth state signed rather than kept."""

from __future__ import annotations

import base64
import re
import urllib.parse
from pathlib import Path

import itsdangerous
import pytest
from pydantic import SecretStr

from services.status import StatusPage, status_password
from services.status._connect import ConnectError, ConnectFlow
from services.status._guard import SESSION_COOKIE, Attempts, signing_key
from shared.domain import Provider
from shared.errors import ConfigError
from shared.store import Store
from tests.anyrequest import call
from tests.status.conftest import PASSWORD, Browser, PageFactory, page_settings, sync_settings

TEMPLATES = Path(__file__).parents[2] / "services" / "status" / "templates"


def basic(user: bytes, password: bytes) -> tuple[bytes, bytes]:
    return b"authorization", b"Basic " + base64.b64encode(user + b":" + password)


HOSTS = {
    b"evil.example:8081": 421,  # a DNS-rebinding page reaches loopback under its own name
    b"localhost.evil.example": 421,
    b"": 421,
    b"[": 421,
    b"\xff\xfe": 421,
    b"localhost:8081": 401,  # allowed: then the password is asked
    b"127.0.0.1:8081": 401,
    b"[::1]:8081": 401,
    b"10.1.2.3": 401,  # an IP address cannot be rebound: a page reaching it has that origin
    b"status.example.com": 401,  # HSQBO_STATUS_ALLOWED_HOSTS
    b"STATUS.example.com.:443": 401,
    b"a.ops.example.org": 401,  # *.ops.example.org
    b"ops.example.org": 421,
    b"hsqbo.example.net": 401,  # HSQBO_OAUTH_REDIRECT_BASE_URL's host
}


async def test_a_foreign_host_is_refused_before_the_password_is_asked(make_page: PageFactory) -> None:
    app = make_page(
        status_allowed_hosts=("status.example.com", "*.ops.example.org"),
        oauth_redirect_base_url="https://hsqbo.example.net",
    )
    answers = {host: (await call(app, "GET", "/", headers=[(b"host", host)])).status for host in HOSTS}
    assert answers == HOSTS


async def test_a_foreign_host_is_refused_even_without_a_password_on_loopback(make_page: PageFactory) -> None:
    app = make_page(password=None)
    assert (await call(app, "GET", "/dead-letters", headers=[(b"host", b"rebind.example:8081")])).status == 421
    assert (await call(app, "GET", "/healthz", headers=[(b"host", b"localhost:8081")])).status == 200


async def test_a_browser_logs_in_and_out_and_a_script_sends_http_basic(make_page: PageFactory) -> None:
    browser = Browser(make_page())
    away = await browser.get("/dead-letters?x=1")
    assert (away.status, away.header("location")) == (
        303,
        "/login?" + urllib.parse.urlencode({"next": "/dead-letters?x=1"}),
    )
    login = await browser.get(away.header("location") or "")
    assert login.status == 200
    assert 'name="next" value="/dead-letters?x=1"' in login.text

    wrong = await browser.post("/login", {"csrf_token": login.csrf_token(), "password": "guess", "next": "/"})
    assert wrong.status == 401
    assert "wrong password" in wrong.text
    right = await browser.post("/login", {"csrf_token": login.csrf_token(), "password": PASSWORD, "next": "/x?y=1"})
    assert (right.status, right.header("location")) == (303, "/x?y=1")
    overview = await browser.get("/")
    assert overview.status == 200
    assert 'id="logout"' in overview.text

    out = await browser.post("/logout", {"csrf_token": overview.csrf_token()})
    assert (out.status, out.header("location")) == (303, "/login?notice=logged+out")
    assert (await browser.get("/")).status == 303

    script = make_page()
    assert (await call(script, "GET", "/")).status == 401  # not a browser: asked for Basic, not redirected
    assert (await call(script, "GET", "/", headers=[basic(b"hsqbo", PASSWORD.encode())])).status == 200
    for refused in (basic(b"hsqbo", PASSWORD.encode("latin-1")), basic(b"other", PASSWORD.encode()),
                    basic("hsqbö".encode(), b"\xff\xfe"), (b"authorization", b"Basic \xe4\xf6=="),
                    (b"authorization", b"Basic !!"), (b"authorization", b"Bearer x")):  # fmt: skip
        answer = await call(script, "GET", "/", headers=[refused])
        assert answer.status == 401, refused
        assert answer.header("www-authenticate") == 'Basic realm="hsqbo status", charset="UTF-8"'


async def test_a_forged_or_altered_session_is_refused(make_page: PageFactory) -> None:
    app = make_page()
    browser = Browser(app)
    await browser.log_in()
    held = browser.cookies[SESSION_COOKIE]
    assert (await browser.get("/")).status == 200

    payload = base64.b64encode(b'{"login": "0123456789abcdef0123456789abcdef", "csrf": "x"}')
    for forged in (
        itsdangerous.TimestampSigner("another key").sign(payload).decode(),  # signed with a key not the page's
        held[:-2] + ("AA" if not held.endswith("AA") else "BB"),  # altered
        payload.decode(),  # unsigned
    ):
        stranger = Browser(app)
        stranger.cookies[SESSION_COOKIE] = forged
        assert (await stranger.get("/")).status == 303
        assert (await call(app, "GET", "/", headers=[(b"cookie", f"{SESSION_COOKIE}={forged}".encode())])).status == 401


async def test_a_new_password_logs_every_session_out(page_store: Store, session_vhost_url: str) -> None:
    settings = page_settings(session_vhost_url)
    browser = Browser(StatusPage(settings, sync_settings(), page_store).app(PASSWORD))
    await browser.log_in()
    assert (await browser.get("/")).status == 200
    browser.app = StatusPage(settings, sync_settings(), page_store).app("a new password")  # the restarted page
    assert (await browser.get("/")).status == 303


async def test_a_post_without_the_sessions_csrf_token_is_refused_whatever_its_origin(make_page: PageFactory) -> None:
    app = make_page()
    browser = Browser(app)
    await browser.log_in()
    token = (await browser.get("/dead-letters")).csrf_token()
    own = [(b"origin", b"http://127.0.0.1:8081")]
    assert (await browser.request("POST", "/dead-letters/replay", form={}, headers=own)).status == 403
    no_origin = await browser.post("/dead-letters/replay", {"id": "x", "csrf_token": "not-the-token"})
    assert no_origin.status == 403
    other = Browser(app)
    await other.log_in()
    theirs = (await other.get("/dead-letters")).csrf_token()
    assert (await browser.post("/dead-letters/replay", {"csrf_token": theirs})).status == 403  # another session's
    # The token refused above, a script with HTTP Basic is refused too: a browser sends a cached Basic password along.
    assert (await call(app, "POST", "/dead-letters/replay", headers=[basic(b"hsqbo", PASSWORD.encode())])).status == 403
    passed = await browser.post("/dead-letters/replay", {"csrf_token": token})
    assert (passed.status, passed.header("location")) == (
        303,
        "http://127.0.0.1:8081/dead-letters?notice=nothing+chosen+to+replay",
    )
    header = await browser.request("POST", "/dead-letters/replay", form={}, headers=[(b"x-csrf-token", token.encode())])
    assert header.status == 303


async def test_the_login_form_needs_its_token_too_and_never_sends_the_operator_elsewhere(
    make_page: PageFactory,
) -> None:
    browser = Browser(make_page())
    token = (await browser.get("/login")).csrf_token()
    assert (await browser.post("/login", {"password": PASSWORD})).status == 403  # login CSRF
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil", "/\x7f"):
        answer = await browser.post("/login", {"csrf_token": token, "password": PASSWORD, "next": elsewhere})
        assert (answer.status, answer.header("location")) == (303, "/"), elsewhere
        token = (await browser.get("/login")).csrf_token()  # a login makes a new token


async def test_nul_characters_are_refused_before_any_page_or_store_sees_them(make_page: PageFactory) -> None:
    app = make_page(password=None)
    assert (await call(app, "GET", "/connections/acme/contact/hubspot/1\x00")).status == 400
    assert (await call(app, "GET", "/connections/acme/records", query=b"kind=%00")).status == 400


async def test_forwarded_headers_are_believed_from_the_configured_proxies_only(make_page: PageFactory) -> None:
    app = make_page(password=None, trusted_proxies=("10.0.0.0/8",))
    forwarded = [(b"host", b"status.example.com"), (b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"1.2.3.4")]
    app = make_page(password=None, trusted_proxies=("10.0.0.0/8",), status_allowed_hosts=("status.example.com",))

    async def redirect_uri(client: str) -> str:
        answer = await call(app, "GET", "/connections/acme/connect/quickbooks", headers=forwarded, client=(client, 1))
        assert answer.status == 302
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.header("location") or "").query)
        return query["redirect_uri"][0]

    assert await redirect_uri("10.0.0.7") == "https://status.example.com/oauth/callback/quickbooks"  # the TLS proxy
    assert await redirect_uri("192.0.2.1") == "http://status.example.com/oauth/callback/quickbooks"  # anyone else


async def test_the_oauth_state_is_signed_so_another_replica_or_a_restart_finishes_it(
    page_store: Store, session_vhost_url: str
) -> None:
    settings = page_settings(session_vhost_url)
    [connection] = sync_settings().connection
    connections = {connection.name: connection}
    callback = "https://status.example.com/oauth/callback/quickbooks"
    url = ConnectFlow(settings, page_store).authorize_url(connection, Provider.QUICKBOOKS, callback, browser="b1")
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["state"][0]

    replica = ConnectFlow(settings, page_store)  # another process with the same settings
    with pytest.raises(ConnectError, match="that is QuickBooks company 999"):  # past the state, at the account check
        await replica.finish(Provider.QUICKBOOKS, state=state, code="c", realm_id="999", callback_url=callback,
                             connections=connections, browser="b1")  # fmt: skip
    refusals = {
        "started in another browser": dict(state=state, browser="b2"),
        "not valid": dict(state=state[:-3] + "abc", browser="b1"),
        "not valid ": dict(state="", browser="b1"),
    }
    for message, given in refusals.items():
        with pytest.raises(ConnectError, match=message.strip()):
            await replica.finish(Provider.QUICKBOOKS, code="c", realm_id="999", callback_url=callback,
                                 connections=connections, **given)  # fmt: skip
    with pytest.raises(ConnectError, match="expired"):  # for the other provider
        await replica.finish(Provider.HUBSPOT, state=state, code="c", realm_id=None, callback_url=callback,
                             connections=connections, browser="b1")  # fmt: skip
    later = ConnectFlow(settings, page_store, clock=lambda: 2e10)
    with pytest.raises(ConnectError, match="expired"):
        await later.finish(Provider.QUICKBOOKS, state=state, code="c", realm_id="999", callback_url=callback,
                           connections=connections, browser="b1")  # fmt: skip
    other_key = ConnectFlow(page_settings(session_vhost_url), page_store)
    with pytest.raises(ConnectError, match="not valid"):
        await other_key.finish(Provider.QUICKBOOKS, state=state, code="c", realm_id="999", callback_url=callback,
                               connections=connections, browser="b1")  # fmt: skip
    assert signing_key(settings) == signing_key(settings.model_copy())


def test_every_post_form_of_every_template_carries_the_csrf_token() -> None:
    """A form added without it would be refused (403) the first time someone submits it."""
    forms = 0
    for template in TEMPLATES.glob("*.html"):
        for form in re.findall(r"<form\b[^>]*>.*?</form>", template.read_text(), flags=re.S | re.I):
            if re.search(r"method=[\"']?post", form, flags=re.I):
                forms += 1
                assert "{{ csrf_field() }}" in form, f"{template.name}: a POST form without {{{{ csrf_field() }}}}"
    assert forms >= 4  # replay, sync now, log in, log out


def test_a_password_is_required_beyond_loopback_and_behind_a_proxy() -> None:
    assert status_password(page_settings(), "127.0.0.1") is None
    assert status_password(page_settings(), "localhost") is None
    assert status_password(page_settings(status_password=SecretStr("pw")), "0.0.0.0") == "pw"
    with pytest.raises(ConfigError, match=r"required to serve the status page on 0\.0\.0\.0"):
        status_password(page_settings(), "0.0.0.0")
    with pytest.raises(ConfigError, match="behind HSQBO_TRUSTED_PROXIES"):  # the proxy brings anyone to loopback
        status_password(page_settings(trusted_proxies=("127.0.0.1",)), "127.0.0.1")


async def test_the_inputs_that_once_answered_500_do_not(make_page: PageFactory) -> None:
    app = make_page(password=None)
    for page in ("²", "٣", "9" * 5000, "-1", "99999999999"):  # a superscript, Arabic-Indic and too many digits
        query = urllib.parse.urlencode({"page": page}).encode()
        assert (await call(app, "GET", "/connections/acme/records", query=query)).status == 200, page


async def test_an_address_that_keeps_guessing_is_refused_and_the_operator_elsewhere_still_logs_in(
    make_page: PageFactory,
) -> None:
    app = make_page()
    guesser = Browser(app)
    token = (await guesser.get("/login")).csrf_token()
    for guess in range(10):
        form = {"csrf_token": token, "password": f"guess {guess}", "next": "/"}
        assert (await guesser.post("/login", form)).status == 401
    refused = await guesser.post("/login", {"csrf_token": token, "password": PASSWORD, "next": "/"})
    assert (refused.status, refused.header("retry-after")) == (429, "60")
    assert (await call(app, "GET", "/", headers=[basic(b"hsqbo", PASSWORD.encode())])).status == 429  # same address
    operator = [basic(b"hsqbo", PASSWORD.encode())]
    assert (await call(app, "GET", "/", headers=operator, client=("192.0.2.7", 1))).status == 200


def test_wrong_passwords_leave_the_count_after_a_minute() -> None:
    now = [0.0]
    attempts = Attempts(limit=2, window=60.0, clock=lambda: now[0])
    attempts.failed("a")
    now[0] = 30.0
    attempts.failed("a")
    assert attempts.wait("a") == 30
    assert attempts.wait("b") is None
    now[0] = 60.0
    assert attempts.wait("a") is None

"""No request answers 500: random paths (every route of the page, its parameters filled with anything), query
strings, headers, credentials, cookies, forms and bodies, logged in or not, with the session's CSRF token or not.
The routes are read from the app, so a page added later is covered without touching this test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Route

from services.status._guard import CSRF_FIELD, LOGIN_PATH, LOGOUT_PATH, SESSION_COOKIE
from shared.domain import Kind, Provider
from shared.store import LinkStatus, Store, open_store
from tests.anyrequest import TEXT, call, forms, headers, paths, queries
from tests.status.conftest import CONNECTION, Browser, PageFactory
from tests.store.conftest import postgres_server_url, postgres_url  # noqa: F401  # fixtures

SEGMENTS = [CONNECTION, *Kind, *Provider, *LinkStatus, "1", "²", "records", "records.csv", "sync", "connect"]
QUERY_KEYS = ["page", "kind", "status", "notice", "next", "name", "provider", "state", "code", "realmId", "error", "q"]
FORM_FIELDS = [CSRF_FIELD, "id", "all", "password", "next"]
HOSTS = [b"127.0.0.1:8081", b"localhost", b"[::1]:8081"]


@pytest.fixture
async def page_store(postgres_url: str) -> AsyncIterator[Store]:  # noqa: F811  # the fixture imported above
    """Postgres, the stricter store (it refuses NUL characters, for one)."""
    async with open_store(postgres_url, encryption_key=SecretStr(Fernet.generate_key().decode())) as opened:
        yield opened


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_no_request_answers_500(make_page: PageFactory, data: st.DataObject) -> None:
    app = make_page()
    assert isinstance(app, Starlette)
    templates = [route.path for route in app.routes if isinstance(route, Route)] + [LOGIN_PATH, LOGOUT_PATH]
    browser = Browser(app)
    await browser.log_in()
    token = (await browser.get("/")).csrf_token()

    session = data.draw(st.sampled_from(["logged in"] * 4 + ["none", "forged"]), "session")
    sent = data.draw(headers(HOSTS), "headers")
    if session == "logged in":  # the page reads the first Cookie header: this one
        sent.insert(1, (b"cookie", f"{SESSION_COOKIE}={browser.cookies[SESSION_COOKIE]}".encode()))
    elif session == "forged":
        sent.insert(1, (b"cookie", SESSION_COOKIE.encode() + b"=" + data.draw(TEXT).encode("utf-8")))
    method = data.draw(st.sampled_from(["GET", "GET", "POST", "POST", "HEAD", "PUT", "OPTIONS"]), "method")
    body = b""
    if method == "POST":
        content_type, body = data.draw(forms(FORM_FIELDS), "form")
        sent.append((b"content-type", content_type))
        if data.draw(st.booleans(), "with the token"):
            body += b"&" + f"{CSRF_FIELD}={token}".encode()
    path = data.draw(paths(templates, [str(segment) for segment in SEGMENTS]), "path")
    query = data.draw(queries(QUERY_KEYS), "query")

    answer = await call(app, method, path, query=query, headers=sent, body=body)
    assert answer.status < 500, answer.text[:500]

"""The status page in-process: a client that keeps cookies like a browser (over tests/anyrequest.py's `call`, which
sends any Host, header or path, as aiohttp would not), and a page over a store of its own with dead letters on the
test session's RabbitMQ virtual host."""

from __future__ import annotations

import datetime as dt
import http.cookies
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.types import ASGIApp

from services.status import StatusPage
from shared.config import Settings
from shared.store import Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings
from tests.anyrequest import Answer, call

CONNECTION = "acme"
PASSWORD = "s3cret pässwörd"  # not ASCII: the login and HTTP Basic take any text


class Browser:
    """Keeps the cookies the page sets, and sends them back, as a browser does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    async def request(
        self, method: str, path: str, *, form: dict[str, str] | None = None, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> Answer:
        path, _, query = path.partition("?")
        sent = [(b"accept", b"text/html"), *headers]
        if self.cookies:
            sent.append((b"cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode()))
        body = b""
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent.append((b"content-type", b"application/x-www-form-urlencoded"))
        answer = await call(self.app, method, path, query=query.encode(), headers=sent, body=body)
        for name, value in answer.headers:
            if name.lower() == b"set-cookie":
                for morsel in http.cookies.SimpleCookie(value.decode("latin-1")).values():
                    if morsel.value == "null":
                        self.cookies.pop(morsel.key, None)
                    else:
                        self.cookies[morsel.key] = morsel.value
        return answer

    async def get(self, path: str) -> Answer:
        return await self.request("GET", path)

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        return await self.request("POST", path, form=form)

    async def log_in(self, password: str = PASSWORD) -> Answer:
        token = (await self.get("/login")).csrf_token()
        return await self.post("/login", {"csrf_token": token, "password": password, "next": "/"})


def page_settings(rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:1/", **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "rabbitmq_url": rabbitmq_url, "encryption_key": SecretStr(Fernet.generate_key().decode()),
        "hubspot_client_id": "app", "qbo_client_id": "qbo-app", "qbo_client_secret": SecretStr("qbo-secret"),
        "hubspot_client_secret": SecretStr("hubspot-secret"), "intuit_verifier_token": SecretStr("verifier"),
    }  # fmt: skip
    return Settings(**{**fields, **overrides})


def sync_settings() -> SyncSettings:
    connection = ConnectionSettings(
        name=CONNECTION, hubspot_portal_id="123", qbo_realm_id="456", setup_date=dt.date(2026, 1, 1)
    )
    return SyncSettings(connection=[connection])


@pytest.fixture
async def page_store(tmp_path: Path) -> AsyncIterator[Store]:
    """The page's store; tests/status/test_any_request.py makes it a Postgres one."""
    async with open_store(
        f"sqlite:///{tmp_path}/store.db", encryption_key=SecretStr(Fernet.generate_key().decode())
    ) as opened:
        yield opened


PageFactory = Callable[..., ASGIApp]


@pytest.fixture
def make_page(page_store: Store, session_vhost_url: str) -> PageFactory:
    """A status page app: `password`, and settings overriding page_settings()'s."""

    def make(password: str | None = PASSWORD, **overrides: Any) -> ASGIApp:
        settings = page_settings(session_vhost_url, **overrides)
        return StatusPage(settings, sync_settings(), page_store).app(password)

    return make

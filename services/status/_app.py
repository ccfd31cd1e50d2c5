"""The status page: server-rendered HTML over the store and the dead-letter queue, for the people who run a sync.

    GET  /                                             every connection: its accounts' authorization, records per
                                                       object and status, the backlog, the dead letters
    GET  /connections/{name}/records?kind=&status=&q= records by name, last change first, 50 a page: _records.py
    GET  /connections/{name}/records.csv?...           the same, every row, as CSV
    GET  /connections/{name}/{kind}/{side}/{id}        one record: name, status, error explained, what it waits for,
                                                       links into both products, fields side by side, history
    POST /connections/{name}/{kind}/{side}/{id}/sync   "Sync now": a worker re-reads both sides at once
    GET  /dead-letters[/{id}]                          what hsqbo gave up on, filtered; one letter with its history
    POST /dead-letters/scan|replay|purge               ... and what to do with them: _dead_letters.py
    GET  /connect?name=&provider=                      "New connection": Connect under a name not configured yet
    GET  /connections/{name}/connect/{provider}        OAuth "Connect" (or reconnect): _connect.py
    GET  /oauth/callback/{provider}                    ... and back from the provider's consent screen
    GET  /healthz                                      "ok" without the password, for probes (tells nothing else)
    GET  /overview, POST .../objects/{kind}/switch     the operator's overview and on/off switches: _overview.py
    GET  /connections/{name}/first-sync (+ POSTs)      the initial sync, planned and reviewed: _first_sync.py
    GET  /login, POST /login, POST /logout             the password's login (_guard.py)

Actions are POSTs from the page's own forms. Every request passes `_guard.py` first: the Host allow-list, the login
(a signed session cookie, or HTTP Basic for scripts) when `HSQBO_STATUS_PASSWORD` is set, and the CSRF token every
POST carries (`{{ csrf_field() }}` in each POST form).
"""

from __future__ import annotations

import contextlib
import html
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

from aio_pika.exceptions import AMQPError
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from services.connect._flow import check_name
from services.status._common import NotFound as _NotFound
from services.status._common import record_key as _record_key
from services.status._common import when as _when
from services.status._connect import ConnectError, ConnectFlow
from services.status._dead_letters import DeadLetterPages
from services.status._first_sync import FirstSyncPages
from services.status._guard import HEALTH_PATH, browser_binding, guard_middleware
from services.status._overview import Overview
from services.status._records import RecordPages
from shared.broker import Broker
from shared.budget import UsageBackend
from shared.config import Settings
from shared.connections import ContextFactory
from shared.credentials import MISSING_SCOPES, grant_hint
from shared.deadletters import DeadLetters, open_dead_letters
from shared.domain import Kind, PendingKey, Provider
from shared.errors import BusError, ConfigError
from shared.resync import resync
from shared.store import (
    ActivityLog,
    CredentialStatus,
    CredentialStore,
    FirstSyncs,
    Heartbeats,
    LinkStatus,
    LinkStore,
    ObjectSwitches,
    PendingWork,
    RateUses,
)
from shared.syncconfig import ConnectionSettings, SyncSettings, load_sync_settings

PAGE_SIZE = 50
TEMPLATES = Path(__file__).parent / "templates"

OpenDeadLetters = Callable[[], AbstractAsyncContextManager[DeadLetters]]


class StatusStore(
    LinkStore,
    ActivityLog,
    PendingWork,
    CredentialStore,
    ObjectSwitches,
    Heartbeats,
    RateUses,
    UsageBackend,
    FirstSyncs,
    Protocol,
):
    """What the status page reads and writes: the records (links, their history, their pending work), the
    credentials it shows and stores, the overview's switches, heartbeats, rates and monthly usage, and the first
    sync's plan; nothing of the poller's (locks, cursors, reconciliations) nor the rate limiter's bookkeeping."""


class StatusPage:
    def __init__(
        self,
        settings: Settings,
        sync: SyncSettings,
        store: StatusStore,
        broker: Broker | None = None,
        *,
        dead_letters: OpenDeadLetters | None = None,
        contexts: ContextFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`broker`: the process's, started by its owner: "Sync now", replays and the dead letters use it, no
        connection per click (None: the page has its own, connected while the app runs). `contexts`: API clients for
        the record page's field comparison (None: it reads no API)."""
        self.settings = settings
        self.sync = sync
        self.store = store
        self.broker = broker or Broker.from_settings(settings)
        self._owns_broker = broker is None
        self.dead_letters = dead_letters or (lambda: open_dead_letters(self.broker, store))
        self.contexts = contexts
        self.clock = clock
        self.connect_flow = ConnectFlow(settings, store, clock=clock)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(), trim_blocks=True, lstrip_blocks=True
        )
        self.templates.filters["when"] = _when
        self.overview_pages = Overview(self)
        self.dead_letter_pages = DeadLetterPages(self)
        self.first_sync_pages = FirstSyncPages(self)

    def app(self, password: str | None) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self.overview),
                *RecordPages(self).routes(),
                Route("/connections/{name}/{kind}/{side}/{object_id}/sync", self.sync_now, methods=["POST"]),
                *self.dead_letter_pages.routes(),
                Route("/connect", self.connect_new),
                Route("/connections/{name}/connect/{provider}", self.connect),
                Route("/oauth/callback/{provider}", self.oauth_callback),
                Route(HEALTH_PATH, self.healthz),
                *self.overview_pages.routes(),
                *self.first_sync_pages.routes(),
            ],
            middleware=guard_middleware(self.settings, password, self.templates),
            exception_handlers={_NotFound: self._not_found},
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self._owns_broker:
            await self.broker.start()
        try:
            yield
        finally:
            if self._owns_broker:
                await self.broker.close()

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return HTMLResponse(f"<h1>Not found</h1><p>{html.escape(str(exc))}</p><p><a href='/'>Connections</a></p>", 404)

    def _render(self, template: str, request: Request, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            request=request, notice=request.query_params.get("notice"), now=self.clock(), **values
        )
        return HTMLResponse(html)

    def _connection(self, request: Request) -> ConnectionSettings:
        connection = self.sync.named(request.path_params["name"])
        if connection is None:
            raise _NotFound(f"no connection named {request.path_params['name']!r}")
        return connection

    # --- pages ---------------------------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def overview(self, request: Request) -> Response:
        connections = []
        for connection in self.sync.connection:
            counts = await self.store.count_links_by_status(connection.name)
            authorization = {}
            for provider in Provider:
                credentials = await self.store.get_credentials(connection.name, provider)
                missing = credentials.extra.get(MISSING_SCOPES) if credentials is not None else None
                authorization[provider] = (
                    "not connected" if credentials is None
                    else "paused: hsqbo connections resume" if credentials.status == CredentialStatus.PAUSED
                    else "connected" if credentials.status != CredentialStatus.REVOKED
                    else "revoked: reconnect the account" if missing is None
                    else f"paused: {grant_hint(missing)}"
                )  # fmt: skip
            connections.append({"settings": connection, "counts": counts, "authorization": authorization})
        dead: int | str
        try:
            async with self.dead_letters() as letters:
                dead = await letters.count()  # the queue's message count: a read takes no letter
        except (OSError, AMQPError, BusError):  # the page still shows the store's view while the broker is down
            dead = "unknown (RabbitMQ unreachable)"
        return self._render(
            "overview.html", request, connections=connections, kinds=list(Kind), statuses=list(LinkStatus),
            backlog=await self.store.count_pending(), dead_letters=dead,
        )  # fmt: skip

    # --- actions -------------------------------------------------------------------------------------------------

    async def sync_now(self, request: Request) -> Response:
        connection = self._connection(request)
        kind, side, object_id = _record_key(request)
        back = request.url_for("record", name=connection.name, kind=kind, side=side, object_id=object_id)
        try:
            await resync(self.store, self.broker, PendingKey(connection.name, kind, side, object_id), now=self.clock())
        except (OSError, AMQPError, BusError):
            return _redirect(str(back), "not queued: RabbitMQ is unreachable; try again once it is back")
        return _redirect(str(back), "queued: a worker is syncing this record now")

    async def connect_new(self, request: Request) -> Response:
        name, provider = request.query_params.get("name", "").strip(), request.query_params.get("provider", "")
        try:
            check_name(name)
            Provider(provider)
        except (ConnectError, ValueError) as exc:
            return _redirect(str(request.url_for("overview")), str(exc))
        return RedirectResponse(str(request.url_for("connect", name=name, provider=provider)), status_code=303)

    async def connect(self, request: Request) -> Response:
        connection = self.sync.named(request.path_params["name"]) or request.path_params["name"]
        provider = _provider(request)
        callback = str(request.url_for("oauth_callback", provider=provider))
        try:
            url = self.connect_flow.authorize_url(connection, provider, callback, browser=browser_binding(request))
            return RedirectResponse(url, status_code=302)
        except ConnectError as exc:
            return _redirect(str(request.url_for("overview")), str(exc))

    async def oauth_callback(self, request: Request) -> Response:
        provider = _provider(request)
        params = request.query_params
        if "error" in params:  # the operator said no, or the provider refused
            return _redirect(str(request.url_for("overview")), f"{provider} did not authorize: {params['error']}")
        try:
            recorded = await self.connect_flow.finish(
                provider, state=params.get("state", ""), code=params.get("code", ""), realm_id=params.get("realmId"),
                callback_url=str(request.url_for("oauth_callback", provider=provider)),
                connections={c.name: c for c in self.sync.connection}, browser=browser_binding(request),
            )  # fmt: skip
        except (ConnectError, ConfigError) as exc:
            return _redirect(str(request.url_for("overview")), str(exc))
        notice = f"{recorded.name}: {provider} connected"
        if recorded.waiting_for is not None:
            notice += f"; now connect {recorded.waiting_for} under the same name"
        if recorded.added is not None:
            self.sync = load_sync_settings(self.settings.config)  # the new connection shows at once
            notice += "; added to the sync rules with the recommended defaults (restart the worker and the poller)"
        return _redirect(str(request.url_for("overview")), notice)


def _provider(request: Request) -> Provider:
    try:
        return Provider(request.path_params["provider"])
    except ValueError:
        raise _NotFound("no such provider") from None


def _redirect(url: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{url}?{urllib.parse.urlencode({'notice': notice})}", status_code=303)

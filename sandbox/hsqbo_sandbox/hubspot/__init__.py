"""The HubSpot emulator: CRM v3 objects, associations v4, properties, OAuth and signed webhooks on HubSpot's real
paths, plus the `/_sandbox/` control surface (its own routes in `_control.py`, the shared ones in
`sandbox/hsqbo_sandbox/_control.py`). Built from the reference (/work/shared/reference/hubspot-api.md) and HubSpot's
OpenAPI specs (field names only).

    sandbox = HubSpotSandbox(webhook_url="http://127.0.0.1:8000/webhooks/hubspot", retry_scale=0.001)
    portal_id = sandbox.create_portal()
    token = sandbox.private_app_token(portal_id)   # or sandbox.issue_token(portal_id).access_token (OAuth)
    async with serving(sandbox.app) as server: ...  # the app's lifespan starts/stops the webhook sender

Modules: `_schema` (object types, built-in properties), `_values` (string normalisation), `_store` (a portal's
records, unique indexes, merges, computed invoice totals), `_associations`, `_search`, `_ratelimit`, `_events`
(webhook payloads, signing), `_auth` (tokens, OAuth endpoints), `_scopes` (403 MISSING_SCOPES outside a token's
scopes; its stricter readings: association calls need both types' scopes), `_objects_api`, `_associations_api`,
`_properties_api`, `_account_info_api` (account details: currencies, time zone), `_app_api` (the app's webhook
subscriptions), `_control`, `_seed`.

Webhooks: batches of up to 100 events per portal, signed v1 and v3 with the app's client secret, at most 10
deliveries in flight, a 5 s acknowledgement deadline; a batch answered with anything but 2xx (or not at all) is
retried up to 10 times on a schedule spread over ~24 h (`RETRY_DELAYS`, times `retry_scale`), without holding
back later batches (HubSpot does not block on a failing batch; ordering is not guaranteed, WH-DOC).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response

from hsqbo_sandbox._clock import SEED_AGE_SECONDS, SandboxClock
from hsqbo_sandbox._faults import Faults
from hsqbo_sandbox._oauth import TokenIssuer, TokenPair
from hsqbo_sandbox._options import (
    DEFAULT_DEVELOPER_API_KEY,
    DEFAULT_HUBSPOT_APP_ID,
    DEFAULT_HUBSPOT_CLIENT_ID,
    DEFAULT_HUBSPOT_CLIENT_SECRET,
)
from hsqbo_sandbox._recorder import RequestLog
from hsqbo_sandbox._webhooks import WebhookDispatcher
from hsqbo_sandbox.hubspot._account_info_api import AccountInfoApi
from hsqbo_sandbox.hubspot._accounts import Accounts
from hsqbo_sandbox.hubspot._api import ApiGuard, identify
from hsqbo_sandbox.hubspot._app_api import AppApi, AppSubscriptions
from hsqbo_sandbox.hubspot._associations import DEFAULT_KIND, kind_for
from hsqbo_sandbox.hubspot._associations_api import AssociationsApi
from hsqbo_sandbox.hubspot._auth import DEFAULT_SCOPES, Authenticator
from hsqbo_sandbox.hubspot._control import ControlApi
from hsqbo_sandbox.hubspot._errors import HubSpotError, not_found, validation_error
from hsqbo_sandbox.hubspot._events import EventBuilder, encode_batch, partition_by_portal, signer
from hsqbo_sandbox.hubspot._objects_api import ObjectsApi
from hsqbo_sandbox.hubspot._properties_api import PropertiesApi
from hsqbo_sandbox.hubspot._ratelimit import RateLimiter, rate_limit_body
from hsqbo_sandbox.hubspot._render import error_response, json_response, record_json
from hsqbo_sandbox.hubspot._schema import ObjectType, object_type_named
from hsqbo_sandbox.hubspot._seed import seed_portal
from hsqbo_sandbox.hubspot._store import Actor, Change

__all__ = ["RETRY_DELAYS", "HubSpotSandbox"]

# Ten retries spread over ~24 h (WH-DOC: "up to 10 times ... over the next 24 hours"); seconds before each retry.
RETRY_DELAYS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 14400.0, 21600.0, 25200.0)
ACCESS_TOKEN_SECONDS = 1800  # 30-minute access tokens (reference §7)
WEBHOOK_ACK_SECONDS = 5.0  # WH-DOC: a batch fails if the answer takes longer than five seconds


class HubSpotSandbox:
    def __init__(
        self,
        *,
        clock: SandboxClock | None = None,
        client_id: str = DEFAULT_HUBSPOT_CLIENT_ID,
        client_secret: str = DEFAULT_HUBSPOT_CLIENT_SECRET,
        app_id: str = DEFAULT_HUBSPOT_APP_ID,
        developer_api_key: str = DEFAULT_DEVELOPER_API_KEY,
        webhook_url: str | None = None,
        retry_scale: float = 1.0,
        faults: Faults | None = None,
        request_log: RequestLog | None = None,
        webhook_max_in_flight: int = 10,
    ) -> None:
        self.clock = clock or SandboxClock()
        self.client_id, self.client_secret, self.app_id = client_id, client_secret, app_id
        self.faults = faults or Faults(self.clock)
        self.requests = request_log or RequestLog(self.clock)
        self.tokens = TokenIssuer(self.clock, access_ttl_seconds=ACCESS_TOKEN_SECONDS, rotate_refresh_tokens=False)
        self.events = EventBuilder(int(app_id))
        self.webhooks = WebhookDispatcher(
            webhook_url,
            encode_batch=encode_batch,
            sign=signer(client_secret),
            max_batch=100,
            max_in_flight=webhook_max_in_flight,
            retry_delays=[delay * retry_scale for delay in RETRY_DELAYS],
            max_attempts=1 + len(RETRY_DELAYS),
            head_of_line_blocking=False,
            partition=partition_by_portal,
            faults=self.faults,
            ack_timeout_seconds=WEBHOOK_ACK_SECONDS,
            attempt_field="attemptNumber",
        )
        self.accounts = Accounts(self.clock, self._on_change)
        self.limiter = RateLimiter(self.clock)
        self.auth = Authenticator(self.tokens, self.accounts, client_id=client_id, client_secret=client_secret,
                                  app_id=app_id)  # fmt: skip
        self._muted = False
        self.subscriptions = AppSubscriptions(self.clock)  # the app's webhook subscriptions (webhooks API v3)
        guard = ApiGuard(self.auth, self.accounts, self.limiter)
        self.app = Starlette(
            routes=[
                *self.auth.routes(),
                *ObjectsApi(guard).routes(),
                *AssociationsApi(guard).routes(),
                *PropertiesApi(guard).routes(),
                *AccountInfoApi(guard).routes(),
                *AppApi(self.subscriptions, app_id=app_id, developer_api_key=developer_api_key).routes(),
                *ControlApi(self).routes(),
            ],
            middleware=[
                self.requests.middleware(identify),
                self.faults.middleware(throttled_response=_throttled, error_response=_server_error),
            ],
            lifespan=self._lifespan,
        )

    # lifecycle

    async def start(self) -> None:
        await self.webhooks.start()

    async def stop(self) -> None:
        await self.webhooks.stop()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def _on_change(self, portal_id: int, change: Change) -> None:
        if self._muted:
            return
        for event in self.events.build(portal_id, change):
            self.webhooks.emit(event)

    # accounts and tokens

    def create_portal(self, portal_id: int | None = None, **limits: Any) -> int:
        """A new portal; `limits`: burst_limit, daily_limit, search_per_second, search_result_cap,
        allow_open_invoice_delete."""
        account = self.accounts.create(portal_id)
        account.configure(**limits)
        return account.portal_id

    def issue_token(self, portal_id: int, *, scopes: Iterable[str] | None = None) -> TokenPair:
        """An OAuth token pair for the configured app installed in the portal (as after the install flow), granted
        `scopes` (default: hsqbo's requested set, `DEFAULT_SCOPES`)."""
        self.accounts.get(portal_id)
        return self.tokens.issue(str(portal_id), self.client_id, scope=_scope(scopes))

    def private_app_token(
        self,
        portal_id: int,
        token: str | None = None,
        *,
        app_id: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> str:
        """Register a static private-app token (`pat-na1-...`) for the portal, granted `scopes` (default:
        `DEFAULT_SCOPES`); writes made with it are attributed to `app_id` (default: the configured app id)."""
        token = token or f"pat-na1-{secrets.token_hex(16)}"
        self.auth.register_private_app_token(portal_id, token, app_id=app_id, scopes=_scope(scopes))
        return token

    # acting as a HubSpot user

    def user_edit(
        self,
        *,
        portal_id: int,
        object_type: str,
        action: str,
        id: str | int | None = None,
        properties: dict[str, Any] | None = None,
        user_id: int = 1,
        merge_id: str | int | None = None,
        to_object_type: str | None = None,
        to_id: str | int | None = None,
        association_type_id: int | None = None,
    ) -> dict[str, Any]:
        """What a user does in HubSpot's UI: changeSource CRM_UI, sourceId "userId:N"; emits webhooks."""
        portal = self.accounts.get(portal_id).portal
        kind = _object_type(object_type)
        actor = Actor("CRM_UI", f"userId:{user_id}", user_id)
        if action == "create":
            record = portal.create(kind, properties or {}, actor)
        elif action == "restore":
            record = portal.restore(kind, int(str(id)), actor)
        elif action == "merge":
            record = portal.merge(kind, str(id), str(merge_id), actor)
        else:
            record = portal.get(kind, str(id))
            if action == "update":
                portal.update(record, properties or {}, actor)
            elif action == "delete":
                portal.archive(record, actor)
            elif action in ("associate", "dissociate"):
                target_type = _object_type(str(to_object_type))
                target = portal.get(target_type, str(to_id))
                pair = ((kind.name, record.id), (target_type.name, target.id))
                if action == "dissociate":
                    portal.dissociate(*pair, actor)
                else:
                    default = DEFAULT_KIND.get((kind.name, target_type.name))
                    type_id = association_type_id or (default.type_id if default else 0)
                    portal.associate(*pair, kind_for(kind.name, target_type.name, type_id), actor)
            else:
                raise validation_error(f"unknown action {action!r}")
        return record_json(portal, record, all_set=True)

    def seed(self, portal_id: int | None = None, **counts: int) -> dict[str, int]:
        """Demo data in a portal (created when `portal_id` is None), without webhooks."""
        account = self.accounts.get(portal_id) if portal_id is not None else self.accounts.create()
        self._muted = True
        try:
            with account.portal.backdated(SEED_AGE_SECONDS):
                created = seed_portal(account.portal, Actor("CRM_UI", "userId:1", 1), **counts)
        finally:
            self._muted = False
        return {"portal_id": account.portal_id, **created}

    def import_history(self, portal_id: int, object_type: str, records: Iterable[dict[str, Any]]) -> list[str]:
        """Records a portal already held (each a dict of properties), made by a user `SEED_AGE_SECONDS` ago without
        webhooks, as `seed` makes them: an account's history for an initial sync. Their ids, in order."""
        portal = self.accounts.get(portal_id).portal
        kind = _object_type(object_type)
        actor = Actor("CRM_UI", "userId:1", 1)
        self._muted = True
        try:
            with portal.backdated(SEED_AGE_SECONDS):
                return [str(portal.create(kind, properties, actor).id) for properties in records]
        finally:
            self._muted = False

    # state

    def dump(self) -> dict[str, Any]:
        return {
            "clock_offset": self.clock.offset,
            "portals": [account.portal.dump() | {"settings": account.settings()} for account in self.accounts],
            "tokens": self.tokens.dump(),
            "subscriptions": self.subscriptions.dump(),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Replace every portal and token with a `dump()`; the clock moves forward to the dumped offset."""
        self.clock.catch_up(state.get("clock_offset", 0.0))
        self.accounts.clear()
        for portal_state in state.get("portals", []):
            settings = dict(portal_state.get("settings", {}))
            account = self.accounts.create(int(portal_state["portal_id"]))
            settings.pop("portal_id", None)
            account.configure(**settings)
            account.portal.load(portal_state)
        self.tokens.load(state.get("tokens", {}))
        self.subscriptions.load(state.get("subscriptions", []))


def _object_type(name: str) -> ObjectType:
    kind = object_type_named(name)
    if kind is None:
        raise not_found(f"unknown object type {name}")
    return kind


def _scope(scopes: Iterable[str] | None) -> str:
    return DEFAULT_SCOPES if scopes is None else " ".join(scopes)


def _throttled() -> Response:
    return json_response(rate_limit_body("TEN_SECONDLY_ROLLING"), 429)


def _server_error() -> Response:
    return error_response(HubSpotError(500, "INTERNAL_ERROR", "internal error"))

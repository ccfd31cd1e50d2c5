"""QboSandbox: the QuickBooks Online emulator - realms in memory, the API (_api.py), OAuth (_auth.py), webhooks
(_events.py), throttles (_limits.py), faults, the request log and the control surface (_control.py), as one
Starlette app (`.app`). Serving the app starts the webhook dispatcher (lifespan)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Scope

from hsqbo_sandbox._clock import SEED_AGE_SECONDS, SandboxClock
from hsqbo_sandbox._faults import Faults
from hsqbo_sandbox._oauth import TokenIssuer
from hsqbo_sandbox._recorder import RequestLog
from hsqbo_sandbox.qbo import _errors as errors
from hsqbo_sandbox.qbo import _rules as rules
from hsqbo_sandbox.qbo._api import Api, render_fault
from hsqbo_sandbox.qbo._auth import Auth
from hsqbo_sandbox.qbo._control import Control
from hsqbo_sandbox.qbo._events import change_event, make_dispatcher
from hsqbo_sandbox.qbo._limits import RateLimiter, RealmLimits, realm_of
from hsqbo_sandbox.qbo._seed import seed_demo_book, seed_reference_data
from hsqbo_sandbox.qbo._store import Realm

REFRESH_GRACE_SECONDS = 120.0  # Intuit does not document how long a rotated refresh token keeps working


class QboSandbox:
    def __init__(
        self,
        *,
        clock: SandboxClock | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        verifier_token: str | None = None,
        webhook_url: str | None = None,
        webhook_format: str = "cloudevents",
        retry_scale: float = 1.0,
        limits: RealmLimits | None = None,
    ) -> None:
        self.clock = clock or SandboxClock()
        self.faults = Faults(self.clock)
        self.requests = RequestLog(self.clock)
        self.tokens = TokenIssuer(self.clock, access_ttl_seconds=3600, refresh_ttl_seconds=100 * 86400,
                                  refresh_grace_seconds=REFRESH_GRACE_SECONDS)  # fmt: skip
        self.client_id = client_id
        if client_id and client_secret:
            self.tokens.register_client(client_id, client_secret)
        self.webhook_format = webhook_format
        self.webhooks = make_dispatcher(webhook_url, event_format=webhook_format, verifier_token=verifier_token,
                                        client_id=client_id or "hsqbo-sandbox", retry_scale=retry_scale,
                                        faults=self.faults)  # fmt: skip
        self.limiter = RateLimiter(self.clock, limits or RealmLimits())
        self.realms: dict[str, Realm] = {}
        self.app = Starlette(
            routes=[*Api(self).routes(), *Auth(self).routes(), *Control(self).routes()],
            middleware=[
                self.requests.middleware(self._identify),
                self.limiter.middleware(lambda: self._fault_response(errors.throttled())),
                self.faults.middleware(
                    throttled_response=lambda: self._fault_response(errors.throttled()),
                    error_response=lambda: self._fault_response(errors.system_error()),
                ),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.webhooks.start()
        try:
            yield
        finally:
            await self.webhooks.stop()

    def _fault_response(self, fault: errors.QboFault) -> Response:
        return render_fault(fault, self.clock.now())

    def _identify(self, scope: Scope) -> tuple[str | None, str | None]:
        scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").partition(" ")
        grant = self.tokens.lookup(token.strip()) if scheme.lower() == "bearer" else None
        return realm_of(scope["path"]), grant.client_id if grant else None

    # realms

    def create_realm(self, realm_id: str | None = None, company_name: str | None = None) -> Realm:
        realm_id = realm_id or str(9130350000000000 + secrets.randbelow(10**12))
        if realm_id in self.realms:
            raise ValueError(f"realm {realm_id} already exists")
        realm = Realm(realm_id, company_name or f"Sandbox Company {realm_id[-4:]}")
        seed_reference_data(realm, self.clock.now())
        self.realms[realm_id] = realm
        return realm

    def realm_for_consent(self, realm_id: str | None) -> Realm:
        """The company a user picks on the consent screen: the named one, else the first, else a new one."""
        if realm_id:
            return self.realms.get(realm_id) or self.create_realm(realm_id)
        return next(iter(self.realms.values()), None) or self.create_realm()

    def seed(self, realm_id: str | None = None, **counts: int) -> dict[str, Any]:
        realm = self.realms[realm_id] if realm_id else self.create_realm()
        created = seed_demo_book(realm, self.clock.now() - SEED_AGE_SECONDS, **counts)
        return {"realm_id": realm.realm_id, **created}

    def issue_token(self, realm_id: str, client_id: str | None = None) -> dict[str, Any]:
        pair = self.tokens.issue(realm_id, client_id or self.client_id or "hsqbo-sandbox",
                                 scope="com.intuit.quickbooks.accounting")  # fmt: skip
        return {"access_token": pair.access_token, "refresh_token": pair.refresh_token,
                "expires_in": pair.expires_in, "x_refresh_token_expires_in": pair.refresh_expires_in,
                "realm_id": realm_id}  # fmt: skip

    # changes (API writes and QBO users alike emit webhooks)

    def apply(
        self, realm: Realm, entity: str, operation: str, body: dict[str, Any], options: rules.Options
    ) -> rules.Outcome:
        if not isinstance(body, dict):
            raise errors.invalid(entity, "must be a JSON object")
        handlers = {"create": rules.create, "update": rules.update, "delete": rules.delete, "void": rules.void}
        outcome = handlers[operation](realm, entity, body, self.clock.now(), options)
        for change in outcome.changes:
            self.webhooks.emit(change_event(realm.realm_id, change))
        return outcome

    def user_edit(self, realm_id: str, entity: str, action: str, data: dict[str, Any]) -> rules.Outcome:
        """What a QBO user does in the product: no SyncToken needed, sparse edits, merges; webhooks follow."""
        realm = self.realms[realm_id]
        if action == "merge":
            outcome = rules.merge_customers(realm, str(data["survivor_id"]), str(data["merged_id"]), self.clock.now())
            for change in outcome.changes:
                self.webhooks.emit(change_event(realm_id, change))
            return outcome
        if action not in ("create", "update", "delete", "void"):
            raise ValueError(f"unknown action {action!r}")
        body = {**data, "sparse": True} if action == "update" else data
        return self.apply(realm, entity, action, body, rules.Options(check_sync_token=False, allow_group_items=True))

    def import_history(self, realm_id: str, entity: str, bodies: Iterable[dict[str, Any]]) -> list[str]:
        """Records a company already held (each a create body), made `SEED_AGE_SECONDS` ago without webhooks, as
        `seed` makes them: a company's history for an initial sync. Their ids, in order."""
        realm = self.realms[realm_id]
        made_at = self.clock.now() - SEED_AGE_SECONDS
        options = rules.Options(check_sync_token=False)
        return [str(rules.create(realm, entity, body, made_at, options).body["Id"]) for body in bodies]

    # state

    def dump(self) -> dict[str, Any]:
        return {
            "clock_offset": self.clock.offset,
            "realms": [realm.dump() for realm in self.realms.values()],
            "tokens": self.tokens.dump(),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Replace every realm and token with a `dump()`; the clock moves forward to the dumped offset."""
        self.clock.catch_up(state.get("clock_offset", 0.0))
        self.realms = {realm["realm_id"]: Realm.load(realm) for realm in state.get("realms", [])}
        self.tokens.load(state.get("tokens", {}))

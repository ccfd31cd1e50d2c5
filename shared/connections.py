"""A connection's working set: its settings, its two API clients, the store and the clock (what a sync rule and
the poller work with).

A connection whose provider refused our refresh token is paused: `ContextFactory.get` raises `ConnectionPaused`
instead of building clients that would only fail, until new credentials are stored (`shared.credentials.connect`).
A HubSpot token without a scope a call needs (`MissingScopes`) pauses it the same way, with "reconnect to grant X":
every record would fail alike, so none is marked failing; reconnecting with the scopes resumes it.
One the operator paused (`hsqbo connections pause`) waits too, until it is resumed: its credentials stay `paused`
(never marked revoked), whatever a call in flight then answers.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from shared.budget import UsageBackend
from shared.clients import (
    CallLimits,
    Coalescer,
    DegradedReads,
    HubSpotClient,
    OurWrites,
    QboClient,
    RateLimiter,
    Transport,
    UsageMeter,
    UsageRecorder,
)
from shared.company import Company, CompanyCache
from shared.config import Settings
from shared.credentials import MISSING_SCOPES, TokenRows, grant_hint, token_source
from shared.domain import Provider
from shared.errors import AuthRevoked, HsqboError, MissingScopes
from shared.logging import get_logger
from shared.metrics import CONNECTION_PAUSED, QBO_READ_BUDGET
from shared.quotas import LimitBackend
from shared.store import ActivityLog, CredentialStatus, Cursors, Link, LinkStore, PendingWork, Reconciliations
from shared.syncconfig import ConnectionSettings

# A cached connection's credentials are re-read this often, so an operator's pause (or a revocation another process
# saw) stops every worker within seconds instead of when the cached access token expires.
STATUS_CHECK_SECONDS = 5.0
_REQUEST_IDS = uuid.UUID("5d1c3c1e-8f6e-4a59-9f0a-2b7c8f3e9a11")

log = get_logger("hsqbo.connections")


class ContextStore(LinkStore, ActivityLog, PendingWork, Cursors, Reconciliations, Protocol):
    """What a context's users read and write through `SyncContext.store`: the links and the records' history (the
    sync rules), the pending work, cursors and reconciliation reports (the poller's passes)."""


class FactoryStore(ContextStore, TokenRows, LimitBackend, UsageBackend, Protocol):
    """What a `ContextFactory` needs of the store: its contexts' roles, the credentials with their refresh lock, and
    the rate limits' and API usage's bookkeeping (shared by every process)."""


class ConnectionPaused(HsqboError):
    """The connection cannot call `provider` until it is reconnected; its work waits until `recheck_at`."""

    def __init__(
        self, connection: str, provider: Provider, recheck_at: float, *, missing_scopes: tuple[str, ...] | None = None
    ) -> None:
        super().__init__(
            f"{provider} authorization of {connection!r} was revoked or expired: reconnect the account"
            if missing_scopes is None
            else f"{provider} authorization of {connection!r} lacks scopes: {grant_hint(missing_scopes)}"
        )
        self.connection = connection
        self.provider = provider
        self.recheck_at = recheck_at
        self.missing_scopes = missing_scopes  # None: revoked or expired


# What pauses a connection: the account must be reconnected (its grant is gone, or lacks scopes).
NeedsReconnect = AuthRevoked | MissingScopes


@dataclasses.dataclass(frozen=True, slots=True)
class SyncContext:
    connection: ConnectionSettings
    hubspot: HubSpotClient
    qbo: QboClient
    store: ContextStore
    app_id: str | None  # our HubSpot app id: events with changeSource INTEGRATION and this sourceId are our echoes
    clock: Callable[[], float] = time.time
    company_cache: CompanyCache = dataclasses.field(default_factory=CompanyCache)
    qbo_usage: UsageMeter | None = None  # the QBO company's calls this month, against its read budget
    # Puts the clients' concurrent single calls together in batch calls; the engine counts its applies in flight on
    # it (`with ctx.calls.applying():`), so a batch goes as soon as every apply waits (shared/clients/_batching.py).
    calls: Coalescer = dataclasses.field(default_factory=Coalescer)

    @property
    def name(self) -> str:
        return self.connection.name

    async def company(self) -> Company:
        """Both accounts' currencies and time zones (`shared/company.py`), cached for a few minutes."""
        return await self.company_cache.get(self.connection, self.qbo.company_settings, self.hubspot.account_settings)

    def request_id(self, *parts: str, link: Link | None) -> str:
        """A QBO `requestid` that is the same for every retry of the same logical write: a crash between the write
        and recording it replays the original answer instead of writing twice. `link` is the record's link as the
        apply read it: once an outcome is recorded on it (its revision moves), the next attempt is a new write, so a
        failure whose cause was fixed since is not replayed (QBO answers a repeated requestid with the first answer,
        errors included)."""
        epoch = "new" if link is None else f"r{link.revision}"
        return str(uuid.uuid5(_REQUEST_IDS, "/".join((self.name, *parts, epoch))))


class ContextFactory:
    """Builds (and keeps) one SyncContext per connection; tokens come from the store, rate limits are kept there
    (so every worker process shares them)."""

    def __init__(
        self, settings: Settings, store: FactoryStore, transport: Transport, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._store = store
        self._transport = transport
        self._clock = clock
        self._contexts: dict[str, SyncContext] = {}
        self._paused: set[tuple[str, Provider]] = set()  # paused by this process: logged once, gauge set
        self._checked_at: dict[str, float] = {}  # connection -> when its credentials' status was last read
        # (connection, provider) -> the `updated_at` of the credentials its clients were made from
        self._built_from: dict[tuple[str, Provider], float] = {}
        self._limiter = (
            RateLimiter(
                store,
                # A call's slot is never held past the transport's timeout, plus slack for the store round trips.
                hold_seconds=settings.api_timeout_seconds + 5.0,
                poll_seconds=settings.rate_limit_poll_seconds,
                clock=clock,
            )
            if settings.api_rate_limits
            else None
        )
        self.usage = UsageRecorder(store, clock=clock)  # every call counted per account, kind and month
        # One per connection, kept when its clients are made anew (contexts of one connection built concurrently
        # included): its batches in the making, the answers of our QBO writes.
        self._coalescers: dict[str, Coalescer] = {}
        self._ours: dict[str, OurWrites] = {}

    async def get(self, connection: ConnectionSettings) -> SyncContext:
        """The connection's context; raises ConnectionPaused while a provider's credentials are revoked."""
        context = self._contexts.get(connection.name)
        if context is not None and not await self._still_active(connection.name):
            context = None  # paused by the operator or revoked by another process since: _build says which
        if context is None or context.connection != connection:
            try:
                context = await self._build(connection)
            except (AuthRevoked, MissingScopes) as exc:
                raise await self.pause(connection.name, exc) from exc
            self._contexts[connection.name] = context
            for provider in Provider:
                if (credentials := await self._store.get_credentials(connection.name, provider)) is not None:
                    self._built_from[(connection.name, provider)] = credentials.updated_at
            self._resumed(connection.name)
        return context

    async def _still_active(self, connection: str) -> bool:
        """Whether both credentials are still active, read from the store at most every STATUS_CHECK_SECONDS."""
        now = self._clock()
        if now - self._checked_at.get(connection, float("-inf")) < STATUS_CHECK_SECONDS:
            return True
        self._checked_at[connection] = now
        for provider in (Provider.HUBSPOT, Provider.QUICKBOOKS):
            credentials = await self._store.get_credentials(connection, provider)
            if credentials is None or credentials.status != CredentialStatus.ACTIVE:
                return False
        return True

    async def pause(self, connection: str, error: NeedsReconnect) -> ConnectionPaused:
        """Mark the connection's credentials at `error.provider` revoked (with the scopes to grant, for
        `MissingScopes`) and forget its clients: every process stops calling that account until it is reconnected.
        Returns the error to raise."""
        provider = Provider(error.provider)
        self._contexts.pop(connection, None)
        built_from = self._built_from.get((connection, provider))
        stored = await self._store.get_credentials(connection, provider)
        if (
            stored is not None
            and stored.status == CredentialStatus.ACTIVE
            and built_from is not None
            and stored.updated_at != built_from
        ):
            # Refused with tokens older than the stored ones (reconnected while the call was in flight): the new
            # ones are not refused. The record runs again at once, on clients made from them.
            return ConnectionPaused(connection, provider, self._clock())
        missing = error.scopes if isinstance(error, MissingScopes) else None
        if missing is None:
            await self._store.mark_revoked(connection, provider)
        else:
            await self._mark_missing_scopes(connection, provider, missing)
        CONNECTION_PAUSED.labels(connection, provider).set(1)
        if (connection, provider) not in self._paused:
            self._paused.add((connection, provider))
            log.error("connection_paused", connection=connection, provider=provider, reason=str(error))
        return ConnectionPaused(
            connection, provider, self._clock() + self._settings.paused_recheck_seconds, missing_scopes=missing
        )

    async def _mark_missing_scopes(self, connection: str, provider: Provider, scopes: tuple[str, ...]) -> None:
        """Revoked, with the scopes to grant kept beside the tokens (`connect` replaces both); written once."""
        credentials = await self._store.get_credentials(connection, provider)
        if credentials is None or credentials.status == CredentialStatus.PAUSED:
            return  # an operator's pause stays a pause: after `resume` the next call finds the scopes missing again
        marked = dataclasses.replace(
            credentials, status=CredentialStatus.REVOKED, extra={**credentials.extra, MISSING_SCOPES: list(scopes)}
        )
        if (marked.status, marked.extra) != (credentials.status, credentials.extra):
            await self._store.save_credentials(marked)

    def _resumed(self, connection: str) -> None:
        for paused in [paused for paused in self._paused if paused[0] == connection]:
            self._paused.discard(paused)
            CONNECTION_PAUSED.labels(*paused).set(0)
            log.info("connection_resumed", connection=connection, provider=paused[1])

    async def _build(self, connection: ConnectionSettings) -> SyncContext:
        sources = {
            provider: await token_source(
                self._settings, self._store, connection=connection.name, provider=provider, transport=self._transport
            )
            for provider in (Provider.HUBSPOT, Provider.QUICKBOOKS)
        }
        hubspot_limits = qbo_limits = None
        if self._limiter is not None:
            hubspot_limits = CallLimits.for_hubspot(self._limiter, connection.hubspot_portal_id, self._settings)
            qbo_limits = CallLimits.for_qbo(self._limiter, connection.qbo_realm_id, self._settings)
        hubspot_usage = self.usage.meter(connection.name, Provider.HUBSPOT, connection.hubspot_portal_id)
        qbo_usage = self.usage.meter(connection.name, Provider.QUICKBOOKS, connection.qbo_realm_id)
        budget = connection.qbo_monthly_read_budget
        QBO_READ_BUDGET.labels(connection.name).set(budget)
        calls = self._coalescers.setdefault(connection.name, Coalescer())
        return SyncContext(
            connection=connection,
            hubspot=HubSpotClient(
                str(self._settings.hubspot_base_url),
                sources[Provider.HUBSPOT],
                self._transport,
                limits=hubspot_limits,
                usage=hubspot_usage,
                coalescer=calls,
            ),
            qbo=QboClient(
                str(self._settings.qbo_base_url),
                connection.qbo_realm_id,
                sources[Provider.QUICKBOOKS],
                self._transport,
                limits=qbo_limits,
                usage=qbo_usage,
                degraded=DegradedReads(qbo_usage, budget, connection=connection.name, clock=self._clock),
                coalescer=calls,
                ours=self._ours.setdefault(connection.name, OurWrites()),
            ),
            store=self._store,
            app_id=self._settings.hubspot_app_id,
            qbo_usage=qbo_usage,
            calls=calls,
        )

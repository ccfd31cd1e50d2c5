"""The overview an operator runs the sync from:

    GET  /overview                                   per connection and object: direction, conflict winner, on/off,
                                                     last webhook and last poll, backlog with rate and ETA, dead
                                                     letters, API budget in use; workers' and pollers' health; charts
    POST /connections/{name}/objects/{kind}/switch   switch an object on or off (form field `enabled`: on | off)

An object switched off keeps its changes: the worker defers their work (services/worker/_engine.py) until it is
switched back on, which makes that work due at once. The health, the last webhook and poll, and the charts come from
what the workers and pollers write to the store (shared/heartbeat.py); the rate is the records synced in the last
RATE_MINUTES, the ETA the backlog at that rate.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

from aio_pika.exceptions import AMQPError
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.poller._plan import duration
from services.status import _charts as charts
from shared.budget import CallKind, UsageBackend, month_of
from shared.domain import Kind, Provider
from shared.heartbeat import alive
from shared.store import Heartbeat

if TYPE_CHECKING:
    from services.status._app import StatusPage

RATE_MINUTES = 10  # the rate a backlog's ETA is worked out from


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectRow:
    kind: Kind
    direction: str
    conflict_winner: str
    enabled: bool
    last_webhook: float | None
    last_poll: float | None
    backlog: int
    per_minute: float
    eta: str
    dead_letters: int


@dataclasses.dataclass(frozen=True, slots=True)
class Budget:
    """Calls counted now against one rate-limit window of an account (shared/clients/_limits.py)."""

    account: str
    used: int
    limit: int
    seconds: float


@dataclasses.dataclass(frozen=True, slots=True)
class Process:
    heartbeat: Heartbeat
    alive: bool


def budget_windows(page: StatusPage, portal_id: str, realm_id: str) -> list[tuple[str, str, int, float]]:
    """The windows whose use the page shows: (account, window key, limit, seconds). The hook for per-account call
    counting: a window added in shared/clients/_limits.py shows here once listed."""
    settings = page.settings
    return [
        (f"HubSpot portal {portal_id}", f"hubspot:{portal_id}:burst", settings.hubspot_burst_requests,
         settings.hubspot_burst_seconds),
        (f"QuickBooks company {realm_id}", f"quickbooks:{realm_id}:minute", settings.qbo_requests_per_minute, 60.0),
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class MonthlyUsage:
    """One connection's calls this calendar month (UTC), as the clients counted them (shared/budget.py)."""

    month: str
    hubspot_reads: int
    hubspot_writes: int
    qbo_reads: int
    qbo_writes: int


async def monthly_usage(store: UsageBackend, portal_id: str, realm_id: str, now: float) -> MonthlyUsage:
    month = month_of(now)
    counts = {
        (usage.key.provider, usage.key.kind): usage.calls
        for provider, account in ((Provider.HUBSPOT, portal_id), (Provider.QUICKBOOKS, realm_id))
        for usage in await store.api_usage(month, provider=provider, account=account)
    }
    return MonthlyUsage(
        month,
        hubspot_reads=counts.get((Provider.HUBSPOT, CallKind.READ), 0),
        hubspot_writes=counts.get((Provider.HUBSPOT, CallKind.WRITE), 0),
        qbo_reads=counts.get((Provider.QUICKBOOKS, CallKind.READ), 0),
        qbo_writes=counts.get((Provider.QUICKBOOKS, CallKind.WRITE), 0),
    )


class Overview:
    def __init__(self, page: StatusPage) -> None:
        self.page = page

    def routes(self) -> list[Route]:
        return [
            Route("/overview", self.overview, name="overview_page"),
            Route("/connections/{name}/objects/{kind}/switch", self.switch, methods=["POST"], name="object_switch"),
        ]

    async def overview(self, request: Request) -> Response:
        page, store = self.page, self.page.store
        now = page.clock()
        beats = await store.heartbeats()
        processes = [Process(beat, alive(beat, now)) for beat in beats]
        letters = await self._dead_letters()
        connections: list[dict[str, Any]] = []
        for connection in page.sync.connection:
            name = connection.name
            switches = await store.object_switches(name)
            backlog = await store.count_pending_by_kind(name)
            synced = await store.synced(name, since=now - charts.DAY.seconds)
            recent = Counter(r.kind for r in synced if r.at >= now - RATE_MINUTES * 60)
            last_poll = max((b.detail.get("polls", {}).get(name, 0.0) for b in beats if b.role == "poller"),
                            default=0.0) or None  # fmt: skip
            rows = []
            for kind in Kind:
                settings = connection.objects(kind)
                per_minute = recent[kind] / RATE_MINUTES
                waiting = backlog.get(kind, 0)
                webhook = max((b.detail.get("webhooks", {}).get(f"{name}/{kind}", 0.0) for b in beats),
                              default=0.0) or None  # fmt: skip
                rows.append(ObjectRow(
                    kind=kind, direction=settings.direction, conflict_winner=settings.conflict_winner,
                    enabled=switches.get(kind, True), last_webhook=webhook, last_poll=last_poll, backlog=waiting,
                    per_minute=per_minute,
                    eta="—" if not waiting else duration(waiting * 60 / per_minute) if per_minute else "stalled",
                    dead_letters=letters.get((name, str(kind)), 0) if isinstance(letters, dict) else 0,
                ))  # fmt: skip
            windows = budget_windows(page, connection.hubspot_portal_id, connection.qbo_realm_id)
            used = await store.count_rate_uses([key for _, key, _, _ in windows], now)
            hour, day = charts.buckets(synced, charts.HOUR, now), charts.buckets(synced, charts.DAY, now)
            chart_svgs: list[Markup] = [
                charts.synced_chart(hour, charts.HOUR, f"synced-hour-{name}"),
                charts.lag_chart(hour, charts.HOUR, f"lag-hour-{name}"),
                charts.synced_chart(day, charts.DAY, f"synced-day-{name}"),
                charts.lag_chart(day, charts.DAY, f"lag-day-{name}"),
            ]
            budget = [Budget(account, used.get(key, 0), limit, seconds) for account, key, limit, seconds in windows]
            month = await monthly_usage(store, connection.hubspot_portal_id, connection.qbo_realm_id, now)
            dead = sum(n for (c, _), n in letters.items() if c == name) if isinstance(letters, dict) else letters
            connections.append(
                {
                    "settings": connection, "rows": rows, "charts": chart_svgs, "budget": budget, "dead_letters": dead,
                    "month": month, "read_budget": connection.qbo_monthly_read_budget,
                }
            )  # fmt: skip
        return page._render("console.html", request, connections=connections, processes=processes)

    async def _dead_letters(self) -> dict[tuple[str | None, str | None], int] | str:
        """Dead letters per connection and object as the dead-letter page last scanned them (reading a letter off the
        queue is a write, which a GET never does: services/status/_dead_letters.py); before a scan, how many the
        queue holds (its message count); why not, when the broker is unreachable."""
        try:
            async with self.page.dead_letters() as letters:
                queued = await letters.count()
        except (OSError, AMQPError):
            return "unknown (RabbitMQ unreachable)"
        scan = self.page.dead_letter_pages.scan
        if scan is None:
            return f"{queued} in the queue, not scanned yet"
        return Counter((letter.connection, letter.kind) for letter in scan.letters)

    async def switch(self, request: Request) -> Response:
        from services.status._app import _redirect  # here: the app imports this module

        connection = self.page._connection(request)
        try:
            kind = Kind(request.path_params["kind"])
        except ValueError:
            return _redirect(str(request.url_for("overview_page")), "no such object")
        form = await request.form()
        enabled = form.get("enabled") == "on"
        await self.page.store.set_object_switch(connection.name, kind, enabled)
        if enabled:  # the work set aside while off is due now
            await self.page.store.release_deferred(connection.name)
        state = "on: its waiting changes sync now" if enabled else "off: its changes wait until it is switched on"
        return _redirect(str(request.url_for("overview_page")), f"{connection.name} {kind} switched {state}")

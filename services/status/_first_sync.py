"""The initial sync, reviewed before it writes (services/poller/_plan.py, _first_sync.py):

    GET  /connections/{name}/first-sync            the plan: per object what it will link (with the matched record),
                                                   create, update, exclude (with the reason), what needs review; once
                                                   confirmed, its progress, rate and ETA
    POST /connections/{name}/first-sync/plan       make a (new) plan: reads both accounts, writes nothing to either
    POST /connections/{name}/first-sync/resolve    decide one record needing review (`key`, `decision`, `pick`)
    POST /connections/{name}/first-sync/confirm    run the plan once every review is decided: the workers sync it

The plan is kept in the store (`hsqbo poller --backfill --plan FILE` keeps its plan there too), so the page and the
command line see the same one. Planning runs in the background; the page refreshes itself while it runs and while
the confirmed sync runs (a meta refresh: no JavaScript).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aio_pika.exceptions import AMQPError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.poller import _plan, bulk_publisher
from services.poller._first_sync import apply_plan, make_plan, progress
from shared.connections import ConnectionPaused
from shared.errors import ApiError, AuthRevoked, BusError, MissingScopes
from shared.logging import get_logger
from shared.store import FirstSync, ReviewDecision
from shared.syncconfig import ConnectionSettings

if TYPE_CHECKING:
    from services.status._app import StatusPage

log = get_logger("hsqbo.status")


class FirstSyncPages:
    def __init__(self, page: StatusPage) -> None:
        self.page = page
        self.planning: dict[str, int] = {}  # connection -> records looked at, while its plan is being made
        self.failed: dict[str, str] = {}  # connection -> why its last planning failed
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[Route]:
        base = "/connections/{name}/first-sync"
        return [
            Route(base, self.show, name="first_sync"),
            Route(f"{base}/plan", self.plan, methods=["POST"], name="first_sync_plan"),
            Route(f"{base}/resolve", self.resolve, methods=["POST"], name="first_sync_resolve"),
            Route(f"{base}/confirm", self.confirm, methods=["POST"], name="first_sync_confirm"),
        ]

    async def show(self, request: Request) -> Response:
        connection = self.page._connection(request)
        kept = await self.page.store.first_sync(connection.name)
        failed = self.failed.get(connection.name)
        try:
            plan = _plan.from_json(kept.plan) if kept is not None else None
        except _plan.PlanError as exc:  # kept by another hsqbo version: a new plan replaces it
            plan, failed = None, f"the kept plan cannot be read ({exc}): make a new one"
        running = await progress(self.page.store, kept, self.page.clock()) if kept is not None else None
        return self.page._render(
            "first_sync.html", request, connection=connection, plan=plan, kept=kept, progress=running,
            planning=self.planning.get(connection.name), failed=failed,
            actions=list(_plan.Action), duration=_plan.duration,
        )  # fmt: skip

    async def plan(self, request: Request) -> Response:
        from services.status._app import _redirect  # here: the app imports this module

        connection = self.page._connection(request)
        back = str(request.url_for("first_sync", name=connection.name))
        kept = await self.page.store.first_sync(connection.name)
        if kept is not None and kept.applied_at is not None:
            return _redirect(back, "this connection's first sync was confirmed already")
        if connection.name not in self.planning:
            self.planning[connection.name] = 0
            self.failed.pop(connection.name, None)
            task = asyncio.create_task(self._make_plan(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return _redirect(back, "planning: reading both accounts, writing nothing")

    async def _make_plan(self, connection: ConnectionSettings) -> None:
        store = self.page.store

        def planned(looked_at: int) -> None:
            self.planning[connection.name] = looked_at

        try:
            if self.page.contexts is None:
                self.failed[connection.name] = "planning needs API clients: this page was served without any"
                return
            ctx = await self.page.contexts.get(connection)  # the process's API clients, as the record pages use
            plan = await make_plan(ctx, since=None, now=self.page.clock(), planned=planned)
            await store.save_first_sync(
                FirstSync(connection=connection.name, plan=_plan.to_json(plan), planned_at=plan.planned_at)
            )
        except (ConnectionPaused, AuthRevoked, MissingScopes, ApiError) as exc:
            self.failed[connection.name] = f"planning failed: {exc}"[:500]
        except Exception as exc:  # shown on the page rather than lost in a background task
            log.exception("first_sync_planning_failed", connection=connection.name)
            self.failed[connection.name] = f"planning failed: {type(exc).__name__}"
        finally:
            self.planning.pop(connection.name, None)

    async def resolve(self, request: Request) -> Response:
        from services.status._app import _redirect

        connection = self.page._connection(request)
        back = str(request.url_for("first_sync", name=connection.name))
        form = await request.form()
        kept = await self.page.store.first_sync(connection.name)
        if kept is None or kept.applied_at is not None:
            return _redirect(back, "no plan to decide on (make one, or it was confirmed already)")
        choice = str(form.get("decision", ""))
        key = str(form.get("key", ""))
        try:
            decision = ReviewDecision(choice)
            pick = (str(form.get("pick", "")) or None) if decision == ReviewDecision.PICK else None
            plan = _plan.resolve(_plan.from_json(kept.plan), key, decision, pick)
        except (ValueError, _plan.PlanError) as exc:
            return _redirect(back, f"not decided: {exc}" if isinstance(exc, _plan.PlanError) else "choose a decision")
        await self.page.store.save_first_sync(
            FirstSync(connection=connection.name, plan=_plan.to_json(plan), planned_at=plan.planned_at)
        )
        entry = plan.entry(key)
        said = f"link to {entry.pick}" if entry.pick else str(decision).replace("_", " ")
        return _redirect(back, f"{entry.label}: {said}")

    async def confirm(self, request: Request) -> Response:
        from services.status._app import _redirect

        connection = self.page._connection(request)
        back = str(request.url_for("first_sync", name=connection.name))
        store = self.page.store
        kept = await store.first_sync(connection.name)
        if kept is None or kept.applied_at is not None:
            return _redirect(back, "no plan to confirm (make one, or it was confirmed already)")
        try:
            plan = _plan.from_json(kept.plan)
        except _plan.PlanError as exc:
            return _redirect(back, f"the kept plan cannot be read ({exc}): make a new one")
        if wrong := _plan.confirmable(plan):
            return _redirect(back, f"{len(wrong)} record(s) still need a decision")
        try:  # on the page's broker, in the bulk lane: a first sync never holds up live changes
            applied_at = time.time()
            queued = await apply_plan(store, connection, plan, bulk_publisher(self.page.broker))
        except (OSError, BusError, AMQPError) as exc:
            return _redirect(back, f"not confirmed: RabbitMQ did not take the records ({type(exc).__name__})")
        await store.save_first_sync(
            FirstSync(connection=connection.name, plan=kept.plan, planned_at=kept.planned_at, applied_at=applied_at)
        )
        return _redirect(back, f"confirmed: {queued} record(s) queued for the workers")

"""Runs the rule for one record and records what happened (link status, activity log). Transient API errors escape
to the worker, which retries them later; everything else ends here with a recorded outcome.

A paused connection (its provider refused our refresh token) is `paused`, not failing: the link is left alone and
the record's pending work is deferred, neither dropped nor retried in a loop. The sweep brings it back after
HSQBO_PAUSED_RECHECK_SECONDS (one store read, no API call, while still paused), or at once on reconnect."""

from __future__ import annotations

from services.worker._context import ConnectionPaused, ContextFactory, SyncContext
from services.worker._ingest import object_settings
from services.worker.rules import Excluded, Failing, Hints, Outcome, Rule, direction_from
from services.worker.rules.contacts import ContactRule
from services.worker.rules.invoices import InvoiceRule
from services.worker.rules.payments import PaymentRule
from services.worker.rules.products import ProductRule
from shared.deadletters import error_category
from shared.envelope import Provider
from shared.errors import ApiError, AuthRevoked, StaleObject
from shared.logging import get_logger
from shared.store import DuplicateLink, Kind, Link, LinkStatus, PendingKey, StaleLink, Store
from shared.syncconfig import SyncSettings

RULES: dict[Kind, Rule] = {
    Kind.CONTACT: ContactRule(),
    Kind.INVOICE: InvoiceRule(),
    Kind.PAYMENT: PaymentRule(),
    Kind.PRODUCT: ProductRule(),
}

# A record changed under us (QBO SyncToken, our link revision, a concurrent link): re-read and run again, at once.
RERUNS = 3

log = get_logger("hsqbo.worker")


class Engine:
    def __init__(self, store: Store, contexts: ContextFactory, sync: SyncSettings) -> None:
        self._store = store
        self._contexts = contexts
        self._sync = sync

    async def apply(self, key: PendingKey, hints: Hints) -> Outcome:
        connection = self._sync.named(key.connection)
        rule = RULES.get(key.kind)
        if connection is None or rule is None:
            return Outcome("skipped", detail=f"no connection {key.connection!r} or no rule for {key.kind}")
        if not object_settings(connection, key.kind).syncs_from(key.side):
            return Outcome("skipped", detail=f"{key.kind} sync from {key.side} is off")
        try:
            ctx = await self._contexts.get(connection)
        except ConnectionPaused as paused:
            return await self._defer(key, paused)
        run = rule.from_hubspot if key.side == Provider.HUBSPOT else rule.from_qbo
        for attempt in range(RERUNS):
            try:
                outcome = await run(ctx, key.object_id, hints)
            except (StaleObject, StaleLink, DuplicateLink):
                if attempt == RERUNS - 1:
                    raise
                continue
            except Excluded as exc:
                outcome = await self._record(ctx, key, LinkStatus.EXCLUDED, exc.category, str(exc))
            except Failing as exc:
                outcome = await self._record(ctx, key, LinkStatus.FAILING, exc.category, str(exc))
            except AuthRevoked as exc:  # the account's authorization is gone, not this record's fault
                return await self._defer(key, await self._contexts.pause(ctx.name, exc))
            except ApiError as exc:
                if exc.transient:
                    raise
                outcome = await self._record(ctx, key, LinkStatus.FAILING, error_category(exc), str(exc))
            break
        await self._log(key, outcome)
        return outcome

    async def _defer(self, key: PendingKey, paused: ConnectionPaused) -> Outcome:
        await self._store.defer_pending(key, paused.recheck_at)
        outcome = Outcome("paused", direction_from(key.side), detail=str(paused))
        await self._log(key, outcome)
        return outcome

    async def _record(
        self, ctx: SyncContext, key: PendingKey, status: LinkStatus, category: str, message: str
    ) -> Outcome:
        """Mark the source record excluded or failing, creating its link if it has none yet."""
        hubspot_id = key.object_id if key.side == Provider.HUBSPOT else None
        qbo_id = key.object_id if key.side == Provider.QUICKBOOKS else None
        link = await self._store.get_link(ctx.name, key.kind, hubspot_id=hubspot_id, qbo_id=qbo_id)
        if link is None:
            link = await self._store.save_link(
                Link(
                    connection=ctx.name,
                    kind=key.kind,
                    origin=key.side,
                    hubspot_id=hubspot_id,
                    qbo_id=qbo_id,
                    status=status,
                    error_category=category,
                    error_message=message[:500],
                )
            )
        else:
            link = await self._store.set_status(link.id or 0, status, category, message[:500])
        return Outcome(str(status), direction_from(key.side), link, detail=f"{category}: {message}")

    async def _log(self, key: PendingKey, outcome: Outcome) -> None:
        link = outcome.link
        await self._store.log_activity(
            key.connection,
            key.kind,
            outcome.action,
            link_id=link.id if link else None,
            hubspot_id=link.hubspot_id if link else (key.object_id if key.side == Provider.HUBSPOT else None),
            qbo_id=link.qbo_id if link else (key.object_id if key.side == Provider.QUICKBOOKS else None),
            direction=outcome.direction,
            detail=outcome.detail,
        )
        log.info(
            "applied", connection=key.connection, kind=key.kind, side=key.side, object_id=key.object_id,
            action=outcome.action, detail=outcome.detail[:200],
        )  # fmt: skip

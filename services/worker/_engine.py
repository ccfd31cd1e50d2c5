"""Runs the rule for one record and records what happened (link status, activity log). Transient API errors escape
to the worker, which retries them later; everything else ends here with a recorded outcome.

Every apply records on the link the version of the source record the rule saw (`rules.saw`), whatever the outcome:
the poller then queues the record again only for a newer version, excluded, failing and skipped records included. An
outcome repeated on a version the link already showed is no news: no status write, no activity line (the log line
stays). A status changes only when the data does.

After each apply the engine keeps on the link what a person recognises the record by (`_summary`: its name, email,
number or amount as the rule read it, what the sync changed, what a failing record waits for, `shared.domain.Awaited`);
the status page lists and searches records by it without calling either API.

A paused connection (its provider refused our refresh token, or HubSpot refused a call for want of a scope) is
`paused`, not failing: the link is left alone and the record's pending work is deferred, neither dropped nor retried
in a loop. The sweep brings it back after
HSQBO_PAUSED_RECHECK_SECONDS (one store read, no API call, while still paused), or at once on reconnect.

An object an operator switched off (the status page's overview) is `paused` the same way: its work is deferred, kept,
and due again once switched on.

An apply can find other records to run, which the worker then schedules (`Applied.wake`):
- a part's change (see `_ingest`) wakes the records it belongs to, found through the association: a HubSpot line
  item its invoice; under the `require_hubspot_invoice` contact filter, a HubSpot invoice its contacts;
- a record created or linked wakes the records failing for want of it: a rule names the record it waits for
  (`Failing.awaits`: an invoice its customer, a payment its invoice), the engine stores it with the failure, and
  the store finds the records waiting for the one just created or linked by its id on either side. One that names
  none (an invoice without a contact) waits for its own next change. A record that fails while the one it waits for
  syncs at the same moment (two workers) looks again once its wait is stored, and wakes itself if it is already
  linked."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Protocol

from services.worker import _summary as summaries
from services.worker._hints import lone_change_at_ms
from services.worker._ingest import PARENTS, QBO_KINDS
from services.worker._pairs import PairLocks
from services.worker.rules import Excluded, Failing, Hints, Outcome, Rule, Seen, direction_from, watching
from services.worker.rules.contacts import ContactRule
from services.worker.rules.invoices import InvoiceRule
from services.worker.rules.payments import PaymentRule
from services.worker.rules.products import ProductRule
from shared.company import CompanySettingsError
from shared.connections import ConnectionPaused, ContextFactory, SyncContext
from shared.deadletters import error_category
from shared.domain import Action, Awaited, Kind, Part, PendingKey, Provider
from shared.envelope import Operation
from shared.errors import ApiError, AuthRevoked, MissingScopes, NotFound
from shared.logging import get_logger
from shared.store import ActivityLog, Link, LinkStatus, LinkStore, ObjectSwitches, PendingWork, StaleLink
from shared.syncconfig import SyncSettings
from shared.versions import link_shows, link_version

RULES: dict[Kind, Rule] = {
    Kind.CONTACT: ContactRule(),
    Kind.INVOICE: InvoiceRule(),
    Kind.PAYMENT: PaymentRule(),
    Kind.PRODUCT: ProductRule(),
}

WAKING_ACTIONS = frozenset({Action.CREATED, Action.LINKED})
QBO_ENTITIES = {kind: entity for entity, kind in QBO_KINDS.items()}  # Kind.CONTACT -> "customer"
# Hints whose change a time says too little of (see `_ingest.route`): always read.
ECHO_NEVER = frozenset({str(Operation.DELETED), str(Operation.VOIDED), str(Operation.DRIFTED), "merged_ids"})
SWITCHED_OFF_RECHECK_SECONDS = 300.0  # switching an object back on makes its work due at once; this is the safety net
# Outcomes that change nothing: repeated on a version the link already shows, they add no activity line.
NO_NEWS = frozenset({Action.SKIPPED, Action.UNCHANGED, Action.ECHO})


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    outcome: Outcome
    wake: tuple[PendingKey, ...] = ()  # other records to run now: the worker makes them pending and schedules them


log = get_logger("hsqbo.worker")


class EngineStore(LinkStore, ActivityLog, PendingWork, ObjectSwitches, Protocol):
    """What the engine needs of the store: the links it records outcomes on, their history, what a failing record
    waits for and deferring work, and the operator's object switches."""


class Engine:
    def __init__(self, store: EngineStore, contexts: ContextFactory, sync: SyncSettings) -> None:
        self._store = store
        self._contexts = contexts
        self._sync = sync
        self._pairs = PairLocks()

    async def apply(self, key: PendingKey, hints: Hints) -> Applied:
        connection = self._sync.named(key.connection)
        rule = RULES.get(key.kind)
        if connection is None or rule is None:
            return Applied(
                Outcome(Action.SKIPPED, detail=f"no connection {key.connection!r} or no rule for {key.kind}")
            )
        if not connection.objects(key.kind).syncs_from(key.side):
            return Applied(Outcome(Action.SKIPPED, detail=f"{key.kind} sync from {key.side} is off"))
        if not (await self._store.object_switches(key.connection)).get(key.kind, True):
            return Applied(await self._switched_off(key))
        try:
            ctx = await self._contexts.get(connection)
        except ConnectionPaused as paused:
            return Applied(await self._defer(key, paused))
        if key.part is not None:
            with ctx.calls.applying(), _qbo_change(ctx, key, hints, None):
                return await self._wake_parents(ctx, key, key.part)
        before = await self._store.get_link(ctx.name, key.kind, **_own_id(key))
        # An apply of the pair's other record in this process finishes first (`_pairs.py`): outside the batching,
        # so its neighbours' batch calls never wait for this one's turn.
        async with self._pairs.holding(before.id if before is not None else None) as waited:
            if waited:
                before = await self._store.get_link(ctx.name, key.kind, **_own_id(key))
            # Its API calls meet its neighbours' in batch calls (shared/clients/_batching.py); the echo of our own
            # QBO write is read from the write's answer (shared/clients/_echoes.py).
            with ctx.calls.applying(), _qbo_change(ctx, key, hints, before):
                return await self._run(ctx, rule, key, hints, before)

    async def _run(self, ctx: SyncContext, rule: Rule, key: PendingKey, hints: Hints, before: Link | None) -> Applied:
        run = rule.from_hubspot if key.side == Provider.HUBSPOT else rule.from_qbo
        wake: tuple[PendingKey, ...] = ()
        awaits: Awaited | None = None
        with watching() as seen, _qbo_counterpart(ctx, key, hints, before):
            try:
                outcome = await run(ctx, key.object_id, hints)
                news = await self._note_seen(key, before, seen.version, outcome)
            except Excluded as exc:
                outcome, news = await self._record(ctx, key, before, seen, LinkStatus.EXCLUDED, exc.category, str(exc))
            except Failing as exc:
                awaits = exc.awaits
                outcome, news = await self._record(
                    ctx, key, before, seen, LinkStatus.FAILING, exc.category, str(exc), awaits=awaits
                )
                if awaits is not None and await self._linked(key.connection, awaits):
                    wake = (key,)  # it synced while we failed (see the module docstring): run again
            except CompanySettingsError as exc:  # the connection's settings need fixing, not the record's data
                outcome, news = await self._record(ctx, key, before, seen, LinkStatus.FAILING, "config", str(exc))
            except (AuthRevoked, MissingScopes) as exc:  # the account's authorization, not this record's fault
                return Applied(await self._defer(key, await self._contexts.pause(ctx.name, exc)))
            except ApiError as exc:
                if exc.transient:  # a record changed under us included (QBO's 5010): the retry policy reruns it
                    raise
                category = error_category(exc)
                outcome, news = await self._record(ctx, key, before, seen, LinkStatus.FAILING, category, str(exc))
        await self._summarize(key, before, outcome, seen, awaits)
        if news:
            await self._log(key, outcome)
        else:  # the same outcome of a version already seen: nothing new for the record's history
            _log_line(key, outcome)
        return Applied(outcome, wake + await self._waiting_for(key, outcome))

    async def _note_seen(self, key: PendingKey, before: Link | None, version: str | None, outcome: Outcome) -> bool:
        """Record on the link the version of the source record the rule saw, if the rule did not record one (a
        skipped or echo outcome, an archive); whether the outcome is news (see NO_NEWS)."""
        link = outcome.link
        if link is None or _own_id(key) != _own_id_of(link, key.side):
            link = await self._store.get_link(key.connection, key.kind, **_own_id(key))
        repeated = link_shows(before, key.side, version)
        if (
            link is not None
            and link.id is not None
            and version is not None
            and not link_shows(link, key.side, version)
            and link_version(link, key.side) == link_version(before, key.side)  # the rule left it
        ):
            with contextlib.suppress(StaleLink):  # the link is gone meanwhile (a merge): nothing to record on
                await self._store.set_version(link.id, key.side, version)
        return not (repeated and outcome.action in NO_NEWS)

    async def _summarize(
        self, key: PendingKey, before: Link | None, outcome: Outcome, seen: Seen, awaits: Awaited | None
    ) -> None:
        """Keep on the link what a person recognises the record by and what this apply changed (`_summary`); no
        write when that is as it was."""
        link = outcome.link
        if link is None or _own_id(key) != _own_id_of(link, key.side):
            link = await self._store.get_link(key.connection, key.kind, **_own_id(key))
        if link is None or link.id is None:
            return
        changed = summaries.changes(before.synced if before is not None else {}, link.synced)
        summary = summaries.next_summary(
            link.summary, key.kind, side=key.side, record=seen.record, changed=changed, awaits=awaits, now=time.time()
        )
        shown = summaries.label(key.kind, summary)
        if (shown, summary) != (link.label, link.summary):
            await self._store.set_summary(link.id, shown, summary)

    async def _wake_parents(self, ctx: SyncContext, key: PendingKey, part: Part) -> Applied:
        """A part changed: the records it belongs to are what to sync (none when it belongs to nothing synced)."""
        where = PARENTS[part]
        try:
            parents = await ctx.hubspot.list_associations(where.hubspot_type, key.object_id, where.parent_type)
        except NotFound:
            parents = []
        except (AuthRevoked, MissingScopes) as exc:
            return Applied(await self._defer(key, await self._contexts.pause(ctx.name, exc)))
        wake = tuple(PendingKey(key.connection, key.kind, Provider.HUBSPOT, parent.to_id) for parent in parents)
        detail = f"{where.hubspot_type} {key.object_id} changed: " + (
            f"{where.parent_type} {', '.join(p.object_id for p in wake)}" if wake else f"in no {where.parent_type}"
        )
        outcome = Outcome(Action.ROUTED if wake else Action.SKIPPED, detail=detail)
        _log_line(key, outcome)  # no activity line: the part is no synced record
        return Applied(outcome, wake)

    async def _waiting_for(self, key: PendingKey, outcome: Outcome) -> tuple[PendingKey, ...]:
        """The failing records that wait for the record this outcome created or linked, by its id on either side."""
        link = outcome.link
        if outcome.action not in WAKING_ACTIONS or link is None:
            return ()
        wake: list[PendingKey] = []
        for side, object_id in ((Provider.HUBSPOT, link.hubspot_id), (Provider.QUICKBOOKS, link.qbo_id)):
            if object_id is not None:
                wake += await self._store.waiting_for(key.connection, Awaited(key.kind, side, object_id))
        return tuple(wake)

    async def _linked(self, connection: str, awaited: Awaited) -> bool:
        """Whether the awaited record is linked to its counterpart now (what the waiting rules look for)."""
        own = {"hubspot_id" if awaited.side == Provider.HUBSPOT else "qbo_id": awaited.object_id}
        link = await self._store.get_link(connection, awaited.kind, **own)
        return (
            link is not None
            and link.hubspot_id is not None
            and link.qbo_id is not None
            and link.status != LinkStatus.DELETED
        )

    async def _defer(self, key: PendingKey, paused: ConnectionPaused) -> Outcome:
        await self._store.defer_pending(key, paused.recheck_at)
        outcome = Outcome(Action.PAUSED, direction_from(key.side), detail=str(paused))
        await self._log(key, outcome)
        return outcome

    async def _switched_off(self, key: PendingKey) -> Outcome:
        """An operator switched the object off (status page): its work waits, kept, until switched back on (which
        makes it due at once), looked at again every SWITCHED_OFF_RECHECK_SECONDS meanwhile."""
        await self._store.defer_pending(key, time.time() + SWITCHED_OFF_RECHECK_SECONDS)
        outcome = Outcome(Action.PAUSED, direction_from(key.side), detail=f"{key.kind} switched off on the status page")
        _log_line(key, outcome)  # no activity line: the record did not change
        return outcome

    async def _record(
        self,
        ctx: SyncContext,
        key: PendingKey,
        before: Link | None,
        seen: Seen,
        status: LinkStatus,
        category: str,
        message: str,
        *,
        awaits: Awaited | None = None,
    ) -> tuple[Outcome, bool]:
        """Mark the source record excluded or failing, creating its link if it has none yet, with the version the
        rule saw; whether that is news. The same status and reason again is no status write, and the same as before
        the apply (`before`) on a version the link already showed is no news at all (a rule may have moved the status
        meanwhile, e.g. a create's intent: it is put back, silently). A failing record's wait is stored whenever it
        names one (an upsert, so a record failing since before waits were stored gets one), and cleared with a new
        failure that names none."""
        hubspot_id = key.object_id if key.side == Provider.HUBSPOT else None
        qbo_id = key.object_id if key.side == Provider.QUICKBOOKS else None
        link = await self._store.get_link(ctx.name, key.kind, hubspot_id=hubspot_id, qbo_id=qbo_id)
        version = seen.version
        news = wrote = True
        if link is None:
            link = await self._store.save_link(
                Link(
                    connection=ctx.name,
                    kind=key.kind,
                    origin=key.side,
                    hubspot_id=hubspot_id,
                    qbo_id=qbo_id,
                    hubspot_version=version if key.side == Provider.HUBSPOT else None,
                    qbo_version=version if key.side == Provider.QUICKBOOKS else None,
                    status=status,
                    error_category=category,
                    error_message=message[:500],
                )
            )
        else:
            wanted = (status, category, message[:500])
            was = (before.status, before.error_category, before.error_message) if before is not None else None
            news = not (was == wanted and (version is None or link_shows(before, key.side, version)))
            wrote = (link.status, link.error_category, link.error_message) != wanted
            if wrote:
                link = await self._store.set_status(link.id or 0, *wanted)
            if version is not None and not link_shows(link, key.side, version):
                link = await self._store.set_version(link.id or 0, key.side, version)
        if status == LinkStatus.FAILING and (awaits is not None or wrote):
            await self._store.set_waiting(link.id or 0, key.side, awaits)
        return Outcome(Action(status), direction_from(key.side), link, detail=f"{category}: {message}"), news

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
        _log_line(key, outcome)


def _qbo_change(
    ctx: SyncContext, key: PendingKey, hints: Hints, link: Link | None
) -> contextlib.AbstractContextManager[None]:
    """The change of a QBO record being applied and the SyncToken its link (`link`, as read before the apply) last
    recorded writing, for its client to tell our own write's echo (`QboClient.changed`); a delete, void or merge is
    always read, and so is a record whose apply holds several changes."""
    entity = QBO_ENTITIES[key.kind]
    if key.side != Provider.QUICKBOOKS or key.part is not None:
        return ctx.qbo.changed(entity, None, None, written_sync_token=None)
    unknown = any(flag in hints for flag in ECHO_NEVER)
    at_ms = None if unknown else lone_change_at_ms(hints)
    written = link.qbo_written_sync_token if link is not None else None
    return ctx.qbo.changed(entity, key.object_id, at_ms, written_sync_token=written)


def _qbo_counterpart(
    ctx: SyncContext, key: PendingKey, hints: Hints, link: Link | None
) -> contextlib.AbstractContextManager[None]:
    """The QBO record a change from HubSpot goes to and the SyncToken its link last synced, for its client to read it
    from our own last write when that is current (`QboClient.counterpart`); a merge's link is always read."""
    if (
        key.side != Provider.HUBSPOT
        or "merged_ids" in hints
        or link is None
        or link.qbo_id is None
        or link.status != LinkStatus.SYNCED
    ):
        return contextlib.nullcontext()
    return ctx.qbo.counterpart(QBO_ENTITIES[key.kind], link.qbo_id, link.qbo_version)


def _own_id(key: PendingKey) -> dict[str, str]:
    """The get_link argument finding the link of the key's record."""
    return {"hubspot_id" if key.side == Provider.HUBSPOT else "qbo_id": key.object_id}


def _own_id_of(link: Link, side: Provider) -> dict[str, str | None]:
    return {
        "hubspot_id" if side == Provider.HUBSPOT else "qbo_id": link.hubspot_id
        if side == Provider.HUBSPOT
        else link.qbo_id
    }


def _log_line(key: PendingKey, outcome: Outcome) -> None:
    log.info(
        "applied", connection=key.connection, kind=key.kind, side=key.side, object_id=key.object_id,
        action=outcome.action, detail=outcome.detail[:200],
    )  # fmt: skip

"""Carries plans out (see `_plan`): each step in order, the store's and the APIs' answers threaded through. The only
place a plan's writes happen; it decides nothing. An error stops the plan where it is: what ran stays done, which
the plan's order makes safe (the next apply plans again from what it reads). Where a write's answer picks the next
write, the plan says how as data (a create's alternatives: `CreateQboOneOf`), or the plan ends with that answer (a
HubSpot 409, raised) and the rule plans again from what it reads."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any, assert_never

import orjson

from services.worker._plan import (
    TOTAL_MISMATCH,
    Alternative,
    Answer,
    Answered,
    ArchiveHubSpot,
    AsJson,
    AssociateInvoicePart,
    CheckInvoiceTotal,
    CreateHubSpot,
    CreateQbo,
    CreateQboOneOf,
    LogActivity,
    Plan,
    Refusal,
    RepointLink,
    RequestId,
    SaveLink,
    SaveOtherLink,
    UpdateHubSpot,
    UpdateQbo,
    VoidQbo,
)
from services.worker.rules import Failing, Outcome
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.connections import SyncContext
from shared.domain import Action, Provider
from shared.errors import ApiError, DuplicateDocNumber, DuplicateName, NotFound, StaleObject
from shared.money import decimal
from shared.store import Link, RepointOutcome

REFUSALS: dict[Refusal, type[ApiError]] = {
    Refusal.DUPLICATE_NAME: DuplicateName,
    Refusal.DUPLICATE_DOC_NUMBER: DuplicateDocNumber,
}


class MergedAway(NotFound):
    """HubSpot wrote an update of a merged-away id through to the record it was merged into (`survivor_id`): the
    plan's record is gone, and what follows (the link's save) would describe the wrong one. `written`: the update
    that landed on the survivor."""

    def __init__(self, written: UpdateHubSpot, survivor_id: str) -> None:
        super().__init__(
            f"HubSpot {written.object_type} {written.object_id} was merged into {survivor_id}", provider="hubspot"
        )
        self.written = written
        self.survivor_id = survivor_id


async def carry_out(ctx: SyncContext, plan: Plan) -> Outcome:
    """Run `plan`; the outcome carries the link as saved last."""
    return (await carry_out_answered(ctx, plan))[0]


async def carry_out_answered(ctx: SyncContext, plan: Plan) -> tuple[Outcome, QboEntity | None]:
    """`carry_out`, and the record QBO answered the plan's last QBO write with (None: it wrote none): a create's
    answer serves the field sync that follows it, unread."""
    written: QboEntity | None = None
    link = plan.link
    answers: dict[tuple[Answer, str], str | None] = {}
    for step in plan.steps:
        if isinstance(step, SaveLink):
            if link is None:
                raise ValueError("a plan with no link saves none")
            link = await ctx.store.save_link(dataclasses.replace(link, **_resolved(step.changes, answers)))
        elif isinstance(step, SaveOtherLink):
            await ctx.store.save_link(dataclasses.replace(step.link, **_resolved(step.changes, answers)))
        elif isinstance(step, RepointLink):
            await _repoint(ctx, step)
        elif isinstance(step, CreateQbo | CreateQboOneOf | UpdateQbo | VoidQbo):
            entity = written = await _write_qbo(ctx, step, link)
            if isinstance(step, CreateQbo | CreateQboOneOf):
                answers[Answer.QBO_ID, ""] = str(entity["Id"])
            answers[Answer.QBO_SYNC_TOKEN, ""] = str(entity["SyncToken"])
            total = entity.get("TotalAmt")
            answers[Answer.QBO_TOTAL, ""] = None if total is None else str(total)
        elif isinstance(step, CreateHubSpot):
            record = await ctx.hubspot.create(step.object_type, dict(step.properties), associations=step.associations)
            answers[Answer.HUBSPOT_ID, step.label] = record.id
            answers[Answer.HUBSPOT_UPDATED_AT, step.label] = _version(record)
        elif isinstance(step, UpdateHubSpot):
            try:
                record = await ctx.hubspot.update(step.object_type, step.object_id, dict(step.properties))
            except NotFound:
                if not step.gone_ok:
                    raise
            else:
                if record.id != step.object_id and not step.gone_ok:
                    raise MergedAway(step, record.id)
                answers[Answer.HUBSPOT_UPDATED_AT, step.label] = _version(record)
        elif isinstance(step, ArchiveHubSpot):
            with contextlib.suppress(NotFound):  # already archived
                await ctx.hubspot.archive(step.object_type, step.object_id)
        elif isinstance(step, AssociateInvoicePart):
            object_id = _resolved({"id": step.object_id}, answers)["id"]
            await ctx.hubspot.associate("invoices", step.invoice_id, step.object_type, object_id, type_id=step.type_id)
        elif isinstance(step, CheckInvoiceTotal):
            await _check_total(ctx, step, answers)
        elif isinstance(step, LogActivity):
            if link is None:
                raise ValueError("a plan with no link logs under none")
            await ctx.store.log_activity(
                ctx.name, link.kind, step.action, link_id=link.id, hubspot_id=link.hubspot_id, qbo_id=link.qbo_id,
                detail=step.detail,
            )  # fmt: skip
        else:
            assert_never(step)
    return Outcome(plan.action, plan.direction, link, plan.detail), written


async def _check_total(
    ctx: SyncContext, step: CheckInvoiceTotal, answers: dict[tuple[Answer, str], str | None]
) -> None:
    if step.hubspot_invoice_id is not None:
        read = await ctx.hubspot.get("invoices", step.hubspot_invoice_id, properties=["hs_amount_billed"])
        answers[Answer.HUBSPOT_UPDATED_AT, step.label] = _version(read)
        computed = decimal(read.properties.get("hs_amount_billed"))
    else:
        computed = decimal(_resolved({"total": step.total}, answers)["total"])
    why = step.failure(computed)
    if why is not None:
        raise Failing(why, category=TOTAL_MISMATCH)


async def _write_qbo(ctx: SyncContext, step: CreateQbo | CreateQboOneOf | UpdateQbo | VoidQbo, link: Link | None) -> (
    QboEntity
):  # fmt: skip
    if isinstance(step, CreateQbo):
        return await ctx.qbo.create(step.entity, dict(step.body), request_id=_request_id(ctx, step.request_id, link))
    if isinstance(step, CreateQboOneOf):
        return await _create_one_of(ctx, step, link)
    if isinstance(step, UpdateQbo):
        return await ctx.qbo.update(step.entity, dict(step.body), request_id=step.request_id)
    return await ctx.qbo.void(step.entity, step.entity_id, step.sync_token, request_id=step.request_id)


def _request_id(ctx: SyncContext, given: str | RequestId, link: Link | None) -> str:
    return ctx.request_id(*given.parts, link=link) if isinstance(given, RequestId) else given


async def _create_one_of(ctx: SyncContext, step: CreateQboOneOf, link: Link | None) -> QboEntity:
    """The entity made from the first alternative QBO does not refuse (see `CreateQboOneOf`)."""
    refused: ApiError | None = None
    for alternative in step.alternatives:
        try:
            return await ctx.qbo.create(
                step.entity, _body(step.body, alternative), request_id=_request_id(ctx, alternative.request_id, link)
            )
        except REFUSALS[step.refusal] as exc:
            if step.looked_up and await _held(ctx, step.entity, alternative.fields):
                message = f"a {step.entity} took the name since the rule looked: it looks again"
                raise StaleObject(message, provider=Provider.QUICKBOOKS) from exc
            refused = exc
    if step.all_refused is not None:
        raise Failing(step.all_refused.message, category=step.all_refused.category) from refused
    if refused is None:
        raise ValueError("a create with no alternative")
    raise refused


async def _held(ctx: SyncContext, entity: str, fields: Mapping[str, Any]) -> bool:
    """Whether a record of name-list `entity` (inactive ones too) holds these field values."""
    where = " AND ".join(f"{name} = {qbo_quote(str(value))}" for name, value in fields.items() if value is not None)
    return bool(await ctx.qbo.query(f"SELECT * FROM {entity} WHERE Active IN (true, false) AND {where} MAXRESULTS 1"))


def _body(body: Mapping[str, Any], alternative: Alternative) -> dict[str, Any]:
    chosen = {**body, **alternative.fields}
    return {name: value for name, value in chosen.items() if value is not None}


async def _repoint(ctx: SyncContext, step: RepointLink) -> None:
    result = await ctx.store.repoint_link(ctx.name, step.kind, step.side, step.loser, step.survivor)
    if result.outcome is RepointOutcome.LOSER_DELETED:
        await ctx.store.log_activity(
            ctx.name, step.kind, Action.MERGED, link_id=result.loser.id if result.loser else None,
            detail=f"{step.side} record {step.loser} merged into {step.survivor}; its link is retired",
        )  # fmt: skip


def _version(record: HubSpotObject) -> str | None:
    return record.updated_at.isoformat() if record.updated_at else None


def _resolved(changes: Mapping[str, Any], answers: Mapping[tuple[Answer, str], str | None]) -> dict[str, Any]:
    """The changes with each `Answered` value (top level, or in a field's mapping) replaced by its answer."""

    def value(given: Any) -> Any:
        if isinstance(given, Answered):
            return answers.get((given.answer, given.label)) or given.default
        if isinstance(given, AsJson):
            return orjson.dumps(value(given.value)).decode()
        if isinstance(given, Mapping):
            return {key: value(item) for key, item in given.items()}
        return given

    return {name: value(given) for name, given in changes.items()}

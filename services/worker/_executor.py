"""Carries plans out (see `_plan`): each step in order, the store's and the APIs' answers threaded through. The only
place a plan's writes happen; it decides nothing. An error stops the plan where it is: what ran stays done, which
the plan's order makes safe (the next apply plans again from what it reads)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any, assert_never

from services.worker._plan import (
    Answer,
    Answered,
    ArchiveHubSpot,
    CreateQbo,
    LogActivity,
    Plan,
    SaveLink,
    UpdateHubSpot,
    UpdateQbo,
    VoidQbo,
)
from services.worker.rules import Outcome
from shared.connections import SyncContext
from shared.errors import NotFound


async def carry_out(ctx: SyncContext, plan: Plan) -> Outcome:
    """Run `plan`; the outcome carries the link as saved last."""
    link = plan.link
    answers: dict[Answer, str | None] = {}
    for step in plan.steps:
        if isinstance(step, SaveLink):
            link = await ctx.store.save_link(dataclasses.replace(link, **_resolved(step.changes, answers)))
        elif isinstance(step, CreateQbo | UpdateQbo | VoidQbo):
            if isinstance(step, CreateQbo):
                entity = await ctx.qbo.create(step.entity, dict(step.body), request_id=step.request_id)
                answers[Answer.QBO_ID] = str(entity["Id"])
            elif isinstance(step, UpdateQbo):
                entity = await ctx.qbo.update(step.entity, dict(step.body), request_id=step.request_id)
            else:
                entity = await ctx.qbo.void(step.entity, step.entity_id, step.sync_token, request_id=step.request_id)
            answers[Answer.QBO_SYNC_TOKEN] = str(entity["SyncToken"])
        elif isinstance(step, UpdateHubSpot):
            try:
                record = await ctx.hubspot.update(step.object_type, step.object_id, dict(step.properties))
            except NotFound:
                if not step.gone_ok:
                    raise
            else:
                answers[Answer.HUBSPOT_UPDATED_AT] = record.updated_at.isoformat() if record.updated_at else None
        elif isinstance(step, ArchiveHubSpot):
            with contextlib.suppress(NotFound):  # already archived
                await ctx.hubspot.archive(step.object_type, step.object_id)
        elif isinstance(step, LogActivity):
            await ctx.store.log_activity(
                ctx.name, link.kind, step.action, link_id=link.id, hubspot_id=link.hubspot_id, qbo_id=link.qbo_id,
                detail=step.detail,
            )  # fmt: skip
        else:
            assert_never(step)
    return Outcome(plan.action, plan.direction, link, plan.detail)


def _resolved(changes: Mapping[str, Any], answers: Mapping[Answer, str | None]) -> dict[str, Any]:
    return {
        name: (answers.get(value.answer) or value.default) if isinstance(value, Answered) else value
        for name, value in changes.items()
    }

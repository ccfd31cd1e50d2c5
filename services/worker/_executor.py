"""Carries plans out (see `_plan`): each step in order, the store's and the APIs' answers threaded through. The only
place a plan's writes happen; it decides nothing. An error stops the plan where it is: what ran stays done, which
the plan's order makes safe (the next apply plans again from what it reads)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from services.worker._plan import Answered, LogActivity, Plan, SaveLink, UpdateHubSpot, UpdateQbo, Write
from services.worker.rules import Outcome
from shared.connections import SyncContext
from shared.store import Link


async def carry_out(ctx: SyncContext, link: Link, plan: Plan) -> Outcome:
    """Run `plan` from `link` (as the planner read it); the outcome carries the link as saved last."""
    answers: dict[Write, str | None] = {}
    for step in plan.steps:
        if isinstance(step, SaveLink):
            link = await ctx.store.save_link(dataclasses.replace(link, **_resolved(step.changes, answers)))
        elif isinstance(step, UpdateQbo):
            updated = await ctx.qbo.update(step.entity, dict(step.body), request_id=step.request_id)
            answers[Write.QBO] = str(updated["SyncToken"])
        elif isinstance(step, UpdateHubSpot):
            record = await ctx.hubspot.update(step.object_type, step.object_id, dict(step.properties))
            answers[Write.HUBSPOT] = record.updated_at.isoformat() if record.updated_at else None
        elif isinstance(step, LogActivity):
            await ctx.store.log_activity(
                ctx.name, link.kind, step.action, link_id=link.id, hubspot_id=link.hubspot_id, qbo_id=link.qbo_id,
                detail=step.detail,
            )  # fmt: skip
    return Outcome(plan.action, plan.direction, link, plan.detail)


def _resolved(changes: Mapping[str, Any], answers: Mapping[Write, str | None]) -> dict[str, Any]:
    return {
        name: (answers.get(value.write) or value.default) if isinstance(value, Answered) else value
        for name, value in changes.items()
    }

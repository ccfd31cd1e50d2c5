"""Sync filters on a source record: a record left out raises `Excluded` naming the filter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.worker._fields import get_path
from services.worker.rules import Excluded
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.syncconfig import Filters


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).date().isoformat()


def check_hubspot(ctx: SyncContext, filters: Filters, record: HubSpotObject) -> None:
    after = ctx.connection.created_after(filters)
    if after is not None and (record.created_at is None or record.created_at.timestamp() < after):
        raise Excluded(f"created before {_day(after)} (filter created_after)")
    for name, wanted in filters.hubspot_properties.items():
        if (record.properties.get(name) or "") != wanted:
            raise Excluded(f"property {name} is not {wanted!r} (filter hubspot_properties)")


def check_qbo(ctx: SyncContext, filters: Filters, entity: dict[str, Any]) -> None:
    after = ctx.connection.created_after(filters)
    created = get_path(entity, "MetaData.CreateTime")
    if after is not None and (not created or datetime.fromisoformat(str(created)).timestamp() < after):
        raise Excluded(f"created before {_day(after)} (filter created_after)")
    for path, wanted in filters.qbo_fields.items():
        if str(get_path(entity, path) or "") != wanted:
            raise Excluded(f"{path} is not {wanted!r} (filter qbo_fields)")

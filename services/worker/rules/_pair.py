"""Field sync between two linked records, shared by the rules whose objects are a flat set of mapped fields
(contacts ↔ customers, products ↔ items): read both, merge three ways against the last agreed values, write only the
fields that differ, record the new agreement."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from services.worker import _fields
from services.worker._context import SyncContext
from services.worker._fields import FieldMap
from services.worker.rules import Outcome
from shared.clients import HubSpotObject, QboEntity
from shared.store import Direction, Link, LinkStatus
from shared.syncconfig import ObjectSettings


@dataclasses.dataclass(frozen=True, slots=True)
class PairSpec:
    hubspot_type: str  # CRM object type in the API path: "contacts"
    qbo_entity: str  # QBO entity name: "Customer"
    fields: tuple[FieldMap, ...]  # the default mappings


def hubspot_properties(maps: Sequence[FieldMap], *extra: str) -> list[str]:
    return sorted({m.hubspot_property for m in maps} | set(extra))


async def sync_fields(
    ctx: SyncContext,
    spec: PairSpec,
    settings: ObjectSettings,
    link: Link,
    record: HubSpotObject,
    entity: QboEntity,
    *,
    action: str = "updated",
    qbo_extra: dict[str, Any] | None = None,
) -> Outcome:
    """Bring two linked records into agreement and save the link. `link` must carry both ids."""
    if link.hubspot_id is None or link.qbo_id is None:
        raise ValueError("sync_fields needs a link with both ids")
    maps = _fields.active_maps(spec.fields, settings)
    ours = _fields.from_hubspot(maps, record.properties)
    theirs = _fields.from_qbo(maps, entity)
    if settings.direction == "two_way":
        target = _fields.merge(link.synced, ours, theirs, winner=settings.conflict_winner)
    else:
        target = ours if settings.direction == "hubspot_to_qbo" else theirs
    to_qbo = _fields.changed(target, theirs) if settings.syncs_from("hubspot") else {}
    to_hubspot = _fields.changed(target, ours) if settings.syncs_from("quickbooks") else {}

    written_token = link.qbo_written_sync_token
    qbo_version = str(entity.get("SyncToken"))
    if to_qbo or qbo_extra:
        body = {
            "Id": link.qbo_id,
            "SyncToken": entity["SyncToken"],
            "sparse": True,
            **_fields.to_qbo(maps, to_qbo, entity),
            **(qbo_extra or {}),
        }
        request_id = ctx.request_id(spec.qbo_entity, link.qbo_id, "update", str(entity["SyncToken"]))
        updated = await ctx.qbo.update(spec.qbo_entity, body, request_id=request_id)
        written_token = qbo_version = str(updated["SyncToken"])
    hubspot_version = record.updated_at.isoformat() if record.updated_at else link.hubspot_version
    if to_hubspot:
        updated_record = await ctx.hubspot.update(
            spec.hubspot_type, link.hubspot_id, _fields.to_hubspot(maps, to_hubspot)
        )
        hubspot_version = updated_record.updated_at.isoformat() if updated_record.updated_at else hubspot_version

    saved = await ctx.store.save_link(
        dataclasses.replace(
            link,
            synced=target,
            hubspot_hash=_fields.content_hash(target),
            qbo_hash=_fields.content_hash(target),
            hubspot_version=hubspot_version,
            qbo_version=qbo_version,
            qbo_written_sync_token=written_token,
            last_synced_at=ctx.clock(),
            status=LinkStatus.SYNCED,
            error_category=None,
            error_message=None,
        )
    )
    wrote = sorted(set(to_qbo) | set(to_hubspot))
    direction = (
        None
        if not (to_qbo or to_hubspot)
        else Direction.HUBSPOT_TO_QBO
        if to_qbo and not to_hubspot
        else Direction.QBO_TO_HUBSPOT
        if to_hubspot and not to_qbo
        else None
    )
    if not wrote and not qbo_extra:
        return Outcome("unchanged" if action == "updated" else action, None, saved)
    return Outcome(action, direction, saved, detail="fields: " + ", ".join(wrote) if wrote else "")

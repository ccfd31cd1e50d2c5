"""A HubSpot record hsqbo makes from a QBO record carries the QBO id in a unique property of its own. HubSpot takes
no idempotency key, so this is how a retry after a crash (between the create and saving the link) finds the record
it already made instead of making a second one: look up by the property before creating, create with it set."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from services.worker.rules import Failing
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.errors import NotFound


@dataclasses.dataclass(frozen=True, slots=True)
class OriginProperty:
    object_type: str  # "products"
    name: str  # "hsqbo_qbo_item_id"
    label: str
    group_name: str  # the object's default property group


async def made_from(
    ctx: SyncContext, origin: OriginProperty, qbo_key: str, properties: Sequence[str]
) -> HubSpotObject | None:
    """The HubSpot record already made from `qbo_key`, creating the unique property on first use (one read)."""
    definition = await ctx.hubspot.ensure_property(
        origin.object_type, origin.name, label=origin.label, group_name=origin.group_name, unique=True
    )
    if not definition.unique:
        raise Failing(f"HubSpot property {origin.name} exists but is not unique", category="configuration")
    try:
        return await ctx.hubspot.get(origin.object_type, qbo_key, properties=properties, id_property=origin.name)
    except NotFound:
        return None

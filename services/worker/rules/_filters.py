"""Sync filters on a source record: a record left out raises `Excluded` naming the filter.

`created_after` (a day, or the connection's `setup_date`) counts from 00:00 of that day in the zone of the account the
record lives in: the HubSpot portal's time zone for HubSpot records, the QBO company's for QBO records (each as that
account's users see the record's creation date). A QBO company whose zone is neither configured nor reported still
has every record created more than a day away from that midnight decided; one closer is decided in QuickBooks' clock
offset (`shared/company.py`), or failing with the `config` error saying to set `qbo_timezone` when that is unknown
too. See `_dates.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.worker._fields import get_path
from services.worker.rules import Excluded
from services.worker.rules import _dates as dates
from shared.clients import HubSpotObject
from shared.connections import SyncContext
from shared.syncconfig import Filters


async def check_hubspot(ctx: SyncContext, filters: Filters, record: HubSpotObject) -> None:
    after = ctx.connection.created_after(filters)
    if after is not None:
        zone = (await ctx.company()).hubspot_zone
        if not dates.created_on_or_after(record.created_at, after, zone):
            raise Excluded(f"created before {after.isoformat()} ({zone.key}) (filter created_after)")
    for name, wanted in filters.hubspot_properties.items():
        if (record.properties.get(name) or "") != wanted:
            raise Excluded(f"property {name} is not {wanted!r} (filter hubspot_properties)")


async def check_qbo(ctx: SyncContext, filters: Filters, entity: dict[str, Any]) -> None:
    after = ctx.connection.created_after(filters)
    if after is not None:
        created = get_path(entity, "MetaData.CreateTime")
        when = datetime.fromisoformat(str(created)) if created else None
        if when is not None and when.tzinfo is None:  # QBO always sends an offset; without one it names no instant
            when = None
        company = await ctx.company()
        passed = dates.created_on_or_after_in_any_zone(when, after) if company.qbo_zone_name is None else None
        if passed is None:  # the zone decides (or is known): the company's zone, or the error saying to set it
            zone = company.qbo_zone
            passed = dates.created_on_or_after(when, after, zone)
            where = f" ({zone})"
        else:
            where = ""
        if not passed:
            raise Excluded(f"created before {after.isoformat()}{where} (filter created_after)")
    for path, wanted in filters.qbo_fields.items():
        if str(get_path(entity, path) or "") != wanted:
            raise Excluded(f"{path} is not {wanted!r} (filter qbo_fields)")

"""What the status page's route modules share: reading a request's record and filters, showing an instant."""

from __future__ import annotations

import datetime as dt
import urllib.parse

from starlette.requests import Request

from shared.domain import Kind, PendingKey, Provider
from shared.store import Link, LinkStatus


class NotFound(Exception):
    """Answered 404 with the message (the app's exception handler)."""


def when(at: float | None) -> str:
    return "—" if at is None else dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def record_side(link: Link) -> tuple[Provider, str]:
    """The side a record is looked at and re-synced from: HubSpot's id when it has one (every rule reads both)."""
    if link.hubspot_id is not None:
        return Provider.HUBSPOT, link.hubspot_id
    return Provider.QUICKBOOKS, str(link.qbo_id)


def filters(request: Request) -> tuple[Kind | None, LinkStatus | None]:
    kind, status = request.query_params.get("kind"), request.query_params.get("status")
    try:
        return (Kind(kind) if kind else None), (LinkStatus(status) if status else None)
    except ValueError:
        raise NotFound(f"no such kind or status: {kind!r}, {status!r}") from None


def record_key(request: Request) -> tuple[Kind, Provider, str]:
    try:
        kind, side = Kind(request.path_params["kind"]), Provider(request.path_params["side"])
    except ValueError:
        raise NotFound("no such kind or side") from None
    object_id = request.path_params["object_id"]
    if "\x00" in object_id:  # no record has one, and Postgres takes no NUL in text
        raise NotFound("no such record")
    return kind, side, object_id


def record_href(key: PendingKey) -> str:
    """The page of one record."""
    quoted = [urllib.parse.quote(part, safe="") for part in (key.connection, key.kind, key.side, key.object_id)]
    return "/connections/{}/{}/{}/{}".format(*quoted)

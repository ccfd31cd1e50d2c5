"""Whether a link already shows a version of one side's record: the poller's "nothing to do" and the engine's "no
news". A QBO version is a SyncToken (it grows by one per update), a HubSpot version the record's `updatedAt`; a
version no newer than the one the link last saw (or, in QBO, than the one our own last write produced) is shown.
`GONE` is the version of a record its side no longer has."""

from __future__ import annotations

import datetime as dt

from shared.domain import Provider
from shared.store import Link

GONE = "deleted"


def link_version(link: Link | None, side: Provider) -> str | None:
    """The version of `side`'s record the link last saw."""
    if link is None:
        return None
    return link.hubspot_version if side == Provider.HUBSPOT else link.qbo_version


def link_shows(link: Link | None, side: Provider, version: str | None) -> bool:
    if link is None or version is None:
        return False
    known = [link.hubspot_version] if side == Provider.HUBSPOT else [link.qbo_version, link.qbo_written_sync_token]
    return any(seen is not None and not _newer(side, version, seen) for seen in known)


def _newer(side: Provider, version: str, than: str) -> bool:
    if version == than:
        return False
    if GONE in (version, than):
        return True  # gone, or back (a restored record): a change either way
    try:
        if side == Provider.QUICKBOOKS:
            return int(version) > int(than)
        return dt.datetime.fromisoformat(version) > dt.datetime.fromisoformat(than)
    except ValueError:
        return True  # not comparable: different is newer

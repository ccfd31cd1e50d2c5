"""Whether a link already shows a version: QBO SyncTokens compared as numbers (ours written counts), HubSpot
updatedAt as instants, a gone record as a version of its own."""

from __future__ import annotations

from shared.domain import Kind, Provider
from shared.store import Link
from shared.versions import GONE, link_shows, link_version

LINK = Link(
    connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1", qbo_id="9",
    hubspot_version="2026-01-05T10:00:00.500000+00:00", qbo_version="3", qbo_written_sync_token="5",
)  # fmt: skip


def test_a_qbo_version_no_newer_than_the_one_seen_or_written_is_shown() -> None:
    assert [link_shows(LINK, Provider.QUICKBOOKS, token) for token in ("2", "3", "4", "5", "6", "10")] == [
        True, True, True, True, False, False,
    ]  # fmt: skip


def test_a_hubspot_version_is_compared_as_an_instant() -> None:
    assert link_shows(LINK, Provider.HUBSPOT, "2026-01-05T10:00:00.500000+00:00")
    assert link_shows(LINK, Provider.HUBSPOT, "2026-01-05T09:59:59+00:00")  # a search index behind the link
    assert not link_shows(LINK, Provider.HUBSPOT, "2026-01-05T10:00:01+00:00")


def test_gone_is_a_version_of_its_own_and_nothing_is_shown_without_a_link_or_version() -> None:
    assert not link_shows(LINK, Provider.QUICKBOOKS, GONE)
    gone = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, qbo_version=GONE)
    assert link_shows(gone, Provider.QUICKBOOKS, GONE)
    assert not link_shows(gone, Provider.QUICKBOOKS, "7")  # back again
    assert not link_shows(None, Provider.QUICKBOOKS, "1")
    assert not link_shows(LINK, Provider.HUBSPOT, None)
    assert (link_version(LINK, Provider.QUICKBOOKS), link_version(None, Provider.HUBSPOT)) == ("3", None)

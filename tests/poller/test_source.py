"""What counts as a missed webhook: a change the poller found that nothing else brought."""

from __future__ import annotations

from services.poller._source import webhook_missed
from shared.envelope import Provider
from shared.store import Kind, Link

NOW = 10_000.0
GRACE = 30.0


def link(updated_at: float) -> Link:
    return Link(connection="c", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1", updated_at=updated_at)


def test_an_old_change_with_no_pending_work_and_no_link_was_missed() -> None:
    assert webhook_missed(NOW - 60, NOW, None, False, GRACE)


def test_a_change_younger_than_the_grace_may_still_have_its_webhook_coming() -> None:
    assert not webhook_missed(NOW - 10, NOW, None, False, GRACE)


def test_a_change_with_pending_work_was_brought_by_a_webhook() -> None:
    assert not webhook_missed(NOW - 60, NOW, None, True, GRACE)


def test_a_change_whose_sync_failed_after_its_webhook_is_not_missed() -> None:
    """The worker wrote the link (failing, excluded) after the change: its webhook came."""
    assert not webhook_missed(NOW - 60, NOW, link(NOW - 50), False, GRACE)
    assert webhook_missed(NOW - 60, NOW, link(NOW - 3600), False, GRACE)


def test_a_change_of_unknown_time_is_never_counted() -> None:
    assert not webhook_missed(0, NOW, None, False, GRACE)

"""What a poll does with a change it found not synced: queue it (something else brought it), wait for its webhook
(too young to tell), or count it as a missed webhook."""

from __future__ import annotations

from services.poller._source import MISSED, QUEUE, WAIT, judge
from shared.domain import Kind, Provider
from shared.store import Link

NOW = 10_000.0
GRACE = 30.0


def link(updated_at: float) -> Link:
    return Link(connection="c", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1", updated_at=updated_at)


def test_an_old_change_with_no_pending_work_and_no_link_was_missed() -> None:
    assert judge(NOW - 60, NOW, None, False, GRACE) == MISSED


def test_a_change_younger_than_the_grace_waits_for_its_webhook() -> None:
    assert judge(NOW - 10, NOW, None, False, GRACE) == WAIT


def test_a_change_with_pending_work_was_brought_by_a_webhook_and_is_queued() -> None:
    assert judge(NOW - 60, NOW, None, True, GRACE) == QUEUE
    assert judge(NOW - 10, NOW, None, True, GRACE) == QUEUE


def test_a_change_whose_sync_failed_after_its_webhook_is_queued_not_missed() -> None:
    """The worker wrote the link (failing, excluded) after the change: its webhook came."""
    assert judge(NOW - 60, NOW, link(NOW - 50), False, GRACE) == QUEUE
    assert judge(NOW - 60, NOW, link(NOW - 3600), False, GRACE) == MISSED


def test_a_change_of_unknown_time_is_queued_and_never_counted() -> None:
    assert judge(0, NOW, None, False, GRACE) == QUEUE


def test_without_a_grace_nothing_waits() -> None:
    assert judge(NOW - 1, NOW, None, False, 0.0) == MISSED

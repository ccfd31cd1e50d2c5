"""Our QBO writes' answers serve the read of their echo (once) and of a current counterpart; nothing else."""

from __future__ import annotations

from shared.clients import OurWrites

WRITTEN = {"Id": "58", "SyncToken": "3", "MetaData": {"LastUpdatedTime": "2026-12-07T04:00:10-08:00"}}
SECOND = 1_796_644_810_000  # that LastUpdatedTime, epoch ms


def remembered() -> OurWrites:
    ours = OurWrites()
    ours.remember("Customer", WRITTEN)
    return ours


def test_the_echo_of_our_write_is_answered_once_from_the_write() -> None:
    ours = remembered()
    with OurWrites.changed("Customer", "58", SECOND + 640, written_sync_token="3"):
        assert ours.echo("Customer", "58") == WRITTEN
        assert ours.echo("Customer", "58") is None  # a same-second edit coalesced with it: read
    assert ours.echo("Customer", "58") is None  # no change being applied


def test_a_later_change_another_record_or_an_unknown_time_is_read() -> None:
    ours = remembered()
    with OurWrites.changed("Customer", "58", SECOND + 1000, written_sync_token="3"):
        assert ours.echo("Customer", "58") is None
    with OurWrites.changed("Item", "58", SECOND, written_sync_token="3"):
        assert ours.echo("Item", "58") is None
    with OurWrites.changed("Customer", "58", None, written_sync_token="3"):
        assert ours.echo("Customer", "58") is None


def test_our_write_serves_no_echo_once_the_link_records_a_later_write_of_another_process() -> None:
    ours = remembered()  # this process wrote SyncToken 3; another one wrote 4 in the same second since
    with OurWrites.changed("Customer", "58", SECOND + 640, written_sync_token="4"):
        assert ours.echo("Customer", "58") is None
    with OurWrites.changed("Customer", "58", SECOND + 640, written_sync_token=None):  # no link, or none recorded
        assert ours.echo("Customer", "58") is None


def test_a_counterpart_is_answered_while_its_link_shows_our_writes_sync_token() -> None:
    ours = remembered()
    with OurWrites.counterpart("Customer", "58", "3"):
        assert ours.echo("Customer", "58") == WRITTEN
        assert ours.echo("Customer", "58") == WRITTEN  # not spent: QBO's 5010 guards it
    with OurWrites.counterpart("Customer", "58", "2"):
        assert ours.echo("Customer", "58") is None
    ours.forget("Customer", "58")  # QBO refused an update as stale
    with OurWrites.counterpart("Customer", "58", "3"):
        assert ours.echo("Customer", "58") is None


def test_a_delete_forgets_the_record() -> None:
    ours = remembered()
    ours.remember("Customer", {"Id": "58", "status": "Deleted"})
    with OurWrites.counterpart("Customer", "58", "3"):
        assert ours.echo("Customer", "58") is None


def test_an_apply_run_inside_another_knows_nothing_of_the_outer_ones_record() -> None:
    ours = remembered()
    with OurWrites.counterpart("Customer", "58", "3"):
        with OurWrites.changed("customer", "1", None, written_sync_token="3"):
            assert ours.echo("Customer", "58") is None
        with OurWrites.changed("Customer", "59", SECOND, written_sync_token="3"):
            assert ours.echo("Customer", "58") is None
        assert ours.echo("Customer", "58") == WRITTEN


def test_a_read_serves_a_current_counterpart_but_never_an_echo() -> None:
    ours = OurWrites()
    ours.saw("Customer", WRITTEN)  # read, never written by us: synced from QBO
    with OurWrites.counterpart("Customer", "58", "3"):
        assert ours.echo("Customer", "58") == WRITTEN
    with OurWrites.counterpart("Customer", "58", "2"):
        assert ours.echo("Customer", "58") is None
    with OurWrites.changed("Customer", "58", SECOND, written_sync_token="3"):
        assert ours.echo("Customer", "58") is None  # only our write's answer tells our echo


def test_a_newer_read_replaces_our_writes_answer() -> None:
    ours = remembered()
    edited = {**WRITTEN, "SyncToken": "4"}
    ours.saw("Customer", edited)  # changed in QBO since our write
    with OurWrites.changed("Customer", "58", SECOND, written_sync_token="3"):
        assert ours.echo("Customer", "58") is None
    with OurWrites.counterpart("Customer", "58", "4"):
        assert ours.echo("Customer", "58") == edited


def test_a_read_by_the_records_own_apply_spends_our_writes_echo_whichever_answer_came_first() -> None:
    for order in ("read first", "write first"):
        ours = OurWrites()
        # the echo's apply (here with another change) reads
        with OurWrites.changed("Customer", "58", None, written_sync_token="3"):
            if order == "read first":  # while our write's answer was on its way
                ours.saw("Customer", WRITTEN)
                ours.remember("Customer", WRITTEN)
            else:
                ours.remember("Customer", WRITTEN)
                ours.saw("Customer", WRITTEN)
        # an edit in the same second, after the echo
        with OurWrites.changed("Customer", "58", SECOND + 900, written_sync_token="3"):
            assert ours.echo("Customer", "58") is None, order
        with OurWrites.counterpart("Customer", "58", "3"):
            assert ours.echo("Customer", "58") == WRITTEN, order


def test_another_read_of_what_our_write_made_leaves_its_echo() -> None:
    for order in ("read first", "write first"):
        ours = OurWrites()
        # a HubSpot-side apply reads our create back
        with OurWrites.changed("Customer", None, None, written_sync_token=None):
            if order == "read first":
                ours.saw("Customer", WRITTEN)
                ours.remember("Customer", WRITTEN)
            else:
                ours.remember("Customer", WRITTEN)
                ours.saw("Customer", WRITTEN)
        with OurWrites.changed("Customer", "58", SECOND, written_sync_token="3"):
            assert ours.echo("Customer", "58") == WRITTEN, order

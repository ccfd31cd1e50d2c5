from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from shared.domain import Kind, Provider
from shared.store import Candidate, DuplicateLink, Link, LinkStatus, RepointOutcome, ReviewDecision, StaleLink, Store
from tests.store.conftest import FakeClock, contact_link


async def test_save_link_inserts_with_id_first_revision_and_clock_time(store: Store, clock: FakeClock) -> None:
    saved = await store.save_link(contact_link())

    assert saved.id is not None
    assert saved.revision == 1
    assert saved.updated_at == clock.now
    assert saved == dataclasses.replace(contact_link(), id=saved.id, revision=1, updated_at=clock.now)


async def test_get_link_finds_by_either_id_within_connection_and_kind(store: Store) -> None:
    saved = await store.save_link(contact_link())

    assert await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-1") == saved
    assert await store.get_link("acme", Kind.CONTACT, qbo_id="qb-1") == saved
    assert await store.get_link("acme", Kind.PRODUCT, hubspot_id="hs-1") is None
    assert await store.get_link("other", Kind.CONTACT, qbo_id="qb-1") is None


async def test_get_link_takes_exactly_one_id(store: Store) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await store.get_link("acme", Kind.CONTACT)
    with pytest.raises(ValueError, match="exactly one"):
        await store.get_link("acme", Kind.CONTACT, hubspot_id="1", qbo_id="2")


async def test_save_link_updates_every_field_and_bumps_revision(store: Store, clock: FakeClock) -> None:
    saved = await store.save_link(contact_link(qbo_id=None))
    clock.now += 5
    changed = dataclasses.replace(
        saved,
        qbo_id="qb-9",
        hubspot_version="2026-01-01T00:00:00Z",
        qbo_version="3",
        hubspot_hash="h1",
        qbo_hash="q1",
        qbo_written_sync_token="3",
        last_synced_at=clock.now,
        status=LinkStatus.FAILING,
        error_category="validation",
        error_message="bad email",
    )

    updated = await store.save_link(changed)

    assert updated == dataclasses.replace(changed, revision=2, updated_at=clock.now)
    assert await store.get_link("acme", Kind.CONTACT, qbo_id="qb-9") == updated


async def test_save_link_refuses_a_link_changed_since_it_was_read(store: Store) -> None:
    first_read = await store.save_link(contact_link())
    await store.save_link(dataclasses.replace(first_read, hubspot_hash="from another worker"))

    with pytest.raises(StaleLink):
        await store.save_link(dataclasses.replace(first_read, qbo_hash="lost update"))

    stored = await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-1")
    assert stored is not None
    assert (stored.hubspot_hash, stored.qbo_hash) == ("from another worker", None)


async def test_save_link_of_an_unknown_id_is_stale(store: Store) -> None:
    with pytest.raises(StaleLink):
        await store.save_link(dataclasses.replace(contact_link(), id=999, revision=1))


@pytest.mark.parametrize(("hubspot_id", "qbo_id"), [("hs-1", "qb-2"), ("hs-2", "qb-1")])
async def test_one_link_per_id_on_each_side(store: Store, hubspot_id: str, qbo_id: str) -> None:
    await store.save_link(contact_link())

    with pytest.raises(DuplicateLink):
        await store.save_link(contact_link(hubspot_id=hubspot_id, qbo_id=qbo_id))


async def test_update_onto_an_id_held_by_another_link_is_a_duplicate(store: Store) -> None:
    await store.save_link(contact_link())
    second = await store.save_link(contact_link(hubspot_id="hs-2", qbo_id="qb-2"))

    with pytest.raises(DuplicateLink):
        await store.save_link(dataclasses.replace(second, qbo_id="qb-1"))


async def test_same_ids_are_free_in_another_kind_or_connection(store: Store) -> None:
    await store.save_link(contact_link())
    await store.save_link(contact_link(connection="other"))
    await store.save_link(dataclasses.replace(contact_link(), kind=Kind.PRODUCT))

    assert len(await store.list_links()) == 3


async def test_many_links_may_await_their_other_side(store: Store) -> None:
    await store.save_link(contact_link(hubspot_id="hs-1", qbo_id=None))
    await store.save_link(contact_link(hubspot_id="hs-2", qbo_id=None))
    await store.save_link(contact_link(hubspot_id=None, qbo_id="qb-3"))
    await store.save_link(contact_link(hubspot_id=None, qbo_id="qb-4"))

    assert len(await store.list_links(connection="acme")) == 4


async def test_creates_in_doubt_are_the_links_keeping_a_qbo_create_intent_of_that_hash(store: Store) -> None:
    def intent(hubspot_id: str, qbo_hash: str, **fields: Any) -> Link:
        return dataclasses.replace(contact_link(hubspot_id=hubspot_id, qbo_id=None), qbo_hash=qbo_hash, **fields)

    first = await store.save_link(intent("hs-1", "h"))
    second = await store.save_link(intent("hs-2", "h"))
    await store.save_link(intent("hs-3", "other"))
    await store.save_link(intent("hs-4", "h", status=LinkStatus.FAILING))  # its failure recorded: not in doubt
    await store.save_link(intent("hs-5", "h", qbo_id="qb-5"))  # made, its id saved
    await store.save_link(dataclasses.replace(intent("hs-6", "h"), kind=Kind.PRODUCT))

    assert await store.creates_in_doubt("acme", Kind.CONTACT, "h") == [first, second]
    assert await store.creates_in_doubt("other", Kind.CONTACT, "h") == []


async def test_set_status_records_the_error_and_a_later_status_clears_it(store: Store) -> None:
    saved = await store.save_link(contact_link())
    assert saved.id is not None

    failing = await store.set_status(saved.id, LinkStatus.FAILING, "rate_limited", "429 from QBO")
    assert (failing.status, failing.error_category, failing.error_message) == (
        LinkStatus.FAILING,
        "rate_limited",
        "429 from QBO",
    )
    assert failing.revision == saved.revision + 1

    synced = await store.set_status(saved.id, LinkStatus.SYNCED)
    assert (synced.status, synced.error_category, synced.error_message) == (LinkStatus.SYNCED, None, None)


async def test_set_status_of_a_missing_link_raises(store: Store) -> None:
    with pytest.raises(StaleLink):
        await store.set_status(42, LinkStatus.EXCLUDED)


async def test_set_version_records_the_version_seen_on_one_side_and_keeps_the_revision(store: Store) -> None:
    saved = await store.save_link(contact_link())
    assert saved.id is not None

    seen = await store.set_version(saved.id, Provider.QUICKBOOKS, "7")
    assert (seen.qbo_version, seen.hubspot_version, seen.revision) == ("7", saved.hubspot_version, saved.revision)
    seen = await store.set_version(saved.id, Provider.HUBSPOT, "2026-01-05T10:00:00+00:00")
    assert (seen.qbo_version, seen.hubspot_version) == ("7", "2026-01-05T10:00:00+00:00")
    with pytest.raises(StaleLink):
        await store.set_version(42, Provider.HUBSPOT, "x")


async def test_repoint_without_a_link_on_the_loser_does_nothing(store: Store) -> None:
    survivor = await store.save_link(contact_link(hubspot_id="hs-2"))

    result = await store.repoint_link("acme", Kind.CONTACT, Provider.HUBSPOT, "hs-1", "hs-2")

    assert (result.outcome, result.survivor, result.loser) == (RepointOutcome.NOT_LINKED, survivor, None)


async def test_repoint_moves_the_losers_link_to_the_survivor_and_forgets_that_sides_state(store: Store) -> None:
    loser = await store.save_link(
        dataclasses.replace(contact_link(), hubspot_version="v1", hubspot_hash="h1", qbo_version="7", qbo_hash="q1")
    )

    result = await store.repoint_link("acme", Kind.CONTACT, Provider.HUBSPOT, "hs-1", "hs-2")

    assert result.outcome is RepointOutcome.REPOINTED
    assert result.survivor == result.loser
    assert result.survivor == await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-2")
    assert result.survivor is not None
    assert result.survivor.id == loser.id
    assert (result.survivor.hubspot_version, result.survivor.hubspot_hash) == (None, None)
    assert (result.survivor.qbo_id, result.survivor.qbo_version, result.survivor.qbo_hash) == ("qb-1", "7", "q1")
    assert await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-1") is None


async def test_repoint_on_the_quickbooks_side_forgets_the_written_sync_token(store: Store) -> None:
    await store.save_link(dataclasses.replace(contact_link(), qbo_version="4", qbo_written_sync_token="4"))

    result = await store.repoint_link("acme", Kind.CONTACT, Provider.QUICKBOOKS, "qb-1", "qb-2")

    assert result.outcome is RepointOutcome.REPOINTED
    assert result.survivor is not None
    assert (result.survivor.qbo_id, result.survivor.qbo_version, result.survivor.qbo_written_sync_token) == (
        "qb-2",
        None,
        None,
    )
    assert result.survivor.hubspot_id == "hs-1"


async def test_repoint_onto_a_linked_survivor_marks_the_losers_link_deleted(store: Store) -> None:
    loser = await store.save_link(contact_link(hubspot_id="hs-1", qbo_id="qb-1"))
    survivor = await store.save_link(contact_link(hubspot_id="hs-2", qbo_id="qb-2"))

    result = await store.repoint_link("acme", Kind.CONTACT, Provider.HUBSPOT, "hs-1", "hs-2")

    assert result.outcome is RepointOutcome.LOSER_DELETED
    assert result.survivor == survivor
    assert result.loser is not None
    assert (result.loser.id, result.loser.status, result.loser.qbo_id) == (loser.id, LinkStatus.DELETED, "qb-1")
    assert await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-2") == survivor


async def test_repoint_onto_itself_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="onto itself"):
        await store.repoint_link("acme", Kind.CONTACT, Provider.HUBSPOT, "hs-1", "hs-1")


async def test_list_links_filters_and_pages_in_id_order(store: Store) -> None:
    links: list[Link] = []
    for number in range(5):
        links.append(await store.save_link(contact_link(hubspot_id=f"hs-{number}", qbo_id=f"qb-{number}")))
    await store.save_link(contact_link(connection="other"))
    assert links[1].id is not None
    failing = await store.set_status(links[1].id, LinkStatus.FAILING, "x", "y")

    assert await store.list_links(connection="acme", limit=2, offset=1) == [failing, links[2]]
    assert await store.list_links(status=LinkStatus.FAILING) == [failing]
    assert await store.list_links(connection="acme", kind=Kind.PRODUCT) == []
    assert len(await store.list_links()) == 6


async def test_count_links_by_status_groups_by_kind_and_status(store: Store) -> None:
    first = await store.save_link(contact_link(hubspot_id="hs-1", qbo_id="qb-1"))
    await store.save_link(contact_link(hubspot_id="hs-2", qbo_id="qb-2"))
    await store.save_link(dataclasses.replace(contact_link(), kind=Kind.PRODUCT))
    await store.save_link(contact_link(connection="other"))
    assert first.id is not None
    await store.set_status(first.id, LinkStatus.EXCLUDED)

    assert await store.count_links_by_status("acme") == {
        (Kind.CONTACT, LinkStatus.SYNCED): 1,
        (Kind.CONTACT, LinkStatus.EXCLUDED): 1,
        (Kind.PRODUCT, LinkStatus.SYNCED): 1,
    }


async def test_the_agreed_field_values_round_trip(store: Store) -> None:
    synced = {"email": "jane@example.com", "phone": None}
    saved = await store.save_link(dataclasses.replace(contact_link(), synced=synced))
    again = await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-1")
    assert saved.synced == synced
    assert again is not None
    assert again.synced == synced


async def test_a_link_needing_review_keeps_its_candidates_and_the_decision(store: Store) -> None:
    saved = await store.save_link(
        dataclasses.replace(
            contact_link(qbo_id=None),
            status=LinkStatus.NEEDS_REVIEW,
            candidates=(Candidate("58", "Acme <books@example.com>"), Candidate("59", "Beta, inactive")),
        )
    )
    read = await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-1")
    assert read == saved == await store.get_link_by_id(saved.id or 0)
    assert await store.get_link_by_id((saved.id or 0) + 1) is None
    assert read is not None
    assert read.candidates[1] == Candidate("59", "Beta, inactive")
    assert [link.id for link in await store.list_links("acme", status=LinkStatus.NEEDS_REVIEW)] == [saved.id]
    decided = await store.save_link(dataclasses.replace(saved, review_decision=ReviewDecision.PICK, review_pick="58"))
    assert (decided.review_decision, decided.review_pick) == (ReviewDecision.PICK, "58")
    assert (await store.set_status(saved.id or 0, LinkStatus.EXCLUDED, "operator", "x")).review_pick == "58"
    assert await store.count_links_by_status("acme") == {(Kind.CONTACT, LinkStatus.EXCLUDED): 1}

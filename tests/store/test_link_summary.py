"""What a person recognises a record by: `set_summary`, and `list_links` searching names and sorted by last change."""

from __future__ import annotations

import dataclasses

from shared.domain import Kind
from shared.store import LinkStatus, Store
from tests.store.conftest import FakeClock, contact_link


async def test_set_summary_keeps_label_and_summary_and_moves_neither_revision_nor_last_change(
    store: Store, clock: FakeClock
) -> None:
    saved = await store.save_link(contact_link())
    assert (saved.label, saved.summary) == ("", {})
    clock.now += 5
    summary = {"hubspot": {"name": "Jane Doe", "email": "jane@example.com"}, "changed": {"phone": [None, "555"]}}
    await store.set_summary(saved.id or 0, "Jane Doe · jane@example.com", summary)

    read = await store.get_link("acme", Kind.CONTACT, hubspot_id="hs-1")
    assert read is not None
    assert (read.label, read.summary, read.revision, read.updated_at) == (
        "Jane Doe · jane@example.com", summary, saved.revision, saved.updated_at
    )  # fmt: skip


async def test_save_link_leaves_the_summary_as_it_is(store: Store) -> None:
    saved = await store.save_link(contact_link())
    await store.set_summary(saved.id or 0, "Jane Doe", {"hubspot": {"name": "Jane Doe"}})
    # A rule saving the link it read before the summary was written does not undo it.
    resaved = await store.save_link(dataclasses.replace(saved, status=LinkStatus.FAILING))
    assert (resaved.label, resaved.summary) == ("Jane Doe", {"hubspot": {"name": "Jane Doe"}})


async def test_search_finds_a_label_in_any_case_or_either_id_and_takes_wildcards_literally(store: Store) -> None:
    jane = await store.save_link(contact_link(hubspot_id="hs-1", qbo_id="qb-1"))
    elodie = await store.save_link(contact_link(hubspot_id="hs-2", qbo_id="qb-2"))
    percent = await store.save_link(contact_link(hubspot_id="hs-3", qbo_id="qb-3"))
    await store.set_summary(jane.id or 0, "Jane Doe · jane@example.com", {})
    await store.set_summary(elodie.id or 0, "Élodie Ünal · e@example.com", {})
    await store.set_summary(percent.id or 0, "100% Cotton_Ltd", {})

    async def found(search: str) -> list[str | None]:
        return [link.hubspot_id for link in await store.list_links("acme", search=search)]

    assert await found("JANE") == ["hs-1"]
    assert await found("élodie") == ["hs-2"]
    assert await found("ÜNAL") == ["hs-2"]
    assert await found("example.com") == ["hs-1", "hs-2"]
    assert await found("qb-3") == ["hs-3"]
    assert await found("hs-2") == ["hs-2"]
    assert await found("%") == ["hs-3"]
    assert await found("n_L") == ["hs-3"]
    assert await found("o_l") == []  # "_" is no wildcard
    assert await found("nobody") == []


async def test_recent_lists_the_last_changed_first(store: Store, clock: FakeClock) -> None:
    first = await store.save_link(contact_link(hubspot_id="hs-1", qbo_id="qb-1"))
    clock.now += 1
    await store.save_link(contact_link(hubspot_id="hs-2", qbo_id="qb-2"))
    clock.now += 1
    await store.set_status(first.id or 0, LinkStatus.FAILING, "duplicate_name", "taken")

    assert [link.hubspot_id for link in await store.list_links("acme", recent=True)] == ["hs-1", "hs-2"]
    assert [link.hubspot_id for link in await store.list_links("acme")] == ["hs-1", "hs-2"]  # by id
    assert [link.hubspot_id for link in await store.list_links("acme", recent=True, limit=1, offset=1)] == ["hs-2"]

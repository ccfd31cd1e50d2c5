"""`hsqbo review`: listing and showing records needing review, and the checks on a decision (one line per problem,
non-zero exit). Resolving end to end (the worker applying the decision): tests/integration/test_contacts.py."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import orjson
import pytest

from services.cli import main
from services.review._cli import decided, problems
from shared.domain import Kind, Provider
from shared.store import Candidate, Link, LinkStatus, ReviewDecision, open_store

CANDIDATES = (Candidate("58", "Alpha Bakery <books@keeper.test>"), Candidate("59", "Beta Garage, inactive"))


def needing_review(**changes: object) -> Link:
    link = Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="512",
                status=LinkStatus.NEEDS_REVIEW, error_category="needs_review",
                error_message="books@keeper.test matches 2 QuickBooks customers: resolve with hsqbo review",
                candidates=CANDIDATES)  # fmt: skip
    return dataclasses.replace(link, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store_with_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("HSQBO_STORE_URL", url)

    async def save() -> list[int]:
        async with open_store(url) as store:
            review = await store.save_link(needing_review())
            product = await store.save_link(needing_review(kind=Kind.PRODUCT, hubspot_id=None, qbo_id="7",
                                                           origin=Provider.QUICKBOOKS, candidates=()))  # fmt: skip
            synced = await store.save_link(needing_review(hubspot_id="600", qbo_id="60", status=LinkStatus.SYNCED))
            return [review.id or 0, product.id or 0, synced.id or 0]

    return asyncio.run(save())


def test_list_shows_each_record_with_its_candidates_and_reason(
    store_with_links: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "list"]) == 0
    header, contact, product = capsys.readouterr().out.splitlines()
    assert header.split()[:6] == ["ID", "CONNECTION", "KIND", "SIDE", "RECORD", "CANDIDATES"]
    assert contact.split()[:6] == [str(store_with_links[0]), "acme", "contact", "hubspot", "512", "58,"]
    assert "matches 2 QuickBooks customers" in contact
    assert product.split()[2:6] == ["product", "quickbooks", "7", "-"]


def test_list_filters_by_kind_and_connection(store_with_links: list[int], capsys: pytest.CaptureFixture[str]) -> None:
    main(["review", "list", "--kind", "product", "--json"])
    [line] = capsys.readouterr().out.splitlines()
    assert orjson.loads(line)["record"] == "7"
    main(["review", "list", "--connection", "other"])
    assert capsys.readouterr().out == ""


def test_show_lists_the_candidates_and_how_to_resolve(
    store_with_links: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["review", "show", str(store_with_links[0])])
    out = capsys.readouterr().out
    assert "58        Alpha Bakery <books@keeper.test>" in out
    assert "on QuickBooks" in out
    assert f"hsqbo review resolve {store_with_links[0]} --pick ID | --create-new | --exclude" in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["review", "list", "--kind", "lead"], "unknown kind 'lead'"),
        (["review", "show", "9999"], "no record 9999"),
        (["review", "resolve", "9999", "--exclude"], "no record 9999"),
        (["review", "resolve", "abc", "--create-new"], "no record abc"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(store_with_links: list[int], argv: list[str], complaint: str) -> (
    None
):  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert str(exited.value.code).startswith(f"hsqbo review {argv[1]}: {complaint}")
    assert "\n" not in str(exited.value.code)


def test_a_pick_outside_the_candidates_of_a_synced_record_names_both_problems(store_with_links: list[int]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["review", "resolve", str(store_with_links[2]), "--pick", "61"])
    lines = str(exited.value.code).splitlines()
    assert len(lines) == 3
    assert "does not need review (status synced)" in lines[0]
    assert "is already linked" in lines[1]
    assert "61 is not a candidate" in lines[2]


def test_resolve_needs_exactly_one_decision() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["review", "resolve", "1", "--exclude", "--create-new"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["review", "resolve", "1"])


def test_problems_accept_a_candidate_and_a_new_decision_for_a_failed_pick() -> None:
    assert problems(needing_review(), "1", "59") == []
    assert problems(needing_review(), "1", None) == []
    failed = needing_review(status=LinkStatus.FAILING, review_decision=ReviewDecision.PICK, review_pick="58")
    assert problems(failed, "1", None) == []


def test_the_decision_is_recorded_on_the_link() -> None:
    picked = decided(needing_review(), ReviewDecision.PICK, "58")
    assert (picked.review_decision, picked.review_pick) == (ReviewDecision.PICK, "58")
    assert decided(picked, ReviewDecision.EXCLUDE, None).review_pick is None

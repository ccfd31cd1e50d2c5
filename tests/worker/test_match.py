"""Matching never guesses (`_match.decide`): one free match links, none creates, anything else needs review."""

from __future__ import annotations

import pytest

from services.worker.rules import Excluded
from services.worker.rules._match import Create, Found, LinkTo, Review, decide, resolved
from shared.domain import Kind, Provider
from shared.store import Candidate, Link, LinkStatus, ReviewDecision

SIDE = "QuickBooks customers"


def test_nothing_found_creates() -> None:
    assert decide("c1", "jane@example.com", [], other_side=SIDE) == Create()


def test_one_free_match_links() -> None:
    assert decide("c1", "jane@example.com", [Found("58", "Jane")], other_side=SIDE) == LinkTo("58")


def test_a_match_already_linked_to_this_record_links() -> None:
    assert decide("c1", "e", [Found("58", "Jane", linked_to="c1")], other_side=SIDE) == LinkTo("58")


def test_a_shared_email_needs_review_listing_every_candidate() -> None:
    found = [Found("58", "Acme <books@example.com>"), Found("59", "Beta <books@example.com>, inactive")]
    decided = decide("c1", "books@example.com", found, other_side=SIDE)
    assert isinstance(decided, Review)
    assert decided.candidates == (Candidate("58", "Acme <books@example.com>"),
                                  Candidate("59", "Beta <books@example.com>, inactive"))  # fmt: skip
    assert "matches 2 QuickBooks customers" in decided.reason


def test_a_match_linked_to_another_record_needs_review() -> None:
    decided = decide("c1", "e", [Found("58", "Jane", linked_to="c9")], other_side=SIDE)
    assert isinstance(decided, Review)
    assert decided.candidates == (Candidate("58", "Jane, linked to c9"),)


def test_a_key_shared_on_this_side_needs_review_even_with_one_match_or_none() -> None:
    assert isinstance(decide("q1", "e", [Found("7", "Jane")], sharing=["q1", "q2"], other_side=SIDE), Review)
    assert isinstance(decide("q1", "e", [], sharing=["q1", "q2"], other_side=SIDE), Review)
    assert decide("q1", "e", [], sharing=["q1"], other_side=SIDE) == Create()


def test_a_record_under_review_stays_so_with_its_candidates_refreshed() -> None:
    decided = decide("c1", "e", [Found("58", "Jane")], other_side=SIDE, under_review=True)
    assert isinstance(decided, Review)
    assert decided.candidates == (Candidate("58", "Jane"),)
    assert isinstance(decide("c1", "e", [], other_side=SIDE, under_review=True), Review)


def _link(decision: ReviewDecision | None) -> Link:
    return Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1",
                status=LinkStatus.NEEDS_REVIEW, review_decision=decision)  # fmt: skip


def test_an_operators_decision_is_read_back_and_exclude_excludes() -> None:
    assert resolved(None) is None
    assert resolved(_link(None)) is None
    assert resolved(_link(ReviewDecision.CREATE_NEW)) == ReviewDecision.CREATE_NEW
    with pytest.raises(Excluded, match="excluded by an operator"):
        resolved(_link(ReviewDecision.EXCLUDE))

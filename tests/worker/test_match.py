"""Matching never guesses (`_match.decide`): one free match links, none creates, anything else needs review, which
is recorded by one link save (`plan_review`)."""

from __future__ import annotations

import dataclasses

import pytest

from services.worker._plan import SaveLink
from services.worker.rules import Excluded
from services.worker.rules._match import Create, Found, LinkTo, Review, decide, plan_review, resolved
from shared.domain import Action, Direction, Kind, Provider
from shared.store import Candidate, Link, LinkStatus, ReviewDecision, StaleLink

SIDE = "QuickBooks customers"


def test_nothing_found_creates() -> None:
    assert decide("c1", "jane@example.com", [], other_side=SIDE) == Create()


def test_one_free_match_links() -> None:
    assert decide("c1", "jane@example.com", [Found("58", "Jane")], other_side=SIDE) == LinkTo("58")


def test_a_match_linked_to_this_record_meanwhile_runs_the_record_again_on_its_link() -> None:
    with pytest.raises(StaleLink):  # another apply linked the pair since this one looked: not linked twice
        decide("c1", "e", [Found("58", "Jane", linked_to="c1")], other_side=SIDE)


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


def test_a_review_is_recorded_by_one_link_save_keeping_the_other_sides_version() -> None:
    review = Review((Candidate("58", "Jane"), Candidate("59", "Jane B")), "e matches 2 QuickBooks customers")
    plan = plan_review("acme", Kind.CONTACT, None, Provider.HUBSPOT, "1", review, "2026-12-01T12:00:00+00:00")
    assert plan.link == Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id="1")
    assert plan.steps == (
        SaveLink({
            "status": LinkStatus.NEEDS_REVIEW, "error_category": "needs_review",
            "error_message": "e matches 2 QuickBooks customers: resolve with hsqbo review",
            "candidates": review.candidates, "review_decision": None, "review_pick": None,
            "hubspot_version": "2026-12-01T12:00:00+00:00", "qbo_version": None,
        }),
    )  # fmt: skip
    assert (plan.action, plan.direction) == (Action.NEEDS_REVIEW, Direction.HUBSPOT_TO_QBO)
    assert plan.detail == "e matches 2 QuickBooks customers; candidates: 58 (Jane), 59 (Jane B)"
    decided = _link(ReviewDecision.PICK)
    again = plan_review("acme", Kind.CONTACT, dataclasses.replace(decided, qbo_version="7"), Provider.HUBSPOT, "1",
                        review, "v2")  # fmt: skip
    assert again.steps[0] == SaveLink({**plan.steps[0].changes, "hubspot_version": "v2", "qbo_version": "7"})

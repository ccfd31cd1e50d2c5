"""The first sync's plan as a value: counts, decisions that fit or not, the mirrored link dropped, its file format,
what stops a confirmation, and the progress arithmetic."""

from __future__ import annotations

import pytest

from services.poller._plan import (
    Action,
    Entry,
    Plan,
    PlanError,
    Progress,
    confirmable,
    duration,
    from_json,
    progress_line,
    report,
    resolve,
    to_json,
    without_mirrored_links,
)
from shared.domain import Kind, Provider
from shared.store import Candidate, ReviewDecision

HUBSPOT, QBO = Provider.HUBSPOT, Provider.QUICKBOOKS


def entry(action: Action, record_id: str = "7", side: Provider = HUBSPOT, **fields: object) -> Entry:
    return Entry(kind=Kind.CONTACT, side=side, id=record_id, object_type="contact", label=f"record {record_id}",
                 action=action, **fields)  # type: ignore[arg-type]  # fmt: skip


REVIEW = entry(Action.REVIEW, "8", candidates=(Candidate("2", "Bob 1"), Candidate("3", "Bob 2")), reason="shared")
PLAN = Plan(
    connection="acme", planned_at=1000.0, since=None, in_sync=4,
    entries=(entry(Action.LINK, "7", matched=Candidate("1", "Ann")), entry(Action.CREATE, "9"), REVIEW,
             entry(Action.EXCLUDE, "5", side=QBO, reason="no SKU")),
)  # fmt: skip


def test_the_plan_counts_each_action_per_object() -> None:
    counts = PLAN.counts()[Kind.CONTACT]
    assert counts == {Action.LINK: 1, Action.CREATE: 1, Action.UPDATE: 0, Action.EXCLUDE: 1, Action.FAILING: 0,
                      Action.REVIEW: 1}  # fmt: skip


def test_a_plan_with_an_undecided_review_cannot_be_confirmed_until_it_is_decided() -> None:
    assert confirmable(PLAN) == ["contact/hubspot/8 (record 8) needs a decision: shared"]
    decided = resolve(PLAN, "contact/hubspot/8", ReviewDecision.PICK, "3")
    assert confirmable(decided) == []
    assert (decided.entry("contact/hubspot/8").decision, decided.entry("contact/hubspot/8").pick) == (
        ReviewDecision.PICK, "3"
    )  # fmt: skip
    excluded = resolve(decided, "contact/hubspot/8", ReviewDecision.EXCLUDE, "3")
    assert excluded.entry("contact/hubspot/8").pick is None  # a pick only goes with the decision pick


@pytest.mark.parametrize(
    ("key", "decision", "pick", "error"),
    [
        (
            "contact/hubspot/8",
            ReviewDecision.PICK,
            "99",
            "99 is not a candidate of contact/hubspot/8 (candidates: 2, 3)",
        ),
        ("contact/hubspot/8", ReviewDecision.PICK, None, "None is not a candidate"),
        ("contact/hubspot/7", ReviewDecision.CREATE_NEW, None, "contact/hubspot/7 does not need review (it will link)"),
        ("contact/hubspot/1", ReviewDecision.EXCLUDE, None, "no record contact/hubspot/1 in the plan"),
    ],
)
def test_a_decision_that_does_not_fit_is_refused(key: str, decision: ReviewDecision, pick: str | None, error: str) -> (
    None
):  # fmt: skip
    with pytest.raises(PlanError, match=error.replace("(", r"\(").replace(")", r"\)")):
        resolve(PLAN, key, decision, pick)


def test_a_pair_matched_from_both_sides_is_one_link() -> None:
    from_hubspot = entry(Action.LINK, "7", matched=Candidate("1", "Ann"))
    from_qbo = entry(Action.LINK, "1", side=QBO, matched=Candidate("7", "Ann"))
    other = entry(Action.LINK, "2", side=QBO, matched=Candidate("8", "Bob"))
    assert without_mirrored_links([from_hubspot, from_qbo, other]) == [from_hubspot, other]


def test_a_plan_survives_its_file_and_a_file_that_is_no_plan_is_refused() -> None:
    decided = resolve(PLAN, "contact/hubspot/8", ReviewDecision.PICK, "2")
    assert from_json(to_json(decided)) == decided
    with pytest.raises(PlanError, match="not a plan of format 1"):
        from_json({"format": 99})
    with pytest.raises(PlanError, match="not a readable plan"):
        from_json({"format": 1, "connection": "acme", "planned_at": 1.0, "entries": [{"kind": "vendor"}]})
    with pytest.raises(PlanError, match="not a readable plan"):
        from_json([])


def test_the_report_lists_what_a_person_checks() -> None:
    text = report(PLAN)
    assert "link     contact/hubspot/7  record 7  ->  1 Ann" in text
    assert "exclude  contact/quickbooks/5  record 5  (no SKU)" in text
    assert "candidates: 2 Bob 1; 3 Bob 2; undecided" in text
    assert "contact/hubspot/9" not in text  # creates are counted, not listed
    assert "in sync already: 4" in text


def test_progress_gives_the_rate_and_the_time_left() -> None:
    running = Progress(total=100, done=25, started_at=1000.0, now=1060.0)
    assert (running.per_minute, running.eta_seconds, running.finished) == (25.0, 180.0, False)
    assert progress_line(running) == "25/100 records synced, 25/min, ETA 3 min"
    assert Progress(total=10, done=0, started_at=1000.0, now=1060.0).eta_seconds is None
    assert Progress(total=10, done=10, started_at=1000.0, now=1000.0).finished
    assert [duration(s) for s in (None, 45, 600, 7200)] == ["—", "45 s", "10 min", "2.0 h"]

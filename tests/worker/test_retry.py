"""The one retry policy: every kind of failure, its delays and attempts."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from services.worker._retry import Failure, RetryPolicy, classify
from shared.errors import BrokerUnavailable, ConfigError, RateLimited, ServerError, StaleObject, ValidationFailed
from shared.store import StaleLink

POLICY = RetryPolicy(delays=(1.0, 5.0, 30.0), max_attempts=4, jitter=0.2, random=lambda: 0.5)


def server_error() -> ServerError:
    return ServerError("503", provider="hubspot", status=503)


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (server_error(), Failure.TRANSIENT),
        (RuntimeError("a bug"), Failure.TRANSIENT),
        (RateLimited("429", provider="qbo", status=429), Failure.RATE_LIMITED),
        (StaleObject("5010", provider="qbo"), Failure.CONFLICT),
        (StaleLink("changed"), Failure.CONFLICT),
        (psycopg.OperationalError("server closed the connection"), Failure.UNAVAILABLE),
        (sqlite3.OperationalError("database is locked"), Failure.UNAVAILABLE),
        (BrokerUnavailable("down"), Failure.UNAVAILABLE),
        (ConnectionRefusedError(), Failure.UNAVAILABLE),
        (ValidationFailed("bad", provider="qbo", status=400), Failure.PERMANENT),
        (ConfigError("no such connection"), Failure.PERMANENT),
    ],
)
def test_every_failure_has_one_class(error: BaseException, failure: Failure) -> None:
    assert classify(error) is failure


def test_transient_failures_walk_the_delays_then_dead_letter_at_max_attempts() -> None:
    delays, attempt = [], 0
    while not (decision := POLICY.decide(server_error(), attempt=attempt)).dead_letter:
        delays.append(decision.delay)
        assert decision.expires_in == pytest.approx(decision.delay * 0.9)  # jitter only shortens
        attempt = decision.attempt
    assert delays == [1.0, 5.0, 30.0]
    assert decision.attempt == 4


def test_a_rate_limit_waits_what_the_provider_asked_and_uses_no_attempt() -> None:
    decision = POLICY.decide(RateLimited("429", provider="qbo", status=429, retry_after=3.0), attempt=2)
    assert (decision.dead_letter, decision.delay, decision.attempt, decision.waits) == (False, 5.0, 2, 1)
    assert 3.0 <= (decision.expires_in or 0) <= 5.0  # never sooner than asked


def test_the_store_or_broker_down_backs_off_without_ever_dead_lettering() -> None:
    waits, seen = 0, []
    for _ in range(50):  # a long outage
        decision = POLICY.decide(psycopg.OperationalError("down"), attempt=3, waits=waits)
        assert not decision.dead_letter
        assert decision.attempt == 3
        seen.append(decision.delay)
        waits = decision.waits
    assert seen[:4] == [1.0, 5.0, 30.0, 30.0]
    assert min(seen) >= 1.0  # backs off, never hot


def test_a_conflict_reruns_at_once_then_backs_off_from_the_first_delay() -> None:
    delays, attempt = [], 0
    for _ in range(3):
        decision = POLICY.decide(StaleObject("5010", provider="qbo"), attempt=attempt)
        delays.append(decision.delay)
        attempt = decision.attempt
    assert delays == [0.0, 1.0, 5.0]


def test_a_permanent_failure_is_dead_lettered_at_once() -> None:
    assert POLICY.decide(ConfigError("bad"), attempt=0).dead_letter

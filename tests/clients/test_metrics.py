"""Metric outcome labels name the error kind, so dashboards split failures without knowing providers."""

from __future__ import annotations

import asyncio

import pytest

from shared.clients._metrics import outcome
from shared.errors import ApiError, DuplicateDocNumber, RateLimited, TransportError


@pytest.mark.parametrize(
    ("exc", "label"),
    [
        (None, "ok"),
        (RateLimited("x", provider="hubspot"), "rate_limited"),
        (DuplicateDocNumber("x", provider="quickbooks"), "duplicate_doc_number"),
        (TransportError("x", provider="hubspot"), "transport_error"),
        (ApiError("x", provider="hubspot"), "api_error"),
        (asyncio.CancelledError(), "cancelled"),
        (KeyError("x"), "error"),
    ],
)
def test_outcome_label(exc: BaseException | None, label: str) -> None:
    assert outcome(exc) == label

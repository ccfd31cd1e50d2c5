"""What each change leaves in its record's pending hints (`changes`), and what an apply reads back from them: the
webhook requests that brought it (bound to its log lines), the oldest source time (hsqbo_sync_lag_seconds) and, when
tracing is on, the changes' trace contexts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain import Provider
from shared.envelope import ChangeEnvelope

# The pending hint each change adds: {"request:<id>" or "event:<id>": source time in ms}. One key per webhook request
# (or polled event), so a burst of changes coalesced into one apply keeps one entry per request that brought them.
CHANGES_HINT = "changes"
REQUEST_PREFIX = "request:"
TRACES_HINT = "traces"  # {the change's key: its trace context}, only when tracing is on (shared/tracing.py)
# {event id: true} for each QBO change: one webhook request may bring several changes of one record (QBO sends our
# write's event and an edit made in the same second together), which its one `changes` entry would count as one.
EVENTS_HINT = "events"


def change_key(envelope: ChangeEnvelope) -> str:
    return REQUEST_PREFIX + envelope.request_id if envelope.request_id else f"event:{envelope.event_id}"


def change_hint(envelope: ChangeEnvelope, trace: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The hint one change leaves on its record's pending work (merged into the others'): its source time, and the
    trace it belongs to when tracing is on."""
    hint: dict[str, Any] = {CHANGES_HINT: {change_key(envelope): envelope.occurred_at_ms}}
    if envelope.provider == Provider.QUICKBOOKS:
        hint[EVENTS_HINT] = {envelope.event_id: True}
    if trace:
        hint[TRACES_HINT] = {change_key(envelope): dict(trace)}
    return hint


def traces(hints: dict[str, Any]) -> list[dict[str, str]]:
    """The trace contexts of a record's pending changes, oldest change first."""
    changes = hints.get(CHANGES_HINT) or {}
    contexts = hints.get(TRACES_HINT) or {}
    ordered = sorted(contexts, key=lambda key: (int(changes.get(key) or 0), key))
    return [dict(contexts[key]) for key in ordered]


def request_ids(hints: dict[str, Any]) -> list[str]:
    """The webhook request ids that brought a record's pending changes, oldest change first."""
    changes = hints.get(CHANGES_HINT) or {}
    ordered = sorted(changes.items(), key=lambda item: (int(item[1] or 0), item[0]))
    return [key.removeprefix(REQUEST_PREFIX) for key, _ in ordered if key.startswith(REQUEST_PREFIX)]


def oldest_change_at(hints: dict[str, Any]) -> float | None:
    """The source time (epoch seconds) of the oldest change a record's pending work holds; None when none says."""
    times = [int(at) for at in (hints.get(CHANGES_HINT) or {}).values() if at]
    return min(times) / 1000 if times else None


def lone_change_at_ms(hints: dict[str, Any]) -> int | None:
    """The source time (epoch ms) of a record's one pending change; None when it does not say or the apply holds
    several (our write's echo and an edit made in the same second cannot be told apart by their times), those of one
    webhook request included."""
    times = [int(at or 0) for at in (hints.get(CHANGES_HINT) or {}).values()]
    several_events = len(hints.get(EVENTS_HINT) or {}) > 1
    return times[0] if len(times) == 1 and times[0] and not several_events else None

"""A plan: what a rule decided to write, in order, as data. A planner computes it as a pure function of the records
it read and their link; `_executor.carry_out` is the one place that carries plans out. A plan's steps are store
intents (`SaveLink`: the link with some fields replaced; `LogActivity`: a line of the record's history) and API
writes (`UpdateQbo`, `UpdateHubSpot`), interleaved so that every crash window is safe:

- a crash after any step leaves the store and both APIs as the steps before it left them, and the next apply plans
  again from what it reads then;
- before a side is written, a `SaveLink` records what that side will hold (its content hash, the write intent): the
  next plan takes a side showing exactly that as our own write, the last agreement, never as an edit there;
- a QBO write carries a `requestid` derived from the link's revision as read (`SyncContext.request_id`): a retry of
  the same plan replays QBO's first answer instead of writing twice, and once a later step has saved the link the
  next plan's write is a new one;
- a value only known once a write answers (the SyncToken QBO gave, HubSpot's new updatedAt) is `Answered`, filled in
  by the executor.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from shared.store import Direction


class Write(enum.StrEnum):
    QBO = "qbo"  # the SyncToken of the QBO write's answer
    HUBSPOT = "hubspot"  # the updatedAt of the HubSpot write's answer


@dataclasses.dataclass(frozen=True, slots=True)
class Answered:
    """A link field's value taken from an earlier write's answer in the same plan; `default` when it gave none."""

    write: Write
    default: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SaveLink:
    """Save the link (as the previous step left it) with these fields replaced; values may be `Answered`."""

    changes: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class UpdateQbo:
    entity: str  # "Customer"
    body: Mapping[str, Any]  # sparse update: Id, SyncToken, the fields
    request_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class UpdateHubSpot:
    object_type: str  # "contacts"
    object_id: str
    properties: Mapping[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class LogActivity:
    """A line of the record's history, under the link as saved last."""

    action: str
    detail: str


Step = SaveLink | UpdateQbo | UpdateHubSpot | LogActivity


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """The steps, in order, and the outcome they make (its link: the link as saved last)."""

    steps: tuple[Step, ...]
    action: str
    direction: Direction | None = None
    detail: str = ""

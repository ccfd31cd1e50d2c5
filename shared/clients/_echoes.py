"""Our own QBO writes' answers, so that applying the webhook of our own write (its echo) costs no read.

QBO answers every write with the record as it now is, `MetaData.LastUpdatedTime` included (to the second). Its
webhook names the entity, its id and its `lastUpdated`, never the SyncToken. While the engine applies a change to a
QBO record (`changed`: the record and the newest source time of its pending changes), a read of that record is
answered from our last write of it when no change is newer than that write, the write's second included:

    change time < LastUpdatedTime (whole seconds) + 1 s

A read then would show what the write answered, so the rule sees its own SyncToken and records an echo, as after a
read. A change after our write has a later time and is read as usual. The stricter reading of the one doubt: an edit
made in QBO within the same second as our write cannot be told from our echo by its time. It is then taken for our
write until its record changes again or the poller's catch-up, which compares SyncTokens, queues it (the record's
version on the link is not moved by an echo), so the edit is late, never lost.

A process remembers only its own writes (the last `size` records): an echo applied by another worker process reads,
as before.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import copy
import dataclasses
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

SIZE = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Change:
    entity: str  # lower case
    entity_id: str
    changed_at_ms: int  # the newest source time of the pending changes


_CHANGE: contextvars.ContextVar[_Change | None] = contextvars.ContextVar("hsqbo_qbo_change", default=None)


class OurWrites:
    """One QBO company's records as our last writes answered them."""

    def __init__(self, *, size: int = SIZE) -> None:
        self._size = size
        self._written: collections.OrderedDict[tuple[str, str], tuple[dict[str, Any], int]] = collections.OrderedDict()

    def remember(self, entity: str, record: Mapping[str, Any]) -> None:
        """A write's answer: the record as it is after the write."""
        if "Id" not in record:
            return
        key = (entity.lower(), str(record["Id"]))
        written_at = _seconds(record)
        if written_at is None:  # a delete answers no time: what we knew of the record is no longer what it is
            self._written.pop(key, None)
            return
        self._written[key] = (dict(record), written_at)
        self._written.move_to_end(key)
        while len(self._written) > self._size:
            self._written.popitem(last=False)

    @staticmethod
    @contextlib.contextmanager
    def changed(entity: str, entity_id: str, changed_at_ms: int | None) -> Iterator[None]:
        """While the block runs, the current task applies a change of this record made at `changed_at_ms` (None:
        unknown, so every read reads)."""
        token = _CHANGE.set(None if changed_at_ms is None else _Change(entity.lower(), entity_id, changed_at_ms))
        try:
            yield
        finally:
            _CHANGE.reset(token)

    def echo(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        """The record as our last write answered it, when the change being applied is no newer than that write."""
        change = _CHANGE.get()
        if change is None or (change.entity, change.entity_id) != (entity.lower(), entity_id):
            return None
        written = self._written.get((change.entity, entity_id))
        if written is None or change.changed_at_ms >= (written[1] + 1) * 1000:
            return None
        return copy.deepcopy(written[0])


def _seconds(record: Mapping[str, Any]) -> int | None:
    stamp = (record.get("MetaData") or {}).get("LastUpdatedTime")
    try:
        return int(datetime.fromisoformat(stamp).timestamp()) if isinstance(stamp, str) else None
    except ValueError:
        return None

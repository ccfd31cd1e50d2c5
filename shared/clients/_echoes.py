"""Our own QBO writes' answers, so that applying the webhook of our own write (its echo) costs no read.

QBO answers every write with the record as it now is, `MetaData.LastUpdatedTime` included (to the second). Its
webhook names the entity, its id and its `lastUpdated`, never the SyncToken. While the engine applies a change to a
QBO record (`changed`: the record and the newest source time of its pending changes), a read of that record is
answered from our last write of it when no change is newer than that write, the write's second included, and the
record's link, as the apply read it, last recorded writing that very SyncToken:

    change time < LastUpdatedTime (whole seconds) + 1 s   and   SyncToken == link's qbo_written_sync_token

The second condition is what another worker process knows: a process remembers only its own writes, so one that
wrote the record at SyncToken 0 must not serve that answer as the echo of another process's later write of the same
second (SyncToken 1): the rule would merge against values QBO no longer holds. The link is shared: it says which
write was ours last.

A read then would show what the write answered, so the rule sees its own SyncToken and records an echo, as after a
read. A change after our write has a later time and is read as usual. An edit made in QBO within the same second as
our write cannot be told from our echo by its time (QBO stamps to the second), so the stricter reading: a write's
answer serves one echo only, and every later apply of the record reads; an apply holding several changes of the
record (our echo and the edit, coalesced) reads too (the engine gives no change time then). The same-second edit is
then read by that apply or its own: when it came first, by the apply of our echo, which comes after it. A read that
showed what our write made spends the write's echo too: the echo's apply may have read before the write's answer
came back, and the edit's apply that follows must not be taken for the echo (only a read by an apply of a change of
the record does so: our create's read back leaves its echo to the echo's apply).

The same answer serves the read of a QBO record an apply from HubSpot is about to update (`counterpart`: the record
and the SyncToken its link last synced), when our last write of it answered that very SyncToken: the link is
current, so the record is as we wrote it unless it changed in QBO since. If it did, the update carries a SyncToken
QBO has moved past and is refused (5010, stale): the record is forgotten here and the retry reads it. A change made
in QBO since is applied by its own apply, which reads; the HubSpot apply merged against the values both sides last
agreed on, so it never writes them back over the QBO edit.

The counterpart's read is answered likewise from our last read of the record (`saw`) when it showed that SyncToken:
a record synced from QBO and never written by us is updated from HubSpot unread too, guarded the same way (5010).
A read never serves an echo: only our write's own answer tells what our write made.

A process remembers only its own writes and reads (the last `size` records): an echo applied by another worker
process reads, as before.
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
    changed_at_ms: int | None  # the newest source time of the pending changes (None: unknown, never an echo)
    written_sync_token: str | None  # the SyncToken the record's link last recorded writing (None: never an echo)


@dataclasses.dataclass(frozen=True, slots=True)
class _Counterpart:
    entity: str  # lower case
    entity_id: str
    sync_token: str  # as its link last synced it


@dataclasses.dataclass(slots=True)
class _Written:
    record: dict[str, Any]  # as the write (or a read: `ours` False) answered it
    at: int  # its MetaData.LastUpdatedTime, epoch seconds
    ours: bool = True  # our write's answer, which may serve its echo; a read's serves only a counterpart
    echoed: bool = False  # served an echo already (a read's: made by an apply of a change of the record)


_CHANGE: contextvars.ContextVar[_Change | None] = contextvars.ContextVar("hsqbo_qbo_change", default=None)
_COUNTERPART: contextvars.ContextVar[_Counterpart | None] = contextvars.ContextVar("hsqbo_qbo_linked", default=None)


class OurWrites:
    """One QBO company's records as our last writes answered them."""

    def __init__(self, *, size: int = SIZE) -> None:
        self._size = size
        self._written: collections.OrderedDict[tuple[str, str], _Written] = collections.OrderedDict()

    def remember(self, entity: str, record: Mapping[str, Any]) -> None:
        """A write's answer: the record as it is after the write. When an apply of a change of the record read it
        so already (the read answered before the write did: the echo's own apply, racing the write's answer), the
        write serves no echo."""
        known = self._same(entity, record)
        self._keep(entity, record, ours=True, echoed=known is not None and known.echoed)

    def saw(self, entity: str, record: Mapping[str, Any]) -> None:
        """A read's answer: the record as it is now. One that an apply of a change of the record made, showing what
        our last write made, spends that write's echo: it may have been the echo's own read, racing the write's
        answer, and a later change of that second is then read rather than taken for the echo. Any other read (our
        create read back, say) leaves the echo to its apply."""
        change = _CHANGE.get()
        by_change = change is not None and (change.entity, change.entity_id) == (entity.lower(), str(record.get("Id")))
        known = self._same(entity, record)
        if known is None:
            self._keep(entity, record, ours=False, echoed=by_change)
        elif by_change:
            known.echoed = True

    def _same(self, entity: str, record: Mapping[str, Any]) -> _Written | None:
        """What we know of the record, when it is at the SyncToken `record` shows."""
        known = self._written.get((entity.lower(), str(record.get("Id"))))
        same = known is not None and str(known.record.get("SyncToken")) == str(record.get("SyncToken"))
        return known if same else None

    def _keep(self, entity: str, record: Mapping[str, Any], *, ours: bool, echoed: bool = False) -> None:
        if "Id" not in record:
            return
        key = (entity.lower(), str(record["Id"]))
        written_at = _seconds(record)
        if written_at is None:  # a delete answers no time: what we knew of the record is no longer what it is
            self._written.pop(key, None)
            return
        self._written[key] = _Written(dict(record), written_at, ours, echoed)
        self._written.move_to_end(key)
        while len(self._written) > self._size:
            self._written.popitem(last=False)

    @staticmethod
    @contextlib.contextmanager
    def changed(
        entity: str, entity_id: str | None, changed_at_ms: int | None, *, written_sync_token: str | None
    ) -> Iterator[None]:
        """While the block runs, the current task applies a change of this record made at `changed_at_ms` (None:
        unknown, so every read reads; `entity_id` None: no QBO record's change; an apply run inside another's task
        sees nothing of the outer one's), whose link last recorded our write of SyncToken `written_sync_token` (None:
        no link, or none recorded: every read reads)."""
        change = None if entity_id is None else _Change(entity.lower(), entity_id, changed_at_ms, written_sync_token)
        token, linked = _CHANGE.set(change), _COUNTERPART.set(None)  # nothing of an enclosing apply's
        try:
            yield
        finally:
            _COUNTERPART.reset(linked)
            _CHANGE.reset(token)

    @staticmethod
    @contextlib.contextmanager
    def counterpart(entity: str, entity_id: str, sync_token: str | None) -> Iterator[None]:
        """While the block runs, the current task applies a change from HubSpot to the record linked to this QBO
        record, whose link last synced it at `sync_token` (None: unknown, so every read reads)."""
        linked = None if sync_token is None else _Counterpart(entity.lower(), entity_id, sync_token)
        token = _COUNTERPART.set(linked)
        try:
            yield
        finally:
            _COUNTERPART.reset(token)

    def forget(self, entity: str, entity_id: str) -> None:
        """The record changed elsewhere (QBO refused a write as stale): the next read reads."""
        self._written.pop((entity.lower(), entity_id), None)

    def echo(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        """The record as our last write answered it, when the change being applied is no newer than that write, or
        when the apply's link last synced the record at the SyncToken that write (or our last read) answered."""
        key = (entity.lower(), entity_id)
        written = self._written.get(key)
        if written is None:
            return None
        change, linked = _CHANGE.get(), _COUNTERPART.get()
        if change is not None and (change.entity, change.entity_id) == key:
            at_ms = change.changed_at_ms
            fresh = (
                written.ours
                and not written.echoed
                and at_ms is not None
                and at_ms < (written.at + 1) * 1000
                and str(written.record.get("SyncToken")) == change.written_sync_token
            )
            written.echoed = True  # one echo a write (see the module docstring)
        elif linked is not None and (linked.entity, linked.entity_id) == key:
            fresh = str(written.record.get("SyncToken")) == linked.sync_token
        else:
            fresh = False
        return copy.deepcopy(written.record) if fresh else None


def _seconds(record: Mapping[str, Any]) -> int | None:
    stamp = (record.get("MetaData") or {}).get("LastUpdatedTime")
    try:
        return int(datetime.fromisoformat(stamp).timestamp()) if isinstance(stamp, str) else None
    except ValueError:
        return None

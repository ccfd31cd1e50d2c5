"""The status page's dead letters: filter, read one with its history, replay or purge one, a selection or the
filtered set (the same code as `hsqbo dlq`, `shared.deadletters`).

    GET  /dead-letters?connection=&kind=&category=&since=&until=   the letters of the last scan that match, and how
                                                                    many the queue holds now
    GET  /dead-letters/{id}                                         one letter: its history, what its error means, a
                                                                    link to its record
    POST /dead-letters/scan                                         read the queue again
    POST /dead-letters/replay, /dead-letters/purge                  `id` (one or several), or `scope=filtered` with
                                                                    the filter's fields (an empty filter: every letter)

Reads change nothing. Reading a letter off a quorum queue means taking it and putting a copy back (a requeue counts
as a delivery, and RabbitMQ 4 drops a message past its delivery limit), which is a write; so a GET shows the letters
this process last scanned (when, and a "Scan" button, are on the page) and the queue's own message count, read with
a passive declare, which takes nothing. Every POST scans: its action, then the letters left. Several replicas of the
page each show their own last scan; the count is always the queue's.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aio_pika.exceptions import AMQPError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.status._common import record_href
from services.status._explanations import explain
from shared.deadletters import DeadLetter, LetterFilter
from shared.domain import Kind, PendingKey, Provider
from shared.process import parse_time

if TYPE_CHECKING:
    from services.status._app import StatusPage

FILTER_FIELDS = ("connection", "kind", "category", "since", "until")
SHOWN = 200  # letters listed at most (the actions take every matching one)


@dataclasses.dataclass(frozen=True, slots=True)
class Scan:
    at: float
    letters: tuple[DeadLetter, ...]


def when_ms(at: float | None) -> str:
    """An instant to the millisecond, in UTC."""
    if at is None:
        return "—"
    return dt.datetime.fromtimestamp(round(at, 3), dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", " UTC")


def letter_filter(fields: Callable[[str], Any], now: float) -> tuple[LetterFilter, list[str]]:
    """The filter the page's fields describe (`since`/`until`: ISO 8601, UTC unless given, or a duration ago such as
    2h), and the fields it could not read (left out of the filter)."""
    values = {name: str(fields(name) or "").strip() for name in FILTER_FIELDS}
    unreadable = []
    times: dict[str, float | None] = {}
    for name in ("since", "until"):
        times[name] = None
        if values[name]:
            try:
                times[name] = parse_time(values[name], now)
            except argparse.ArgumentTypeError:
                unreadable.append(name)
    where = LetterFilter(
        connection=values["connection"] or None, kind=values["kind"] or None, category=values["category"] or None,
        since=times["since"], until=times["until"],
    )  # fmt: skip
    return where, unreadable


def record_of(letter: DeadLetter) -> PendingKey | None:
    """The record a letter is about, when it names one hsqbo keeps (an apply's: a change envelope has no
    connection until it is routed)."""
    try:
        kind, side = Kind(letter.kind or ""), Provider(letter.side or "")
    except ValueError:
        return None
    if letter.connection is None or letter.object_id is None:
        return None
    return PendingKey(letter.connection, kind, side, letter.object_id)


def record_path(letter: DeadLetter) -> str | None:
    """The status page's path of the letter's record."""
    key = record_of(letter)
    return None if key is None else record_href(key)


class DeadLetterPages:
    def __init__(self, page: StatusPage) -> None:
        self.page = page
        self.scan: Scan | None = None  # this process's last reading of the queue
        page.templates.filters["when_ms"] = when_ms

    def routes(self) -> list[Route]:
        return [
            Route("/dead-letters", self.letters),
            Route("/dead-letters/scan", self.rescan, methods=["POST"]),
            Route("/dead-letters/replay", self.replay, methods=["POST"]),
            Route("/dead-letters/purge", self.purge, methods=["POST"]),
            Route("/dead-letters/{letter_id}", self.letter),
        ]

    async def _count(self) -> int | None:
        try:
            async with self.page.dead_letters() as letters:
                return await letters.count()
        except (OSError, AMQPError):
            return None

    async def letters(self, request: Request) -> Response:
        where, unreadable = letter_filter(request.query_params.get, self.page.clock())
        found = [letter for letter in self.scan.letters if where.matches(letter)] if self.scan else []
        categories = sorted({letter.error_category for letter in self.scan.letters}) if self.scan else []
        return self.page._render(
            "dead_letters.html", request, letters=found[:SHOWN], matching=len(found), scan=self.scan,
            queued=await self._count(), fields={name: request.query_params.get(name, "") for name in FILTER_FIELDS},
            unreadable=unreadable, categories=categories, kinds=list(Kind),
            connections=[c.name for c in self.page.sync.connection], filtered=not where.everything, explain=explain,
            record_path=record_path, names=await self._names(found[:SHOWN]),
        )  # fmt: skip

    async def _names(self, letters: list[DeadLetter]) -> dict[str, str]:
        """Letter id -> the name of its record, for the letters whose record hsqbo keeps a link of."""
        names = {}
        for letter in letters:
            key = record_of(letter)
            if key is None:
                continue
            ids = {"hubspot_id" if key.side == Provider.HUBSPOT else "qbo_id": key.object_id}
            link = await self.page.store.get_link(key.connection, key.kind, **ids)
            if link is not None and link.label:
                names[letter.id] = link.label
        return names

    async def letter(self, request: Request) -> Response:
        letter_id = request.path_params["letter_id"]
        letter = next((one for one in self.scan.letters if one.id == letter_id), None) if self.scan else None
        if letter is None:
            return self.page._render("dead_letter.html", request, letter=None, letter_id=letter_id, scan=self.scan)
        return self.page._render(
            "dead_letter.html", request, letter=letter, letter_id=letter_id, scan=self.scan,
            explanation=explain(letter.error_category), record=record_path(letter),
        )  # fmt: skip

    async def rescan(self, request: Request) -> Response:
        form = await request.form()
        try:
            async with self.page.dead_letters() as letters:
                self.scan = Scan(time.time(), tuple(await letters.list_letters()))
        except (OSError, AMQPError):
            return self._back(request, form, "RabbitMQ unreachable: nothing scanned")
        return self._back(request, form, f"scanned: {len(self.scan.letters)} dead letter(s)")

    async def replay(self, request: Request) -> Response:
        return await self._act(request, "replay")

    async def purge(self, request: Request) -> Response:
        return await self._act(request, "purge")

    async def _act(self, request: Request, action: str) -> Response:
        form = await request.form()
        ids = frozenset(str(value) for value in form.getlist("id"))
        if form.get("scope") == "filtered" or form.get("all") == "yes":
            where, unreadable = letter_filter(form.get, self.page.clock())
            if unreadable:
                return self._back(request, form, f"could not read {', '.join(unreadable)}: nothing done")
        elif ids:
            where = LetterFilter(ids=ids)
        else:
            return self._back(request, form, f"nothing chosen to {action}")
        try:
            async with self.page.dead_letters() as letters:
                if action == "replay":
                    done = len((await letters.replay(where)).replayed)
                else:
                    done = len(await letters.purge(where))
                self.scan = Scan(time.time(), tuple(await letters.list_letters()))
        except (OSError, AMQPError):
            return self._back(request, form, f"RabbitMQ unreachable: nothing to {action}")
        return self._back(request, form, f"{'replayed' if action == 'replay' else 'purged'} {done} dead letter(s)")

    def _back(self, request: Request, form: Any, notice: str) -> Response:
        """To the list, with the filter the form carried."""
        kept = {name: str(form.get(name)) for name in FILTER_FIELDS if form.get(name)}
        query = urllib.parse.urlencode({**kept, "notice": notice})
        return RedirectResponse(f"{request.url_for('letters')}?{query}", status_code=303)

"""Argument parsing, the checks on an operator's decision (`problems`, pure) and output for `hsqbo review`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

import orjson

from shared.config import Settings, load_settings
from shared.deadletters import open_dead_letters
from shared.domain import Kind, PendingKey, Provider
from shared.resync import resync
from shared.store import Link, LinkStatus, LinkStore, ReviewDecision, StaleLink, open_store

PAGE = 500


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    listing = actions.add_parser("list", help="records needing review, oldest first")
    listing.add_argument("--connection", help="connection name (from the sync config)")
    listing.add_argument("--kind", help="contact, product, invoice or payment")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a record needing review, its reason and candidates")
    show.add_argument("id", help="the record's id (first column of list)")
    show.add_argument("--json", action="store_true")
    resolve = actions.add_parser(
        "resolve", help="decide: link to a candidate, create a new record on the other side, or exclude"
    )
    resolve.add_argument("id", help="the record's id (first column of list)")
    choice = resolve.add_mutually_exclusive_group(required=True)
    choice.add_argument("--pick", metavar="QBO_OR_HUBSPOT_ID", help="link to this candidate (its id on the other side)")
    choice.add_argument("--create-new", action="store_true", help="create the record on the other side, no matching")
    choice.add_argument("--exclude", action="store_true", help="leave the record out of the sync")


def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    asyncio.run(_run(args, settings))


def record_of(link: Link) -> tuple[Provider, str]:
    """The record under review: its side and id (the link holds only that id until it is resolved)."""
    if link.hubspot_id is not None:
        return Provider.HUBSPOT, link.hubspot_id
    return Provider.QUICKBOOKS, str(link.qbo_id)


def other_side(link: Link) -> str:
    return "QuickBooks" if record_of(link)[0] == Provider.HUBSPOT else "HubSpot"


def problems(link: Link | None, link_id: str, pick: str | None) -> list[str]:
    """What is wrong with resolving record `link_id` (found as `link`) this way, one line each; none: go ahead."""
    if link is None:
        return [f"no record {link_id}"]
    found: list[str] = []
    decided = link.review_decision is not None and link.status != LinkStatus.SYNCED
    if link.status != LinkStatus.NEEDS_REVIEW and not decided:
        found.append(f"record {link_id} does not need review (status {link.status})")
    if link.hubspot_id is not None and link.qbo_id is not None:
        found.append(f"record {link_id} is already linked (HubSpot {link.hubspot_id}, QuickBooks {link.qbo_id})")
    ids = [candidate.id for candidate in link.candidates]
    if pick is not None and pick not in ids:
        listed = ", ".join(ids) or "none"
        found.append(f"{pick} is not a candidate of record {link_id} (candidates: {listed})")
    return found


def decided(link: Link, decision: ReviewDecision, pick: str | None) -> Link:
    """The link carrying the operator's decision, for a worker to apply."""
    return dataclasses.replace(
        link, review_decision=decision, review_pick=pick if decision == ReviewDecision.PICK else None
    )


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        if args.action == "list":
            await _list(store, args)
            return
        link_id = str(args.id)
        link = await store.get_link_by_id(int(link_id)) if link_id.isdigit() else None
        if args.action == "show":
            if link is None:
                raise SystemExit(f"hsqbo review show: no record {link_id}")
            _show(link, as_json=args.json)
            return
        decision = (
            ReviewDecision.PICK if args.pick is not None
            else ReviewDecision.CREATE_NEW if args.create_new
            else ReviewDecision.EXCLUDE
        )  # fmt: skip
        wrong = problems(link, link_id, args.pick)
        if wrong or link is None:
            raise SystemExit("\n".join(f"hsqbo review resolve: {problem}" for problem in wrong))
        try:
            saved = await store.save_link(decided(link, decision, args.pick))
        except StaleLink:
            raise SystemExit(
                f"hsqbo review resolve: record {link_id} changed meanwhile; look again (hsqbo review show {link_id})"
            ) from None
        side, object_id = record_of(saved)
        async with open_dead_letters(settings) as letters:
            await resync(store, letters.channel, PendingKey(saved.connection, saved.kind, side, object_id),
                         now=time.time())  # fmt: skip
        what = f"link to {other_side(saved)} {args.pick}" if args.pick else str(decision).replace("_", " ")
        print(f"record {link_id} ({saved.kind} {side} {object_id}): {what}; queued for a worker")


async def _list(store: LinkStore, args: argparse.Namespace) -> None:
    try:
        kind = Kind(args.kind) if args.kind else None
    except ValueError:
        raise SystemExit(f"hsqbo review list: unknown kind {args.kind!r} (one of {', '.join(Kind)})") from None
    links: list[Link] = []
    offset = 0
    while True:
        page = await store.list_links(args.connection, kind, LinkStatus.NEEDS_REVIEW, PAGE, offset)
        links += page
        if len(page) < PAGE:
            break
        offset += PAGE
    if args.json:
        for link in links:
            print(orjson.dumps(_as_dict(link)).decode())
        return
    if not links:
        return
    header = ("ID", "CONNECTION", "KIND", "SIDE", "RECORD", "CANDIDATES", "REASON")
    rows = [header] + [
        (str(link.id), link.connection, str(link.kind), *record_of(link),
         ", ".join(c.id for c in link.candidates) or "-", link.error_message or "")
        for link in links
    ]  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


def _as_dict(link: Link) -> dict[str, object]:
    side, object_id = record_of(link)
    return {
        "id": link.id, "connection": link.connection, "kind": str(link.kind), "side": str(side), "record": object_id,
        "status": str(link.status), "reason": link.error_message,
        "candidates": [{"id": c.id, "label": c.label} for c in link.candidates],
        "decision": None if link.review_decision is None else str(link.review_decision), "pick": link.review_pick,
    }  # fmt: skip


def _show(link: Link, *, as_json: bool) -> None:
    if as_json:
        print(orjson.dumps(_as_dict(link)).decode())
        return
    side, object_id = record_of(link)
    print(f"record      {link.id}: {link.connection} {link.kind}, {side} {object_id}")
    print(f"status      {link.status}")
    print(f"reason      {link.error_message or '-'}")
    if link.review_decision is not None:
        print(f"decision    {link.review_decision}{' ' + link.review_pick if link.review_pick else ''}")
    print(f"candidates  on {other_side(link)}:" if link.candidates else "candidates  none")
    for candidate in link.candidates:
        print(f"  {candidate.id:<10}{candidate.label}")
    print(f"resolve     hsqbo review resolve {link.id} --pick ID | --create-new | --exclude")

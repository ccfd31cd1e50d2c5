"""Argument parsing and output for `hsqbo dlq`; every action is `shared.deadletters.DeadLetters`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence

import orjson

from shared.config import Settings, load_settings
from shared.deadletters import DeadLetter, DeadLetters, LetterFilter, Progress, open_dead_letters
from shared.process import parse_time
from shared.store import open_store

_ERROR_COLUMN_CHARS = 60


def configure_parser(parser: argparse.ArgumentParser) -> None:
    filters = argparse.ArgumentParser(add_help=False)
    group = filters.add_argument_group("filters")
    group.add_argument("--connection", help="connection name (from the sync config)")
    group.add_argument("--kind", help="object kind (contact, product, invoice, payment) or provider object type")
    group.add_argument("--category", help="error category (server_error, rate_limited, unparseable...)")
    group.add_argument("--since", type=parse_time, metavar="TIME", help="last failed at or after (ISO 8601 or 2h)")
    group.add_argument("--until", type=parse_time, metavar="TIME", help="last failed before (ISO 8601 or 30m)")

    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    listing = actions.add_parser("list", parents=[filters], help="list dead letters, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="everything a dead letter says about its failure")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    for name, help_text in (
        ("replay", "re-create the letters' work and remove them (after the new work is confirmed)"),
        ("purge", "delete letters for good"),
    ):
        action = actions.add_parser(name, parents=[filters], help=help_text, description=help_text)
        action.add_argument("ids", nargs="*", metavar="ID", help="letters by id (combined with the filters)")
        action.add_argument("--all", action="store_true", help="every letter, when no id or filter is given")
        action.add_argument("--dry-run", action="store_true", help="say which letters, change nothing")
        if name == "purge":
            action.add_argument("--yes", action="store_true", help="confirm: purged letters cannot be replayed")


def letter_filter(args: argparse.Namespace) -> LetterFilter:
    where = LetterFilter(
        ids=frozenset(getattr(args, "ids", ())),
        connection=args.connection,
        kind=args.kind,
        category=args.category,
        since=args.since,
        until=args.until,
    )
    if args.action in ("replay", "purge") and where.everything and not args.all:
        raise SystemExit(f"hsqbo dlq {args.action}: name letters by id, filter them, or pass --all")
    if args.action == "purge" and not (args.yes or args.dry_run):
        raise SystemExit("hsqbo dlq purge: purged letters are gone for good; add --yes (or --dry-run to see which)")
    return where


def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    where = None if args.action == "show" else letter_filter(args)
    asyncio.run(_run(args, settings, where))


async def _run(args: argparse.Namespace, settings: Settings, where: LetterFilter | None) -> None:
    if args.action == "replay" and where is not None:
        async with (
            open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
            open_dead_letters(settings, store) as letters,
        ):
            report = await letters.replay(where, dry_run=args.dry_run, progress=_progress("replay"))
        _print_table(report.replayed)
        verb = "would replay" if args.dry_run else "replayed"
        print(f"{verb} {len(report.replayed)} dead letter(s)")
        if report.skipped:
            print(f"skipped {len(report.skipped)} unparseable letter(s): nothing to replay, purge them")
        return
    async with open_dead_letters(settings) as letters:
        if args.action == "show":
            await _show(letters, args.id, as_json=args.json)
        elif args.action == "list" and where is not None:
            found = await letters.list_letters(where, progress=_progress("scan"))
            _print_json(found) if args.json else _print_table(found)
        elif where is not None:
            purged = await letters.purge(where, dry_run=args.dry_run, progress=_progress("purge"))
            _print_table(purged)
            print(f"{'would purge' if args.dry_run else 'purged'} {len(purged)} dead letter(s)")


async def _show(letters: DeadLetters, letter_id: str, *, as_json: bool) -> None:
    letter = await letters.show(letter_id)
    if letter is None:
        raise SystemExit(f"hsqbo dlq show: no dead letter {letter_id}")
    if as_json:
        _print_json([letter])
        return
    for name, value in letter.to_dict().items():
        shown = _when(value) if name.endswith("_at") else value
        print(f"{name:<16}{'-' if shown is None else shown}")


def _progress(verb: str) -> Progress | None:
    """A one-line progress count on a terminal's stderr; nothing when stderr is a file or pipe."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{verb}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return show


def _when(at: float | None) -> str | None:
    return None if at is None else dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def _print_json(letters: Sequence[DeadLetter]) -> None:
    for letter in letters:
        print(orjson.dumps(letter.to_dict()).decode())


def _print_table(letters: Sequence[DeadLetter]) -> None:
    if not letters:
        return
    header = ("ID", "LAST FAILED (UTC)", "CONNECTION", "KIND", "SIDE", "OBJECT", "ATTEMPTS", "CATEGORY", "ERROR")
    rows = [header] + [
        (
            letter.id, _when(letter.last_failed_at) or "-", letter.connection or "-", letter.kind or "-",
            letter.side or "-", letter.object_id or "-", str(letter.attempts), letter.error_category,
            letter.error_message[:_ERROR_COLUMN_CHARS],
        )
        for letter in letters
    ]  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])

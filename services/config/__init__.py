"""`hsqbo config check`: can this stack run? Validates the settings (environment and env file) and the sync rules,
reaches the broker, the store, both APIs of every connection with its stored credentials, and the HubSpot app's
webhook subscriptions; prints one line per note and per problem and exits 1 if there is any problem
(`services/connect/_checks.py`)."""

from __future__ import annotations

import argparse
import asyncio

from services.connect import _checks
from shared.config import load_settings
from shared.logging import configure_logging


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    check = actions.add_parser("check", help="validate settings and sync rules; reach the broker, store and APIs")
    check.add_argument("--connection", action="append", default=[], help="only this connection (repeatable)")


def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    settings = load_settings()
    notes: list[str] = []
    problems = asyncio.run(_checks.check(settings, connections=args.connection, notes=notes))
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(f"hsqbo config check: {len(problems)} problem(s)")
    print("hsqbo config check: ok (settings, sync rules, broker, store, APIs, webhook subscriptions)")
    print(f"Intuit (no API to check): its developer portal's Webhooks must enable {_checks.intuit_entities()}")

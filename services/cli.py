"""`hsqbo <command>`: one console script, one subcommand per process.

Each command is a package under `services/` exposing `configure_parser(parser)` and `main(args)`; it is imported
only when chosen, so a process loads only its own command's code. The API emulators are not a command: they are a
distribution of their own, `hsqbo-sandbox` (sandbox/), which `hsqbo run` needs installed beside hsqbo.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from shared.errors import ConfigError
from shared.version import version

COMMANDS: dict[str, str] = {
    "receiver": "accept signed HubSpot and Intuit webhooks and queue them durably",
    "worker": "apply queued changes to the other system, per record, debounced",
    "poller": "find changes whose webhook was missed (QBO CDC, HubSpot search) and queue them",
    "run": "everything on one machine: sandboxes, receiver and demo wiring",
    "status": "the status page: records and their errors, Sync now, CSV export, dead-letter replay",
    "dlq": "list, show, replay or purge dead letters: the work hsqbo gave up on",
    "review": "list, show and resolve records matching never guessed for (an email or SKU matching several)",
    "connect": "connect a HubSpot or QuickBooks account from the terminal (OAuth or a private-app token)",
    "connections": "list, show, pause, resume or disconnect connections",
    "config": "check: validate settings and sync rules, reach the broker, store, APIs and webhook subscriptions",
}


class Command(Protocol):
    def configure_parser(self, parser: argparse.ArgumentParser) -> None: ...
    def main(self, args: argparse.Namespace) -> None: ...


def _load(name: str) -> Command:
    try:
        return cast(Command, importlib.import_module(f"services.{name}"))
    except ModuleNotFoundError as exc:
        if exc.name != "hsqbo_sandbox":
            raise
        raise SystemExit(
            f"hsqbo {name}: needs the sandbox beside hsqbo: pip install ./sandbox (make run does)"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="hsqbo", description="HubSpot <-> QuickBooks Online sync")
    parser.add_argument("--version", action="version", version=f"hsqbo {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).configure_parser(sub)
    args = parser.parse_args(argv)
    try:
        _load(args.command).main(args)
    except ConfigError as exc:
        print(f"hsqbo {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

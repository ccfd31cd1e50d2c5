"""`hsqbo connections list|show|pause|resume|disconnect`: the connections of the sync rules and their accounts'
authorization, read from the sync rules file (`HSQBO_CONFIG`) and the store.

- `pause NAME`: both credentials are marked paused; workers stop calling the connection's accounts within seconds
  and set its work aside (as after a revocation), pollers skip it.
- `resume NAME`: active again; the work set aside is due at once. It ends an operator's pause only: a connection
  paused because HubSpot refused its token or its scopes (`paused: reconnect to grant X`) needs `hsqbo connect`.
- `disconnect NAME`: the stored tokens are forgotten (status revoked); the block stays in the sync rules until you
  remove it, and `hsqbo connect` connects it again.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt

import orjson

from services.connect._flow import current_sync
from shared.config import Settings, load_settings
from shared.credentials import MISSING_SCOPES, connect, grant_hint
from shared.domain import Provider
from shared.store import Credentials, CredentialStatus, CredentialStore, Store, open_store
from shared.syncconfig import ConnectionSettings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    actions.add_parser("list", help="every connection: its accounts and their authorization")
    for name, help_text in (
        ("show", "one connection: its settings, authorization and records by status"),
        ("pause", "stop syncing a connection (its work waits)"),
        ("resume", "sync a paused connection again"),
        ("disconnect", "forget a connection's tokens (connect it again with hsqbo connect)"),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("name")


def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    sync = current_sync(settings)
    chosen = None
    if args.action != "list":
        chosen = sync.named(args.name)
        if chosen is None:
            raise SystemExit(f"hsqbo connections: no connection named {args.name!r} in {settings.config}")
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        if chosen is None:
            for connection in sync.connection:
                states = [await _state(store, connection.name, provider) for provider in Provider]
                print(f"{connection.name}  HubSpot portal {connection.hubspot_portal_id}: {states[0]}  "
                      f"QuickBooks company {connection.qbo_realm_id}: {states[1]}")  # fmt: skip
            if not sync.connection:
                print(f"no connection in {settings.config}: hsqbo connect hubspot --name NAME")
        elif args.action == "show":
            await _show(store, chosen)
        else:
            await _change(store, chosen, args.action)


async def _state(store: CredentialStore, name: str, provider: Provider) -> str:
    credentials = await store.get_credentials(name, provider)
    if credentials is None:
        return "not connected"
    if credentials.status == CredentialStatus.ACTIVE and not credentials.refresh_token:
        return "connected (private-app token)"
    if credentials.status == CredentialStatus.REVOKED and MISSING_SCOPES in credentials.extra:
        return f"paused: {grant_hint(credentials.extra[MISSING_SCOPES])}"
    return "connected" if credentials.status == CredentialStatus.ACTIVE else str(credentials.status)


async def _show(store: Store, connection: ConnectionSettings) -> None:
    print(orjson.dumps(connection.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
    for provider in Provider:
        credentials = await store.get_credentials(connection.name, provider)
        state = await _state(store, connection.name, provider)
        expires = credentials.expires_at if credentials else None
        when = (
            f", access token until {dt.datetime.fromtimestamp(expires, dt.UTC):%Y-%m-%d %H:%M} UTC" if expires else ""
        )
        print(f"{provider}: {state}{when}")
    counts = await store.count_links_by_status(connection.name)
    for (kind, status), count in sorted(counts.items()):
        print(f"{kind} {status}: {count}")


async def _change(store: Store, connection: ConnectionSettings, action: str) -> None:
    for provider in Provider:
        credentials = await store.get_credentials(connection.name, provider)
        if credentials is None:
            print(f"{connection.name}: {provider} not connected")
            continue
        if action == "pause" and credentials.status == CredentialStatus.ACTIVE:
            await store.save_credentials(dataclasses.replace(credentials, status=CredentialStatus.PAUSED))
        elif action == "resume" and credentials.status == CredentialStatus.PAUSED:
            await connect(store, dataclasses.replace(credentials, status=CredentialStatus.ACTIVE))
        elif action == "resume" and credentials.status == CredentialStatus.REVOKED:
            state = await _state(store, connection.name, provider)
            print(f"{connection.name}: {provider} {state}: hsqbo connect {provider} --name {connection.name}")
            continue
        elif action == "disconnect":
            await store.save_credentials(Credentials(
                connection=connection.name, provider=provider, access_token="", refresh_token="",
                extra={key: value for key, value in credentials.extra.items() if key != MISSING_SCOPES},
                status=CredentialStatus.REVOKED,
            ))  # fmt: skip
        print(f"{connection.name}: {provider} {await _state(store, connection.name, provider)}")

"""`hsqbo connect hubspot|quickbooks`: connect an account from a terminal, without copying any id.

    hsqbo connect hubspot --name acme       # prints HubSpot's consent URL; paste back the address it sends you to
    hsqbo connect quickbooks --name acme    # the same at Intuit; the second half adds `acme` to the sync rules
    hsqbo connect hubspot --name acme --private-app-token -     # a private app's token, read from stdin

The portal id comes from HubSpot's token answer (`hub_id`; the account details for a private-app token), the realm
id from Intuit's redirect (`realmId`); `_flow.py` says how the connection is stored. Off a terminal: `--print-url`
prints the consent URL and stops, `--redirect-url` then takes the address instead of stdin (the state is signed,
valid 10 minutes). Afterwards the
HubSpot app's webhook subscriptions are checked (`_checks.py`) and Intuit's webhook entities listed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.connect import _checks
from services.connect._flow import (
    ConnectError,
    authorize_code,
    authorize_private_app,
    check_state,
    consent_url,
    current_sync,
    now,
    read_redirect,
    record,
    signed_state,
    state_key,
)
from services.status._connect import SCOPES
from shared.clients import AiohttpTransport
from shared.config import Settings, load_settings
from shared.domain import Provider
from shared.logging import configure_logging
from shared.store import open_store
from shared.syncconfig import SyncSettings

DEFAULT_NAME = "main"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("provider", choices=[str(p) for p in Provider], help="the account to connect")
    parser.add_argument("--name", help=f"the connection (default: the only one configured, else {DEFAULT_NAME!r})")
    parser.add_argument("--redirect-uri", help="where the provider sends you back; registered on the app (default: "
                        "HSQBO_OAUTH_REDIRECT_BASE_URL + /oauth/callback/<provider>)")  # fmt: skip
    parser.add_argument("--redirect-url", help="the address the browser was sent back to (else read from stdin)")
    parser.add_argument("--print-url", action="store_true", help="print the consent URL and stop (then --redirect-url)")
    parser.add_argument("--private-app-token", metavar="TOKEN", help="HubSpot private-app token ('-': read stdin)")


def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    settings = load_settings()
    settings.require("encryption_key")  # before the code is spent: the tokens are stored encrypted
    sync = current_sync(settings)
    provider = Provider(args.provider)
    if args.private_app_token and provider != Provider.HUBSPOT:
        raise SystemExit("hsqbo connect: --private-app-token is for HubSpot private apps only")
    name = args.name or (sync.connection[0].name if len(sync.connection) == 1 else DEFAULT_NAME)
    try:
        asyncio.run(_connect(args, settings, sync, provider, name))
    except ConnectError as exc:
        raise SystemExit(f"hsqbo connect: {exc}") from None


def redirect_uri(settings: Settings, provider: Provider, given: str | None) -> str:
    return given or f"{str(settings.oauth_redirect_base_url).rstrip('/')}/oauth/callback/{provider}"


async def _connect(
    args: argparse.Namespace, settings: Settings, sync: SyncSettings, provider: Provider, name: str
) -> None:
    if args.private_app_token:
        token = sys.stdin.readline().strip() if args.private_app_token == "-" else args.private_app_token
        authorization = await authorize_private_app(settings, token)
    else:
        uri = redirect_uri(settings, provider, args.redirect_uri)
        key = state_key(settings, provider)
        if args.redirect_url:
            answer = args.redirect_url
        elif args.print_url:
            state = signed_state(key, name, provider, now())
            print(consent_url(settings, provider, scope=SCOPES[provider], redirect_uri=uri, state=state))
            return
        else:
            state = signed_state(key, name, provider, now())
            print("Open this address, approve access, then paste the address your browser is sent back to:")
            print(consent_url(settings, provider, scope=SCOPES[provider], redirect_uri=uri, state=state), flush=True)
            print("redirect URL> ", end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline()
        redirect = read_redirect(answer)
        check_state(key, redirect.state, name, provider, now())
        authorization = await authorize_code(settings, provider, code=redirect.code, redirect_uri=uri,
                                             realm_id=redirect.realm_id)  # fmt: skip
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        recorded = await record(settings, store, sync, name, authorization)
    for line in recorded.lines(settings.config):
        print(line)
    if provider == Provider.HUBSPOT:
        async with AiohttpTransport.from_settings(settings) as transport:
            problems = await _checks.subscription_problems(settings, current_sync(settings), transport)
        for problem in problems:
            print(problem)
        if not problems:
            print("HubSpot webhook subscriptions: every one hsqbo needs is there")
    else:
        target = f"{str(settings.public_url).rstrip('/')}/webhooks/intuit" if settings.public_url else (
            "https://<your host>/webhooks/intuit")  # fmt: skip
        print(f"Intuit has no API for webhook settings: in its developer portal (Webhooks) send to {target} and "
              f"enable {_checks.intuit_entities()}")  # fmt: skip

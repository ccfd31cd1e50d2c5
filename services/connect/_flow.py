"""Making a connection from the OAuth answer, shared by `hsqbo connect` and the status page's "Connect".

A connection is one `[[connection]]` of the sync rules file (`HSQBO_CONFIG`) plus its two credentials in the store.
Each half is connected on its own (`hsqbo connect hubspot`, then `hsqbo connect quickbooks`, same `--name`):

- its tokens are stored under the connection's name with the account they belong to (`extra["account_id"]`:
  HubSpot's `hub_id` from the token answer or, for a private-app token, `portalId` from the account details; QBO's
  `realmId` from the redirect);
- a connection already in the sync rules must be that account (tokens of another portal or company are refused and
  not stored: syncing into the wrong books is worse than not syncing);
- a new name is added to the sync rules once both halves are stored: a `[[connection]]` block with the two ids, today
  as the setup date and every object at its recommended defaults, appended to the file (the rest of the file is left
  as it was; edit the block afterwards). The portal's currency is read from HubSpot at run time, so the block names
  it in a comment only (`hubspot_currency` set is an assertion: a different portal currency is a config error).
  Workers, pollers and the status page read the file at start: restart them to sync the new connection.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse
from pathlib import Path

from shared.clients import AiohttpTransport, HubSpotClient, HubSpotOAuth, MemoryTokenStore, QboOAuth, StaticToken
from shared.config import Settings, secret
from shared.credentials import Reconnecting, connect
from shared.domain import Provider
from shared.errors import ApiError, HsqboError, Unauthorized
from shared.store import Credentials, CredentialStatus
from shared.syncconfig import ConnectionSettings, SyncSettings, load_sync_settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STATE_SECONDS = 600.0
LABEL = {Provider.HUBSPOT: "HubSpot portal", Provider.QUICKBOOKS: "QuickBooks company"}


class ConnectError(HsqboError):
    """The connect flow could not finish; the message says why, for the operator."""


@dataclasses.dataclass(frozen=True, slots=True)
class Authorization:
    """What a provider's OAuth answer (or a private-app token) says: whose account, and the tokens to use."""

    provider: Provider
    account_id: str
    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)  # "" for a HubSpot private-app token
    expires_at: float | None = None
    refresh_expires_at: float | None = None
    currency: str | None = None  # HubSpot's company currency


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded:
    name: str
    provider: Provider
    account_id: str
    added: ConnectionSettings | None = None  # the block just appended to the sync rules
    waiting_for: Provider | None = None  # the half still to connect before the connection exists

    def lines(self, config: Path | None) -> list[str]:
        said = [f"{self.name}: {LABEL[self.provider]} {self.account_id} connected"]
        if self.waiting_for is not None:
            said.append(f"next: hsqbo connect {self.waiting_for} --name {self.name}")
        if self.added is not None:
            said.append(
                f"{self.name} added to {config} (HubSpot portal {self.added.hubspot_portal_id}, QuickBooks company "
                f"{self.added.qbo_realm_id}, setup date {self.added.setup_date}, recommended defaults): edit it "
                "there, then restart the worker, the poller and the status page"
            )
        return said


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConnectError(f"{name!r} is not a connection name: letters, digits, '_', '.', '-' (at most 64)")
    return name


def client_id(settings: Settings, provider: Provider) -> str:
    prefix = "qbo" if provider == Provider.QUICKBOOKS else "hubspot"
    value = getattr(settings, f"{prefix}_client_id")
    if not value:
        raise ConnectError(f"HSQBO_{prefix.upper()}_CLIENT_ID is not set: no app to connect with")
    return str(value)


def consent_url(settings: Settings, provider: Provider, *, scope: str, redirect_uri: str, state: str) -> str:
    """The provider's consent screen for our app; it sends the operator back to `redirect_uri`."""
    query = {"client_id": client_id(settings, provider), "redirect_uri": redirect_uri, "scope": scope, "state": state}
    if provider == Provider.QUICKBOOKS:
        query["response_type"] = "code"
    base = str(settings.qbo_authorize_url if provider == Provider.QUICKBOOKS else settings.hubspot_authorize_url)
    return f"{base}{'&' if '?' in base else '?'}{urllib.parse.urlencode(query)}"


def signed_state(key: str, name: str, provider: Provider, now: float) -> str:
    """A state that needs no memory: the connection, the provider and the time, signed with the app's secret."""
    issued = str(int(now))
    mac = hmac.new(key.encode(), f"{name}|{provider}|{issued}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{issued}.{mac}"


def check_state(key: str, state: str, name: str, provider: Provider, now: float) -> None:
    issued, _, _ = state.partition(".")
    fresh = issued.isascii() and issued.isdigit() and 0 <= now - int(issued) <= STATE_SECONDS
    expected = signed_state(key, name, provider, float(issued)) if fresh else ""
    if not fresh or not hmac.compare_digest(state.encode(), expected.encode()):
        raise ConnectError("that redirect is not from this connect request, or is over 10 minutes old: start again")


@dataclasses.dataclass(frozen=True, slots=True)
class Redirect:
    code: str
    state: str
    realm_id: str | None


def read_redirect(url: str) -> Redirect:
    """The code, state and (QBO) realmId of the address the provider sent the operator back to."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url.strip()).query))
    if "error" in query:
        raise ConnectError(f"the provider did not authorize: {query['error']}")
    if not query.get("code"):
        raise ConnectError("that address has no authorization code: paste the whole address the browser shows")
    return Redirect(query["code"], query.get("state", ""), query.get("realmId"))


async def authorize_code(
    settings: Settings, provider: Provider, *, code: str, redirect_uri: str, realm_id: str | None
) -> Authorization:
    """Trade an authorization code for tokens; the account is HubSpot's `hub_id` or QBO's `realmId`."""
    if provider == Provider.QUICKBOOKS and not realm_id:
        raise ConnectError("the redirect has no realmId: it is not from QuickBooks' consent screen")
    oauth_class = QboOAuth if provider == Provider.QUICKBOOKS else HubSpotOAuth
    async with AiohttpTransport.from_settings(settings) as transport:
        oauth = oauth_class.from_settings(str(provider), settings, store=MemoryTokenStore(), transport=transport)
        try:
            tokens = await oauth.exchange_code(code, redirect_uri)
        except ApiError as exc:
            raise ConnectError(f"{provider} refused the authorization code: {exc}") from exc
        account_id = realm_id if provider == Provider.QUICKBOOKS else tokens.account_id
        if not account_id:
            raise ConnectError(f"{provider}'s token answer does not say which account it is for")
        currency = None
        if provider == Provider.HUBSPOT:
            currency = await _hubspot_currency(settings, transport, tokens.access_token)
    return Authorization(provider, str(account_id), tokens.access_token, tokens.refresh_token, tokens.expires_at,
                         tokens.refresh_expires_at, currency)  # fmt: skip


async def authorize_private_app(settings: Settings, token: str) -> Authorization:
    """A HubSpot private-app token: its portal from the account details (the token itself never expires)."""
    async with AiohttpTransport.from_settings(settings) as transport:
        client = HubSpotClient(str(settings.hubspot_base_url), StaticToken(token), transport)
        try:
            account = await client.account_settings()
        except Unauthorized as exc:
            raise ConnectError("HubSpot refused the private-app token (rotated, deleted or mistyped)") from exc
        except (ApiError, KeyError) as exc:
            raise ConnectError(f"HubSpot did not say which portal the token is for: {exc}") from exc
    return Authorization(Provider.HUBSPOT, account.portal_id, token, "", None, None,
                         account.company_currency)  # fmt: skip


async def _hubspot_currency(settings: Settings, transport: AiohttpTransport, token: str) -> str | None:
    try:
        account = await HubSpotClient(str(settings.hubspot_base_url), StaticToken(token), transport).account_settings()
    except (ApiError, KeyError):
        return None  # the currency is a default the operator can edit; the connection does not hinge on it
    return account.company_currency


def refuse_other_account(connection: ConnectionSettings, provider: Provider, account_id: str) -> None:
    ours = connection.qbo_realm_id if provider == Provider.QUICKBOOKS else connection.hubspot_portal_id
    if account_id != ours:
        raise ConnectError(f"that is {LABEL[provider]} {account_id}; {connection.name} syncs {ours}")


async def record(
    settings: Settings, store: Reconnecting, sync: SyncSettings, name: str, authorization: Authorization,
    *, today: dt.date | None = None,
) -> Recorded:  # fmt: skip
    """Store the authorization as `name`'s credentials at its provider; add the connection to the sync rules once
    both halves are stored. See the module docstring."""
    provider = authorization.provider
    existing = sync.named(check_name(name))
    if existing is not None:
        refuse_other_account(existing, provider, authorization.account_id)
    elif settings.config is None:
        raise ConnectError("HSQBO_CONFIG is not set: name the sync rules file the new connection is added to")
    extra: dict[str, object] = {"account_id": authorization.account_id}
    if authorization.currency:
        extra["currency"] = authorization.currency
    await connect(store, Credentials(
        connection=name, provider=provider, access_token=authorization.access_token,
        refresh_token=authorization.refresh_token, expires_at=authorization.expires_at,
        refresh_expires_at=authorization.refresh_expires_at, extra=extra,
    ))  # fmt: skip
    if existing is not None:
        return Recorded(name, provider, authorization.account_id)
    other = Provider.QUICKBOOKS if provider == Provider.HUBSPOT else Provider.HUBSPOT
    half = await store.get_credentials(name, other)
    if half is None or half.status == CredentialStatus.REVOKED or "account_id" not in half.extra:
        return Recorded(name, provider, authorization.account_id, waiting_for=other)
    hubspot = extra if provider == Provider.HUBSPOT else half.extra  # what each half's answer said
    qbo = half.extra if provider == Provider.HUBSPOT else extra
    connection = ConnectionSettings(
        name=name,
        hubspot_portal_id=str(hubspot["account_id"]),
        qbo_realm_id=str(qbo["account_id"]),
        setup_date=today or dt.datetime.now(dt.UTC).date(),
    )
    assert settings.config is not None
    currency = hubspot.get("currency")
    add_connection(settings.config, connection, currency=str(currency) if currency else None)
    return Recorded(name, provider, authorization.account_id, added=connection)


def current_sync(settings: Settings) -> SyncSettings:
    """The sync rules as they are; none yet when HSQBO_CONFIG names a file `connect` has still to create."""
    if settings.config is not None and not settings.config.exists():
        return SyncSettings()
    return load_sync_settings(settings.config)


def connection_block(connection: ConnectionSettings, *, currency: str | None = None) -> str:
    """The `[[connection]]` TOML of a new connection: its ids and dates; every object at its defaults. `currency`, the
    portal's company currency when connected, is shown commented out: hsqbo reads it from HubSpot."""
    shown = (
        [f"# hubspot_currency = {json.dumps(currency)}  # read from HubSpot at run time; set it only to assert it"]
        if currency else []
    )  # fmt: skip
    return "\n".join((
        "",
        f"[[connection]]  # added by `hsqbo connect` on {connection.setup_date}: edit freely (README, Sync rules)",
        f"name = {json.dumps(connection.name)}",
        f"hubspot_portal_id = {json.dumps(connection.hubspot_portal_id)}",
        f"qbo_realm_id = {json.dumps(connection.qbo_realm_id)}",
        f"setup_date = {connection.setup_date.isoformat()}",
        *shown,
        '# qbo_timezone = "America/Los_Angeles"  # the QBO company zone: exact dates (else QuickBooks clock offset)',
        "# [connection.contacts], [connection.products], [connection.invoices], [connection.payments]: the recommended",
        "# defaults apply until you add a table here.",
        "",
    ))  # fmt: skip


def add_connection(path: Path, connection: ConnectionSettings, *, currency: str | None = None) -> None:
    """Append the connection's block to the sync rules file (created if absent), keeping the file valid: the new
    text replaces the old in one rename, and only once it reads back with the connection in it."""
    before = path.read_text() if path.exists() else ""
    separator = "" if before.endswith("\n") or not before else "\n"
    text = before + separator + connection_block(connection, currency=currency)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_text(text)
    try:
        if load_sync_settings(staged).named(connection.name) is None:
            raise ConnectError(f"could not add {connection.name} to {path}")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def state_key(settings: Settings, provider: Provider) -> str:
    """The secret that signs the CLI's state: the provider's client secret."""
    value = settings.qbo_client_secret if provider == Provider.QUICKBOOKS else settings.hubspot_client_secret
    if value is None:
        prefix = "QBO" if provider == Provider.QUICKBOOKS else "HUBSPOT"
        raise ConnectError(f"HSQBO_{prefix}_CLIENT_SECRET is not set: no app to connect with")
    return secret(value)


def now() -> float:
    return time.time()

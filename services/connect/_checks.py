"""What `hsqbo config check` (and `hsqbo connect`) verify, one line per problem: the settings, the sync rules, the
broker, the store, each connection's two accounts (reached with its stored credentials, their company settings read
and checked against the connection's as the worker does: `hubspot_currency`, a QBO time zone) and the HubSpot app's
webhook subscriptions. Intuit has no API for its webhook settings, so its entities are only listed. Notes (not
problems) say what works but could be better: a QBO company whose zone is known only from its clock's offset.

Problems never carry a secret: URLs are shown without their user and password, tokens not at all.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

import aio_pika
import aiohttp

from services.connect import _subscriptions
from shared.clients import AiohttpTransport, HubSpotClient, QboClient, Request, Transport
from shared.clients._errors import hubspot_error
from shared.company import Company, CompanySettingsError, HubSpotAccount, QboCompany, clock_offset_name, zone
from shared.config import Settings, secret
from shared.credentials import MISSING_SCOPES, grant_hint, token_source
from shared.domain import Provider
from shared.errors import (
    ApiError,
    AuthRevoked,
    ConfigError,
    Forbidden,
    MissingScopes,
    TransportError,
    Unauthorized,
)
from shared.store import CredentialStatus, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings, load_sync_settings

# What the stack cannot run without (receiver, worker, poller): each missing one is a problem.
REQUIRED = (
    "hubspot_client_secret", "intuit_verifier_token", "encryption_key", "config", "hubspot_app_id",
    "qbo_client_id", "qbo_client_secret",
)  # fmt: skip
# QBO webhook entities and the operations hsqbo acts on: tick these in Intuit's developer portal (Webhooks).
INTUIT_ENTITIES = {
    "Customer": ("Create", "Update", "Delete", "Merge"),
    "Item": ("Create", "Update", "Delete", "Merge"),
    "Invoice": ("Create", "Update", "Delete", "Void"),
    "Payment": ("Create", "Update", "Delete", "Void"),
}
BROKER_TIMEOUT_SECONDS = 5.0


def without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def intuit_entities() -> str:
    return "; ".join(f"{entity} ({', '.join(operations)})" for entity, operations in INTUIT_ENTITIES.items())


def settings_problems(settings: Settings) -> list[str]:
    problems = [
        f"HSQBO_{name.upper()} is not set" for name in REQUIRED if getattr(settings, name) in (None, "")
    ]  # fmt: skip
    if settings.public_url is not None and settings.public_url.scheme != "https":
        host = settings.public_url.host or ""
        if host not in ("localhost", "127.0.0.1"):
            problems.append(f"HSQBO_PUBLIC_URL {settings.public_url} is not https: HubSpot and Intuit call https only")
    return problems


def sync_problems(settings: Settings) -> tuple[SyncSettings, list[str]]:
    try:
        sync = load_sync_settings(settings.config)
    except ConfigError as exc:
        return SyncSettings(), [str(exc)]
    if settings.config is not None and not sync.connection:
        return sync, [f"{settings.config} has no connection: hsqbo connect hubspot --name NAME"]
    return sync, []


async def broker_problems(settings: Settings) -> list[str]:
    try:
        connection = await aio_pika.connect(settings.rabbitmq_url, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure to connect is the problem to report
        return [f"broker {without_password(settings.rabbitmq_url)} unreachable: {type(exc).__name__}"]
    await connection.close()
    return []


async def connection_problems(
    settings: Settings,
    store: Store,
    connection: ConnectionSettings,
    transport: Transport,
    notes: list[str] | None = None,
) -> list[str]:
    """Both accounts of one connection, reached with its stored credentials (a cheap read and the company settings
    each), then their settings checked against the connection's; notes are appended to `notes`."""
    problems = []
    hubspot_account: HubSpotAccount | None = None
    qbo_company: QboCompany | None = None
    for provider in (Provider.HUBSPOT, Provider.QUICKBOOKS):
        credentials = await store.get_credentials(connection.name, provider)
        name = "HubSpot" if provider == Provider.HUBSPOT else "QuickBooks"
        account = connection.hubspot_portal_id if provider == Provider.HUBSPOT else connection.qbo_realm_id
        if credentials is None:
            problems.append(
                f"{connection.name}: {name} not connected: hsqbo connect {provider} --name {connection.name}"
            )
            continue
        if credentials.status == CredentialStatus.REVOKED and MISSING_SCOPES in credentials.extra:
            problems.append(
                f"{connection.name}: {name} paused: {grant_hint(credentials.extra[MISSING_SCOPES])} "
                f"(hsqbo connect {provider} --name {connection.name})"
            )
            continue
        if credentials.status != CredentialStatus.ACTIVE:
            problems.append(f"{connection.name}: {name} credentials {credentials.status}")
            continue
        try:
            source = await token_source(settings, store, connection=connection.name, provider=provider,
                                        transport=transport)  # fmt: skip
            if provider == Provider.HUBSPOT:
                hubspot = HubSpotClient(str(settings.hubspot_base_url), source, transport)
                await hubspot.search("contacts", limit=1)
                hubspot_account = await hubspot.account_settings()
            else:
                qbo = QboClient(str(settings.qbo_base_url), account, source, transport)
                await qbo.count("Customer")
                qbo_company = await qbo.company_settings()
        except (AuthRevoked, Unauthorized):
            problems.append(
                f"{connection.name}: {name} token revoked or expired (account {account}): "
                f"hsqbo connect {provider} --name {connection.name}"
            )
        except MissingScopes as exc:
            problems.append(
                f"{connection.name}: {name} token lacks scopes (account {account}): {grant_hint(exc.scopes)} "
                f"(hsqbo connect {provider} --name {connection.name})"
            )
        except Forbidden as exc:
            problems.append(f"{connection.name}: {name} refused access (account {account}): {exc}")
        except ApiError as exc:
            problems.append(f"{connection.name}: {name} API unreachable: {type(exc).__name__}: {exc}")
        except (KeyError, ValueError) as exc:  # settings without a home or company currency
            problems.append(f"{connection.name}: {name} company settings unreadable: {exc}")
    if hubspot_account is not None and qbo_company is not None:
        try:
            company = Company.resolve(connection, qbo_company, hubspot_account)
            company.qbo_zone  # noqa: B018 (raises when unknown)
        except CompanySettingsError as exc:
            problems.append(f"{connection.name}: {exc}")
        else:
            offset = qbo_company.clock_offset
            if notes is not None and zone(company.qbo_zone_name) is None and offset is not None:
                notes.append(
                    f"{connection.name}: dates use QuickBooks' clock offset {clock_offset_name(offset)} (QuickBooks "
                    f"reports no time zone); set qbo_timezone to follow daylight saving exactly"
                )
    return problems


async def app_subscriptions(settings: Settings, transport: Transport) -> list[_subscriptions.Subscription]:
    """The HubSpot app's webhook subscriptions (`GET /webhooks/v3/{appId}/subscriptions`, developer API key)."""
    settings.require("hubspot_app_id", "hubspot_developer_api_key")
    query = urllib.parse.urlencode({"hapikey": secret(settings.hubspot_developer_api_key)})
    app_id = urllib.parse.quote(str(settings.hubspot_app_id), safe="")
    url = f"{str(settings.hubspot_base_url).rstrip('/')}/webhooks/v3/{app_id}/subscriptions?{query}"
    try:
        response = await transport.send(Request("GET", url, {"Accept": "application/json"}))
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:  # their text may carry the URL, so the key: not shown
        raise TransportError(
            f"HubSpot's webhooks API unreachable: {type(exc).__name__}", provider=Provider.HUBSPOT
        ) from None
    if response.status != 200:
        raise hubspot_error(response)
    found = (_subscriptions.from_api(result) for result in response.json().get("results", ()))
    return [subscription for subscription in found if subscription is not None]


async def subscription_problems(settings: Settings, sync: SyncSettings, transport: Transport) -> list[str]:
    """One line per webhook subscription the app lacks (or has paused)."""
    try:
        present = await app_subscriptions(settings, transport)
    except ConfigError as exc:
        return [f"cannot read the HubSpot app's webhook subscriptions: {exc}"]
    except Unauthorized:
        return ["HubSpot refused HSQBO_HUBSPOT_DEVELOPER_API_KEY: cannot read the app's webhook subscriptions"]
    except ApiError as exc:
        return [f"cannot read the HubSpot app's webhook subscriptions (app {settings.hubspot_app_id}): {exc}"]
    gaps = _subscriptions.missing(_subscriptions.required(sync), present)
    return [f"missing HubSpot webhook subscription: {gap}" for gap in gaps]


async def check(settings: Settings, *, connections: Sequence[str] = (), notes: list[str] | None = None) -> list[str]:
    """Every problem `hsqbo config check` finds; empty when the stack can run. Notes go to `notes`."""
    problems = settings_problems(settings)
    sync, found = sync_problems(settings)
    problems += found
    problems += await broker_problems(settings)
    chosen = [c for c in sync.connection if not connections or c.name in connections]
    try:
        store = await open_store(settings.store_url, encryption_key=settings.encryption_key)
    except Exception as exc:  # any failure to open is the problem to report
        return [*problems, f"store {without_password(settings.store_url)} unreachable: {type(exc).__name__}"]
    try:
        async with AiohttpTransport.from_settings(settings) as transport:
            for connection in chosen:
                try:
                    problems += await connection_problems(settings, store, connection, transport, notes)
                except ConfigError as exc:  # no (or the wrong) encryption key: the tokens cannot be read
                    problems.append(f"{connection.name}: {exc}")
            problems += await subscription_problems(settings, sync, transport)
    finally:
        await store.close()
    return problems

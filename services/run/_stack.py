"""The whole stack in one event loop: the receiver, both sandboxes sending it signed webhooks, the store, a worker
and the poller, wired to each other the way a real install is wired to HubSpot and Intuit. `hsqbo run` and the
end-to-end test fixture both start it with `running_stack`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import AnyHttpUrl, SecretStr

from hsqbo_sandbox import RunningSandbox, SandboxApps, SandboxOptions, start_sandbox
from services.poller import Poller
from services.receiver import create_app
from services.status import StatusPage, status_password
from services.worker import Engine, Worker
from shared.asgi import AppServer, serving
from shared.bus import Publisher
from shared.clients import AiohttpTransport
from shared.config import Settings
from shared.connections import ContextFactory
from shared.domain import Provider
from shared.metrics import serve_metrics
from shared.store import Credentials, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings

# Builds the connection between the sandboxes' portal and realm, given their ids.
ConnectionFactory = Callable[[int, str], ConnectionSettings]


@dataclasses.dataclass(frozen=True, slots=True)
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 8080  # the receiver; every port: 0 = any free port (tests)
    hubspot_port: int = 8091
    qbo_port: int = 8092
    status_port: int = 8081  # the status page (loopback unless HSQBO_STATUS_PASSWORD is set)
    metrics_port: int | None = None  # the process's /metrics, /healthz, /readyz (`hsqbo run`: 9100); None: not served
    seed: bool = True  # demo data in a new portal and realm (unless the state file has some)
    state_file: Path | None = None  # the sandboxes' data: loaded at start when it exists, written at stop
    retry_scale: float = 1.0  # multiplies the sandboxes' webhook retry delays
    sandbox_latency_ms: float = 0.0  # the sandboxes answer every API call after this, ± the jitter (SandboxOptions)
    sandbox_latency_jitter_ms: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class RunningStack:
    settings: Settings  # as the processes see them: generated app secrets, API and OAuth URLs on the sandboxes
    sandbox: RunningSandbox
    receiver: AppServer
    store: Store
    worker: Worker
    connection: ConnectionSettings
    status: AppServer
    metrics_url: str | None  # the process's /metrics, when served

    @property
    def portal_id(self) -> int:
        return int(self.connection.hubspot_portal_id)

    @property
    def realm_id(self) -> str:
        return self.connection.qbo_realm_id


def with_local_app(settings: Settings) -> Settings:
    """`settings` with each unset OAuth app secret, id and the encryption key generated for this process only
    (kept in memory), so the sandboxes, the receiver and the worker agree on them."""
    generated: dict[str, Any] = {
        "hubspot_client_secret": SecretStr(secrets.token_hex(16)),
        "intuit_verifier_token": SecretStr(secrets.token_hex(16)),
        "hubspot_client_id": "hsqbo-local",
        "hubspot_app_id": str(secrets.randbelow(10**6)),
        "qbo_client_id": "hsqbo-local-qbo",
        "qbo_client_secret": SecretStr(secrets.token_hex(16)),
        "encryption_key": SecretStr(Fernet.generate_key().decode()),
    }
    unset = {name: value for name, value in generated.items() if getattr(settings, name) in (None, "")}
    return settings.model_copy(update=unset)


def sandbox_apps(settings: Settings) -> SandboxApps:
    """The sandboxes' apps as `settings` names them (run `with_local_app` first): the emulators and hsqbo agree on
    the client ids and secrets, the app id, the developer API key and the verifier token, as an operator copies them
    from the providers' developer portals. Unset ones keep the sandbox's defaults."""
    values = {
        "hubspot_client_id": settings.hubspot_client_id,
        "hubspot_client_secret": settings.hubspot_client_secret,
        "hubspot_app_id": settings.hubspot_app_id,
        "hubspot_developer_api_key": settings.hubspot_developer_api_key,
        "qbo_client_id": settings.qbo_client_id,
        "qbo_client_secret": settings.qbo_client_secret,
        "intuit_verifier_token": settings.intuit_verifier_token,
    }
    plain = {name: v.get_secret_value() if isinstance(v, SecretStr) else v for name, v in values.items()}
    return SandboxApps(**{name: value for name, value in plain.items() if value})


def pointed_at(settings: Settings, sandbox: RunningSandbox) -> Settings:
    """`settings` with the API and OAuth URLs of both providers on the sandboxes."""
    hubspot, qbo = sandbox.hubspot_server.url, sandbox.qbo_server.url
    return settings.model_copy(
        update={
            "hubspot_base_url": AnyHttpUrl(hubspot),
            "hubspot_authorize_url": AnyHttpUrl(hubspot + "/oauth/authorize"),
            "hubspot_token_url": AnyHttpUrl(hubspot + "/oauth/v1/token"),
            "qbo_base_url": AnyHttpUrl(qbo),
            "qbo_authorize_url": AnyHttpUrl(qbo + "/connect/oauth2"),
            "qbo_token_url": AnyHttpUrl(qbo + "/oauth2/v1/tokens/bearer"),
        }
    )


def local_connection(name: str, portal_id: int, realm_id: str, **objects: Any) -> ConnectionSettings:
    """A connection set up yesterday (so whatever the sandboxes hold counts as new), with object settings
    overridden by `objects` (e.g. contacts={...})."""
    fields: dict[str, Any] = {
        "name": name,
        "hubspot_portal_id": str(portal_id),
        "qbo_realm_id": realm_id,
        "setup_date": dt.date.today() - dt.timedelta(days=1),
        **objects,
    }
    return ConnectionSettings.model_validate(fields)


async def save_sandbox_tokens(store: Store, sandbox: RunningSandbox, connection: ConnectionSettings) -> None:
    """Store tokens the sandboxes issue as the connection's credentials, as after both OAuth installs."""
    hubspot = sandbox.hubspot.issue_token(int(connection.hubspot_portal_id))
    qbo = sandbox.qbo.issue_token(connection.qbo_realm_id)
    now = time.time()
    for provider, access, refresh, expires_in in (
        (Provider.HUBSPOT, hubspot.access_token, hubspot.refresh_token or "", hubspot.expires_in),
        (Provider.QUICKBOOKS, qbo["access_token"], qbo["refresh_token"], qbo["expires_in"]),
    ):
        await store.save_credentials(
            Credentials(
                connection=connection.name,
                provider=provider,
                access_token=access,
                refresh_token=refresh,
                expires_at=now + expires_in,
            )
        )


def _sandbox_accounts(sandbox: RunningSandbox) -> tuple[int, str]:
    """The sandboxes' first portal and realm (seeded or loaded), each created empty when there is none."""
    portal_id = next((account.portal_id for account in sandbox.hubspot.accounts), None)
    realm_id = next(iter(sandbox.qbo.realms), None)
    return (
        sandbox.hubspot.create_portal() if portal_id is None else portal_id,
        sandbox.qbo.create_realm().realm_id if realm_id is None else realm_id,
    )


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, options: StackOptions, connection: ConnectionFactory
) -> AsyncIterator[RunningStack]:
    """Serve the receiver, start the sandboxes (webhooks to the receiver), connect their first portal and realm with
    `connection(portal_id, realm_id)`, start a worker and the poller; stop them all (sandbox state saved) on exit."""
    settings = with_local_app(settings)
    async with serving(create_app(settings), host=options.host, port=options.port) as receiver:
        sandbox = await start_sandbox(
            SandboxOptions(
                host=options.host,
                hubspot_port=options.hubspot_port,
                qbo_port=options.qbo_port,
                hubspot_webhook_url=receiver.url + "/webhooks/hubspot",
                qbo_webhook_url=receiver.url + "/webhooks/intuit",
                state_file=options.state_file,
                seed=options.seed,
                retry_scale=options.retry_scale,
                latency_ms=options.sandbox_latency_ms,
                latency_jitter_ms=options.sandbox_latency_jitter_ms,
                apps=sandbox_apps(settings),
            )
        )
        try:
            settings = pointed_at(settings, sandbox)
            linked = connection(*_sandbox_accounts(sandbox))
            sync = SyncSettings(connection=[linked])
            async with (
                open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
                AiohttpTransport.from_settings(settings) as transport,
            ):
                await save_sandbox_tokens(store, sandbox, linked)
                contexts = ContextFactory(settings, store, transport)
                worker = Worker(settings, sync, store, Engine(store, contexts, sync))
                await worker.start()
                publisher = Publisher(settings.rabbitmq_url, confirm_timeout=settings.publish_timeout_seconds)
                await publisher.start()
                poller = Poller(settings, sync, store, contexts, publisher.publish)
                stop_polling = asyncio.Event()
                polling = asyncio.create_task(poller.run(stop_polling))
                page = StatusPage(settings, sync, store, contexts=contexts).app(status_password(settings, options.host))
                metrics = serve_metrics(options.host, options.metrics_port)
                metrics_url = None if metrics is None else f"http://{options.host}:{metrics.server_port}/metrics"
                try:
                    async with serving(page, host=options.host, port=options.status_port) as status:
                        yield RunningStack(settings, sandbox, receiver, store, worker, linked, status, metrics_url)
                finally:
                    if metrics is not None:
                        metrics.shutdown()
                        metrics.server_close()
                    stop_polling.set()
                    await polling
                    await publisher.close()
                    await worker.stop()
        finally:
            await sandbox.stop()

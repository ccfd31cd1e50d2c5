"""The whole stack on loopback for end-to-end tests: both sandboxes sending real signed webhooks to the receiver,
the real RabbitMQ node, a file store and an in-process worker. `stack.settle()` waits until every webhook is
delivered, every queue is empty and no work is pending."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import aio_pika
import pytest

from hsqbo_sandbox import RunningSandbox, SandboxOptions, start_sandbox
from hsqbo_sandbox.hubspot._schema import BY_NAME
from services.receiver import create_app
from services.review import _cli as review_cli
from services.run import local_connection, pointed_at, sandbox_apps, save_sandbox_tokens, with_local_app
from services.worker import Engine, Worker
from shared.asgi import AppServer, serving
from shared.broker import (
    APPLY_QUEUE,
    BULK_CHANGES_QUEUE,
    CHANGES_QUEUE,
    DEAD_QUEUE,
    bulk_apply_queue,
    delay_queue,
)
from shared.clients import AiohttpTransport
from shared.config import Settings
from shared.connections import ContextFactory
from shared.store import Store, open_store
from shared.syncconfig import SyncSettings
from tests.conftest import Broker

CONNECTION = "acme"

T = TypeVar("T")


class Stack:
    def __init__(
        self, settings: Settings, sync: SyncSettings, sandbox: RunningSandbox, receiver: AppServer, store: Store,
        worker: Worker, portal_id: int, realm_id: str,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.sync = sync
        self.sandbox = sandbox
        self.receiver = receiver
        self.store = store
        self.worker = worker
        self.portal_id = portal_id  # the accounts of the connection this Stack acts in (see `connection`)
        self.realm_id = realm_id

    def connection(self, name: str) -> Stack:
        """The same stack, acting in and looking at connection `name`'s portal and realm."""
        [settings] = [connection for connection in self.sync.connection if connection.name == name]
        return Stack(
            self.settings, self.sync, self.sandbox, self.receiver, self.store, self.worker,
            int(settings.hubspot_portal_id), settings.qbo_realm_id,
        )  # fmt: skip

    # --- acting as users ----------------------------------------------------------------------------------------

    def hubspot_edit(self, object_type: str, action: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.sandbox.hubspot.user_edit(
            portal_id=self.portal_id, object_type=object_type, action=action, **fields
        )
        return result

    def qbo_edit(self, entity: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self.sandbox.qbo.user_edit(self.realm_id, entity, action, data).body
        return body

    # --- looking --------------------------------------------------------------------------------------------------

    def qbo_entities(self, entity: str) -> list[dict[str, Any]]:
        """Every record of `entity` in the realm, as the API returns it (inactive ones included)."""
        realm = self.sandbox.qbo.realms[self.realm_id]
        return [dict(record.data) for record in realm.records[entity].values()]

    def hubspot_records(self, object_type: str) -> list[dict[str, str]]:
        """The properties of every live record of `object_type` ("contacts") in the portal."""
        portal = self.sandbox.hubspot.accounts.get(self.portal_id).portal
        kind = BY_NAME[object_type]
        return [{"id": str(record.id), **record.properties} for record in portal.live(kind).values()]

    def api_writes(self) -> dict[str, int]:
        """Writes hsqbo made to each API (control-surface calls and reads excluded)."""

        def writes(log: Any) -> int:
            return sum(
                1 for r in log.list() if r.method in ("POST", "PATCH", "PUT", "DELETE")
                and not r.path.startswith("/_sandbox") and "/query" not in r.path and "/search" not in r.path
                and "/batch/read" not in r.path and "oauth" not in r.path
            )  # fmt: skip

        return {"hubspot": writes(self.sandbox.hubspot.requests), "quickbooks": writes(self.sandbox.qbo.requests)}

    def clear_request_logs(self) -> None:
        self.sandbox.hubspot.requests.clear()
        self.sandbox.qbo.requests.clear()

    # --- waiting --------------------------------------------------------------------------------------------------

    async def queue_depth(self) -> int:
        connection = await aio_pika.connect(self.settings.rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            names = [CHANGES_QUEUE, BULK_CHANGES_QUEUE, APPLY_QUEUE]
            names += [bulk_apply_queue(connection.name) for connection in self.sync.connection]
            names += [delay_queue(delay) for delay in self.settings.retry_delays]
            total = 0
            for name in names:
                queue = await channel.declare_queue(name, passive=True)
                total += queue.declaration_result.message_count or 0
            return total

    async def settle(self, within: float = 30.0) -> None:
        """Until two consecutive looks find nothing in flight anywhere."""
        deadline = time.monotonic() + within
        quiet_looks = 0
        while quiet_looks < 2:
            if time.monotonic() > deadline:
                raise AssertionError("the stack did not settle in time")
            drained = await self.sandbox.hubspot.webhooks.drain(1.0) and await self.sandbox.qbo.webhooks.drain(1.0)
            pending = await self.store.count_pending()
            busy = not drained or pending or await self.queue_depth()
            quiet_looks = 0 if busy else quiet_looks + 1
            await asyncio.sleep(0.15)


@overload
async def eventually(found: Callable[[], Awaitable[T]], *, within: float = ...) -> T: ...
@overload
async def eventually(found: Callable[[], T], *, within: float = ...) -> T: ...
async def eventually(found: Callable[[], Any], *, within: float = 20.0) -> Any:
    """What `found()` returns (or, for a coroutine function, resolves to) once it is truthy, looked at every 50 ms:
    for what arrives through webhooks and queues, which no single await can wait for."""
    deadline = time.monotonic() + within
    while True:
        result = found()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, f"not reached within {within} s"
        await asyncio.sleep(0.05)


@pytest.fixture
def sync_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Per-object settings for the stack's connection: a test module overrides this fixture, a test parametrizes it
    (`indirect=True`). By default contacts sync both ways without the incumbent's invoice filter."""
    default: dict[str, Any] = {"contacts": {"hubspot_to_qbo": {}}}
    return getattr(request, "param", default)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings of the stack's processes beyond the tests' defaults: a test parametrizes it (`indirect=True`)."""
    return getattr(request, "param", {})


@pytest.fixture
def connection_names() -> tuple[str, ...]:
    """The stack's connections, each with a portal and a realm of its own; `stack` acts in the first."""
    return (CONNECTION,)


@pytest.fixture
def in_process_worker() -> bool:
    """Whether the stack runs a worker in the test's process (a module testing worker processes says False)."""
    return True


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The stack's store: a SQLite file (a module testing on Postgres overrides this fixture)."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
async def stack(
    broker: Broker,
    store_url: str,
    sync_overrides: dict[str, Any],
    settings_overrides: dict[str, Any],
    in_process_worker: bool,
    connection_names: tuple[str, ...],
) -> AsyncIterator[Stack]:
    await broker.purge()
    base = with_local_app(
        Settings(
            rabbitmq_url=broker.url,
            store_url=store_url,
            unlinked_settle_seconds=0.2,
            sweep_seconds=2.0,
            retry_delays=(0.2, 0.5, 1.0),
            max_attempts=4,
            **settings_overrides,
        )
    )
    async with serving(create_app(base)) as receiver:
        sandbox = await start_sandbox(
            SandboxOptions(
                hubspot_port=0, qbo_port=0, retry_scale=0.001,
                hubspot_webhook_url=receiver.url + "/webhooks/hubspot",
                qbo_webhook_url=receiver.url + "/webhooks/intuit", apps=sandbox_apps(base),
            )
        )  # fmt: skip
        settings = pointed_at(base, sandbox)
        connections = [
            local_connection(name, sandbox.hubspot.create_portal(), sandbox.qbo.create_realm().realm_id,
                             **sync_overrides)
            for name in connection_names
        ]  # fmt: skip
        sync = SyncSettings(connection=connections)
        try:
            async with (
                open_store(settings.store_url, encryption_key=settings.encryption_key) as store,
                AiohttpTransport.from_settings(settings) as transport,
            ):
                for connection in connections:
                    await save_sandbox_tokens(store, sandbox, connection)
                engine = Engine(store, ContextFactory(settings, store, transport), sync)
                worker = Worker(settings, sync, store, engine)
                if in_process_worker:
                    await worker.start()
                try:
                    first = connections[0]
                    yield Stack(settings, sync, sandbox, receiver, store, worker, int(first.hubspot_portal_id),
                                first.qbo_realm_id)  # fmt: skip
                finally:
                    if in_process_worker:
                        await worker.stop()
        finally:
            await sandbox.stop()
    await broker.purge(CHANGES_QUEUE, BULK_CHANGES_QUEUE, APPLY_QUEUE, DEAD_QUEUE)


async def review(stack: Stack, *argv: str) -> None:
    """`hsqbo review ...` against the stack's store and broker (in this process: the stack's loop runs it)."""
    parser = argparse.ArgumentParser()
    review_cli.configure_parser(parser)
    await review_cli._run(parser.parse_args(list(argv)), stack.settings)

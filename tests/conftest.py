"""Fixtures shared by the whole suite.

Integration tests (marked `integration`) use the private RabbitMQ node that `make test` starts and names in
HSQBO_RABBITMQ_URL; `broker` controls it (stop, start, restart) through `deploy/rabbitmq/node`. Outside `make test`
they are skipped with the reason; under `make test` (HSQBO_REQUIRE_BROKER=1) an unreachable node fails them instead.

The code under test logs at WARNING unless HSQBO_LOG_LEVEL says otherwise: a failing test's captured output then
ends with its own assertion rather than thousands of info lines (a 1,000-change fault run logs every webhook).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq
import pytest
import structlog

from shared.broker import CHANGES_QUEUE, DEAD_QUEUE, declare_topology

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("HSQBO_REFERENCE_DIR", REPO.parent / "shared" / "reference"))


def pytest_configure(config: pytest.Config) -> None:
    level = logging.getLevelNamesMapping()[os.environ.get("HSQBO_LOG_LEVEL", "WARNING").upper()]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`long` tests run in `make soak` only (HSQBO_LONG_TESTS=1): `make test` must stay under 15 minutes, and a
    shorter test there covers the same guarantee."""
    if os.environ.get("HSQBO_LONG_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long: runs in `make soak` (HSQBO_LONG_TESTS=1)")
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(skip)


def reference_vectors() -> list[dict[str, Any]]:
    """The signature vectors beside the repo (`../shared/reference/test-vectors.json`), read at test time."""
    path = REFERENCE / "test-vectors.json"
    if not path.exists():
        pytest.skip(f"reference vectors not found at {path} (set HSQBO_REFERENCE_DIR)")
    vectors: list[dict[str, Any]] = json.loads(path.read_text())["vectors"]
    return vectors


def _node(port: int, *arguments: str) -> None:
    env = {**os.environ, "HSQBO_RABBITMQ_PORT": str(port)}
    subprocess.run([str(REPO / "deploy/rabbitmq/node"), *arguments], check=True, env=env, capture_output=True)


class Broker:
    """The private RabbitMQ node: this session's virtual host on it, and the node's power switch."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = urlsplit(url).port or 5672

    def _node(self, action: str) -> None:
        _node(self.port, action)

    def stop_app(self) -> None:
        """Stop RabbitMQ inside the node: every connection drops, the data stays."""
        self._node("stop-app")

    def start_app(self) -> None:
        self._node("start-app")

    def restart(self) -> None:
        """A full node restart: only what RabbitMQ wrote durably survives."""
        self._node("restart")

    async def purge(self, *queues: str) -> None:
        connection = await aio_pika.connect(self.url)
        async with connection:
            await declare_topology(await connection.channel())
            for name in queues or (CHANGES_QUEUE, DEAD_QUEUE):
                channel = await connection.channel()  # a failed passive declare closes its channel
                try:
                    queue = await channel.get_queue(name)
                except aiormq.exceptions.ChannelNotFoundEntity:
                    continue  # nobody declared it yet (no worker ran in this vhost): nothing to purge
                await queue.purge()

    async def messages(self, queue_name: str = CHANGES_QUEUE) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Every message now in the queue, taken and acknowledged (the queue is left empty)."""
        connection = await aio_pika.connect(self.url)
        taken = []
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(queue_name)
            while (message := await queue.get(fail=False, no_ack=True)) is not None:
                taken.append(message)
        return taken


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def session_vhost_url() -> Iterator[str]:
    """A virtual host for this test session, so sessions sharing the node never take each other's messages."""
    url = os.environ.get("HSQBO_RABBITMQ_URL", "")
    if not url or not _reachable(url):
        message = f"RabbitMQ node not reachable at {url or '(HSQBO_RABBITMQ_URL unset)'}; run `make test`"
        if os.environ.get("HSQBO_REQUIRE_BROKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    parts = urlsplit(url)
    vhost = f"hsqbo-test-{os.getpid()}"
    _node(parts.port or 5672, "add-vhost", vhost)
    yield parts._replace(path="/" + vhost).geturl()
    _node(parts.port or 5672, "delete-vhost", vhost)


@pytest.fixture
async def broker(session_vhost_url: str) -> AsyncIterator[Broker]:
    url = session_vhost_url
    node = Broker(url)
    await node.purge()
    yield node
    if not _reachable(url):  # a test that stopped the app must not leave it down for the next one
        node.start_app()

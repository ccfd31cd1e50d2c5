"""The process's broker connection (shared/broker.py) against the RabbitMQ node."""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
import pytest

from shared import broker as broker_module
from shared.broker import Broker, bulk_apply_queue


async def test_a_connection_added_while_the_topology_is_declared_gets_its_bulk_lane(
    session_vhost_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    process_broker = Broker(session_vhost_url, connections=["first"])
    declare = broker_module.declare_topology

    async def declare_while_a_connection_is_added(channel: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(broker_module, "declare_topology", declare)
        await process_broker.add_connections(["late"])  # not ready yet: left to the connection being opened
        await declare(channel, **kwargs)

    monkeypatch.setattr(broker_module, "declare_topology", declare_while_a_connection_is_added)
    await process_broker.start()
    try:
        assert await process_broker.wait_ready(10.0)
        async with await aio_pika.connect(session_vhost_url) as amqp:
            channel = await amqp.channel()
            for connection in ("first", "late"):
                await channel.declare_queue(bulk_apply_queue(connection), passive=True)
    finally:
        await process_broker.close()


def test_connections_attempted_at_once_leave_the_librarys_connection_lines_on_after() -> None:
    logger = logging.getLogger("aiormq.connection")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "Connection attempt failed", (), None)
    first, second = broker_module._libraries_quiet(), broker_module._libraries_quiet()
    first.__enter__()
    second.__enter__()
    assert not logger.filter(record)
    first.__exit__(None, None, None)
    assert not logger.filter(record)  # the other attempt still runs
    second.__exit__(None, None, None)
    assert logger.filter(record)
    assert logger.isEnabledFor(logging.WARNING)

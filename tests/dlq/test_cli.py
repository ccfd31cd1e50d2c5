"""`hsqbo dlq`: argument parsing, the confirmations bulk actions require, and a listing against the real node."""

from __future__ import annotations

import asyncio
import os
import sys

import aio_pika
import pytest

from services.cli import main
from shared.broker import APPLY_QUEUE, DEAD_EXCHANGE, ApplyCommand, declare_topology
from shared.deadletters import dead_letter_message
from shared.errors import RateLimited
from tests.conftest import Broker


def test_list_help_names_every_filter(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "list", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--connection", "--kind", "--category", "--since", "--until", "--json"):
        assert option in out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["dlq", "replay"], "--all"),
        (["dlq", "purge", "--all"], "--yes"),
        (["dlq", "purge", "--category", "server_error"], "--yes"),
    ],
)
def test_bulk_actions_need_a_selection_and_purge_needs_confirmation(argv: list[str], complaint: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert complaint in str(exited.value.code)


@pytest.mark.integration
async def test_list_prints_each_letter_with_its_reason(broker: Broker) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel)
        command = ApplyCommand("acme", "contact", "hubspot", "42", attempt=8, first_failed_at=1.0)
        error = RateLimited("Too many requests", provider="hubspot", status=429)
        letter = dead_letter_message(command, error, hints={}, source_queue=APPLY_QUEUE, now=2.0)
        await (await channel.get_exchange(DEAD_EXCHANGE)).publish(letter, routing_key="")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "dlq", "list", "--category", "rate_limited",
        env={**os.environ, "HSQBO_RABBITMQ_URL": broker.url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    [header, row] = out.decode().splitlines()
    assert header.split()[:2] == ["ID", "LAST"]
    assert str(letter.message_id) in row
    assert "rate_limited" in row
    assert "hubspot HTTP 429: Too many requests" in row
    await broker.purge()

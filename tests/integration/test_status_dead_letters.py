"""The status page's dead letters in a real headless Chromium (services/status/_dead_letters.py): reading changes
nothing (the overview counts the queue without taking a letter; lists show the last scan), filter by connection,
object, category and time, a letter's detail with its history to the millisecond and a link to its record, purge
the filtered set, replay one. Screenshots land in the test's tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from services.status import StatusPage
from shared.asgi import serving
from shared.bus import APPLY_QUEUE, DEAD_EXCHANGE, ApplyCommand
from shared.deadletters import DeadLetters, dead_letter_message, open_dead_letters
from shared.errors import RateLimited, ServerError
from tests.integration.conftest import CONNECTION, Stack
from tests.integration.test_status import Browser, browser, chromium

pytestmark = pytest.mark.integration
__all__ = ["browser", "chromium"]  # the fixtures this module uses from test_status


async def publish(stack: Stack, object_id: str, error: Exception, at: float) -> str:
    command = ApplyCommand(CONNECTION, "contact", "hubspot", object_id, attempt=4, first_failed_at=at - 60)
    message = dead_letter_message(command, error, hints={}, source_queue=APPLY_QUEUE, now=at)
    connection = await aio_pika.connect(stack.settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await (await channel.get_exchange(DEAD_EXCHANGE)).publish(message, routing_key="")
    return str(message.message_id)


async def test_dead_letters_are_filtered_read_purged_and_replayed_and_reading_takes_none(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "dee@example.com", "firstname": "Dee"})
    await stack.settle()
    now = time.time()
    unavailable = ServerError("Service Unavailable", provider="quickbooks", status=503)
    old = await publish(stack, "901", unavailable, now - 7200)
    recent_ms = int(now * 1000) - 877
    recent = await publish(stack, contact["id"], unavailable, recent_ms / 1000)
    throttled = await publish(stack, "903", RateLimited("Too Many Requests", provider="hubspot", status=429), now)
    scans: list[str] = []

    @contextlib.asynccontextmanager
    async def watched() -> AsyncIterator[DeadLetters]:
        """The real dead letters, noting every scan of the queue (a scan takes each letter and puts a copy back)."""
        async with open_dead_letters(stack.settings, stack.store) as letters:
            scan: Callable[..., Awaitable[None]] = letters._scan

            async def noted(*args: object) -> None:
                scans.append("scan")
                await scan(*args)

            letters._scan = noted  # type: ignore[method-assign,assignment]
            yield letters

    status = StatusPage(stack.settings, stack.sync, stack.store, dead_letters=watched)
    async with serving(status.app(password=None)) as server:
        page = server.url
        await browser.open(page)
        assert await browser.text("#dead-letters") == "3"
        await browser.open(f"{page}/dead-letters")
        assert (await browser.text("#queued"), await browser.text("#scanned")) == ("3", "not scanned yet")
        await browser.open(f"{page}/dead-letters/{recent}")
        assert scans == []  # reading changed nothing

        await browser.open(f"{page}/dead-letters")
        await browser.navigate("#scan")
        assert await browser.text("#notice") == "scanned: 3 dead letter(s)"
        assert scans == ["scan"]
        assert [await browser.attribute(f"#letters tr.letter:nth-of-type({n})", "data-letter") for n in (2, 3, 4)] == [
            old, recent, throttled
        ]  # fmt: skip
        await browser.screenshot(tmp_path / "dead-letters.png")

        def choose(css: str, value: str) -> None:
            Select(browser.driver.find_element(By.CSS_SELECTOR, css)).select_by_value(value)

        await asyncio.to_thread(choose, "#filter-connection", CONNECTION)
        await asyncio.to_thread(choose, "#filter-kind", "contact")
        await asyncio.to_thread(choose, "#filter-category", "server_error")
        await browser.navigate("#filter-apply")
        assert await browser.texts("#letters tr.letter td:nth-child(4)") == [
            "901",
            f"{contact['id']}\nDee · dee@example.com",
        ]
        since = await asyncio.to_thread(browser.driver.find_element, By.CSS_SELECTOR, "#filter-since")
        await asyncio.to_thread(since.send_keys, "1h")
        await browser.navigate("#filter-apply")
        assert await browser.texts("#letters tr.letter span.name") == ["Dee · dee@example.com"]
        await browser.screenshot(tmp_path / "dead-letters-filtered.png")

        await browser.navigate("#letters tr.letter a.detail")
        assert (await browser.text("#error")).startswith("server_error: quickbooks HTTP 503")
        assert await browser.text("#letter .explanation-what") == "The provider failed to answer (5xx or timeout)."
        last = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(recent_ms // 1000))
        assert await browser.text("#last-failed") == f"{last}.{recent_ms % 1000:03d} UTC"
        assert await browser.attribute("#record-link", "href") == (
            f"{page}/connections/{CONNECTION}/contact/hubspot/{contact['id']}"
        )
        await browser.screenshot(tmp_path / "dead-letter.png")
        await browser.navigate("#record-link")
        assert (await browser.text("#name"), await browser.text("#status")) == ("Dee · dee@example.com", "synced")
        await browser.open(f"{page}/connections/{CONNECTION}/contact/hubspot/901")
        assert await browser.text("#status") == "not synced yet"  # no such contact: hsqbo keeps no link for it

        await browser.open(f"{page}/dead-letters?category=server_error")
        await browser.navigate("#purge-filtered", accept_alert=True)
        assert await browser.text("#notice") == "purged 2 dead letter(s)"
        assert await browser.text("#letters td.muted") == "none"  # the filter is kept: none left
        await browser.open(page)
        assert await browser.text("#dead-letters") == "1"

        await browser.open(f"{page}/dead-letters/{throttled}")
        await browser.navigate("#replay-one")
        assert await browser.text("#notice") == "replayed 1 dead letter(s)"
        assert await browser.text("#letters td.muted") == "none"
        assert await browser.text("#queued") == "0"

"""The operator's console in a real headless Chromium over the whole stack: the first sync planned, reviewed and
confirmed before anything is written (counted in the sandboxes' request logs), the overview's charts drawn from what
the worker synced, and an object switched off and on (its changes wait, then sync). Screenshots of every page land in
the test's temporary directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException

from shared.domain import Kind, PendingKey, Provider
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack, eventually
from tests.integration.test_status import Browser
from tests.integration.test_status import chromium as chromium  # the module's own headless Chromium
from tests.integration.test_status import page as page  # the page with the process's API clients

pytestmark = pytest.mark.integration

HUBSPOT_TO_QBO = {"contacts": {"direction": "hubspot_to_qbo", "hubspot_to_qbo": {}}}


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Browser:
    return Browser(chromium)


async def screenshot(browser: Browser, tmp_path: Path, name: str) -> None:
    def save() -> None:
        browser.driver.set_window_size(1280, 1800)
        browser.driver.save_screenshot(str(tmp_path / f"{name}.png"))

    await asyncio.to_thread(save)


async def text_of(browser: Browser, css: str) -> str:
    """An element's text on a page that refreshes itself (a running first sync): looked up again if it went stale."""
    for _ in range(5):
        try:
            return await browser.text(css)
        except StaleElementReferenceException:
            continue
    return await browser.text(css)


async def text_after(browser: Browser, css: str, before: str, *, within: float = 10.0) -> str:
    """An element's text once it is no longer `before`: a form's answer replaces the page some time after the click."""
    for _ in range(int(within / 0.05)):
        if (text := await text_of(browser, css)) != before:
            return text
        await asyncio.sleep(0.05)
    return await text_of(browser, css)


def reads(stack: Stack) -> int:
    return len(stack.sandbox.hubspot.requests.list()) + len(stack.sandbox.qbo.requests.list())


def customer(name: str, email: str) -> dict[str, Any]:
    return {"DisplayName": name, "PrimaryEmailAddr": {"Address": email}}


@pytest.mark.parametrize("sync_overrides", [HUBSPOT_TO_QBO], indirect=True)
async def test_the_first_sync_is_planned_reviewed_and_confirmed_before_anything_is_written(
    stack: Stack, page: str, browser: Browser, tmp_path: Path
) -> None:
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):  # records that were there before hsqbo
        sandbox.faults.update(webhook_drop_rate=1.0)
    ann = stack.qbo_edit("Customer", "create", customer("Ann Lee", "ann@example.com"))
    bob = [stack.qbo_edit("Customer", "create", customer(f"Bob {n}", "bob@example.com")) for n in (1, 2)]
    contacts = {
        email: stack.hubspot_edit("contacts", "create", properties={"email": email, "firstname": email[:3].title()})
        for email in ("ann@example.com", "bob@example.com", "carol@example.com")
    }
    stack.clear_request_logs()

    await browser.open(f"{page}/connections/{CONNECTION}/first-sync")
    await screenshot(browser, tmp_path, "first-sync-empty")
    await browser.click("#make-plan")
    await eventually(lambda: stack.store.first_sync(CONNECTION))  # planned in the background
    await browser.open(f"{page}/connections/{CONNECTION}/first-sync")
    counts = "#plan-counts tr[data-kind='contact']"
    assert await browser.text(f"{counts} td[data-action='link']") == "1"
    assert await browser.text(f"{counts} td[data-action='create']") == "1"
    assert await browser.text(f"{counts} td[data-action='review']") == "1"
    [linked] = await browser.texts("#entries tr.entry.link")
    assert contacts["ann@example.com"]["id"] in linked
    assert f"{ann['Id']} Ann Lee <ann@example.com>" in linked
    [review] = await browser.texts("#reviews tr.review")
    assert "bob@example.com matches 2 QuickBooks customers" in review
    assert await browser.attribute("#confirm", "disabled") == "true"
    await screenshot(browser, tmp_path, "first-sync-plan")
    assert reads(stack) > 0  # it read both accounts...
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}  # ...and wrote nothing

    await browser.click(f"#reviews tr.review input.candidate[value='{bob[1]['Id']}']")
    await browser.click("#reviews tr.review button.pick")
    assert await browser.text("#notice") == f"Bob <bob@example.com>: link to {bob[1]['Id']}"
    assert await browser.text("#reviews tr.review .decision") == f"pick {bob[1]['Id']}"
    await screenshot(browser, tmp_path, "first-sync-resolved")
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}  # still nothing before the confirmation
    assert await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contacts["bob@example.com"]["id"]) is None

    await browser.click("#confirm")
    notice = await text_after(browser, "#notice", f"Bob <bob@example.com>: link to {bob[1]['Id']}")
    assert notice == "confirmed: 3 record(s) queued for the workers"
    await stack.settle()
    assert stack.api_writes()["quickbooks"] > 0
    links = {
        email: await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=contact["id"])
        for email, contact in contacts.items()
    }
    assert {email: link.status for email, link in links.items() if link is not None} == dict.fromkeys(
        contacts, LinkStatus.SYNCED
    )
    linked_to = {email: link.qbo_id for email, link in links.items() if link is not None}
    assert (linked_to["ann@example.com"], linked_to["bob@example.com"]) == (ann["Id"], bob[1]["Id"])
    emails = sorted(c["PrimaryEmailAddr"]["Address"] for c in stack.qbo_entities("Customer") if "PrimaryEmailAddr" in c)
    assert emails == ["ann@example.com", "bob@example.com", "bob@example.com", "carol@example.com"]  # no duplicate

    await browser.open(f"{page}/connections/{CONNECTION}/first-sync")
    assert await browser.attribute("#progress", "data-finished") == "yes"
    assert await browser.text("#done") == await browser.text("#total") == "3"
    await screenshot(browser, tmp_path, "first-sync-done")


async def test_the_overview_charts_what_the_worker_synced_and_shows_its_health(
    stack: Stack, page: str, browser: Browser, tmp_path: Path
) -> None:
    for n in range(3):
        stack.hubspot_edit("contacts", "create", properties={"email": f"chart{n}@example.com", "firstname": "C"})
    await stack.settle()
    await stack.worker.pulse.beat()  # what it synced, written now rather than at its next beat

    await browser.open(f"{page}/overview")
    await screenshot(browser, tmp_path, "overview")
    synced = await asyncio.to_thread(
        lambda: [
            int(bar.get_attribute("data-synced") or 0)
            for bar in browser.driver.find_elements("css selector", f"#synced-hour-{CONNECTION} rect.bar")
        ]
    )
    assert sum(synced) == 3  # three contacts made three customers
    lags = await browser.texts(f"#lag-hour-{CONNECTION} circle.p50")
    assert lags  # their lag, from the webhooks' change times
    assert await browser.attribute(f"#lag-hour-{CONNECTION} circle.p95", "data-seconds")
    [worker] = await browser.texts("#processes tr.process[data-role='worker']")
    assert "ok" in worker
    row = f"section.console[data-connection='{CONNECTION}'] tr.object[data-kind='contact']"
    assert await browser.text(f"{row} .last-webhook") != "—"
    assert await browser.text(f"{row} .backlog") == "0"


async def test_an_object_switched_off_keeps_its_changes_and_syncs_them_once_switched_on(
    stack: Stack, page: str, browser: Browser, tmp_path: Path
) -> None:
    row = f"section.console[data-connection='{CONNECTION}'] tr.object[data-kind='contact']"
    await browser.open(f"{page}/overview")
    await browser.click(f"{row} button.toggle")
    notice = await browser.text("#notice")
    assert notice == f"{CONNECTION} contact switched off: its changes wait until it is switched on"
    assert await browser.text(f"{row} .switch") == "off"

    contact = stack.hubspot_edit("contacts", "create", properties={"email": "off@example.com", "firstname": "O"})
    key = PendingKey(CONNECTION, Kind.CONTACT, Provider.HUBSPOT, contact["id"])

    async def deferred() -> bool:
        pending = await stack.store.get_pending(key)
        return pending is not None and pending.owner == "deferred"

    await eventually(deferred)
    assert stack.qbo_entities("Customer") == []  # nothing written while off
    await browser.open(f"{page}/overview")
    assert await browser.text(f"{row} .backlog") == "1"
    await screenshot(browser, tmp_path, "overview-switched-off")

    await browser.click(f"{row} button.toggle")
    assert await browser.text(f"{row} .switch") == "on"
    await stack.settle()
    [made] = stack.qbo_entities("Customer")
    assert made["PrimaryEmailAddr"]["Address"] == "off@example.com"
    await screenshot(browser, tmp_path, "overview-switched-on")

"""The status page in a real headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) over the
whole stack: the incumbent's sync-status view with per-record errors, "Sync now", CSV export, plus dead letters and
their replay, the OAuth "Connect" flow through the sandboxes' consent screens, and the page's guard (password,
cross-site POSTs).

Selenium is blocking and the page is served by this test's event loop, so every browser call runs in a thread."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import aiohttp
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from services.connect._flow import add_connection
from services.status import HEALTH_PATH, StatusPage
from services.status._connect import ConnectError, ConnectFlow
from shared.asgi import serving
from shared.broker import APPLY_QUEUE, DEAD_EXCHANGE, ApplyCommand, Broker
from shared.clients import AiohttpTransport
from shared.connections import ContextFactory
from shared.deadletters import dead_letter_message
from shared.domain import Provider
from shared.errors import ServerError
from shared.store import CredentialStatus
from shared.syncconfig import load_sync_settings
from tests.integration.conftest import CONNECTION, Stack, eventually

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FAIL_ON_DUPLICATE_NAMES = {"contacts": {"hubspot_to_qbo": {}, "display_name_strategy": "fail"}}


class Browser:
    """A headless Chromium; each call runs in a thread so the page's server (this loop) can answer it."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def text(self, css: str) -> str:
        return await asyncio.to_thread(lambda: str(self.driver.find_element(By.CSS_SELECTOR, css).text))

    async def texts(self, css: str) -> list[str]:
        return await asyncio.to_thread(lambda: [str(e.text) for e in self.driver.find_elements(By.CSS_SELECTOR, css)])

    async def click(self, css: str) -> None:
        await asyncio.to_thread(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def attribute(self, css: str, name: str) -> str:
        return await asyncio.to_thread(lambda: str(self.driver.find_element(By.CSS_SELECTOR, css).get_attribute(name)))

    async def navigate(self, css: str, *, accept_alert: bool = False) -> None:
        """Click what loads another page (accepting the confirm() it asks first) and wait until that page is there:
        an element looked up right after the click could still be the old page's."""

        def go() -> None:
            old = self.driver.find_element(By.TAG_NAME, "html")
            self.driver.find_element(By.CSS_SELECTOR, css).click()
            if accept_alert:
                WebDriverWait(self.driver, 10).until(expected_conditions.alert_is_present()).accept()
            WebDriverWait(self.driver, 10).until(lambda _: gone(old))

        await asyncio.to_thread(go)

    async def screenshot(self, path: Path) -> None:
        """The whole page, as wide as a laptop's screen."""

        def shoot() -> None:
            height = int(self.driver.execute_script("return document.body.scrollHeight"))
            self.driver.set_window_size(1280, max(800, height + 100))
            self.driver.save_screenshot(str(path))

        await asyncio.to_thread(shoot)


def gone(element: WebElement) -> bool:
    """Whether `element` left the document: `staleness_of`, also when Chromium answers a look at it during the page
    change with "Node with given id does not belong to the document" (an inspector error, not a stale reference)."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc.msg):
            return True
        raise
    return False


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    options = Options()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="hsqbo-chromium-") as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-quic", f"--user-data-dir={profile}"):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.implicitly_wait(10)  # a click that navigates returns before the next page is there: look until it is
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
async def page(stack: Stack) -> AsyncIterator[str]:
    async with AiohttpTransport.from_settings(stack.settings) as transport:
        contexts = ContextFactory(stack.settings, stack.store, transport)
        status = StatusPage(stack.settings, stack.sync, stack.store, stack.worker.broker, contexts=contexts)
        async with serving(status.app(password=None)) as server:
            yield server.url


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Browser:
    return Browser(chromium)


@pytest.mark.parametrize("sync_overrides", [FAIL_ON_DUPLICATE_NAMES], indirect=True)
async def test_a_failing_record_shows_its_error_and_sync_now_syncs_it_once_the_cause_is_fixed(
    stack: Stack, page: str, browser: Browser
) -> None:
    other_jane = {"DisplayName": "Jane Doe", "PrimaryEmailAddr": {"Address": "other.jane@example.com"}}
    taken = stack.qbo_edit("Customer", "create", other_jane)
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "jane@example.com", "firstname": "Jane",
                                                                    "lastname": "Doe"})  # fmt: skip
    await stack.settle()

    await browser.open(page)
    section = f"section[data-connection='{CONNECTION}'] tr[data-kind='contact']"
    assert await browser.text(f"{section} a[data-status='failing']") == "1"
    assert await browser.text(f"{section} a[data-status='synced']") == "1"  # the QBO customer made its own contact
    await browser.click(f"{section} a[data-status='failing']")
    [error] = await browser.texts("#records tr.record.failing td.error")
    assert error.startswith("duplicate_display_name: QuickBooks already has a customer named 'Jane Doe'")

    await browser.click("#records tr.record.failing a")
    assert await browser.text("#status") == "failing"
    stack.qbo_edit("Customer", "update", {"Id": taken["Id"], "DisplayName": "Jane Doe (other)"})  # the fix
    await stack.settle()
    await browser.click("#sync-now")
    assert await browser.text("#notice") == "queued: a worker is syncing this record now"
    await stack.settle()
    await browser.open(await asyncio.to_thread(lambda: str(browser.driver.current_url).split("?")[0]))
    assert await browser.text("#status") == "synced"
    assert "created" in await browser.texts("#history td:nth-child(2)")
    names = [c["DisplayName"] for c in stack.qbo_entities("Customer")]
    assert sorted(names) == ["Jane Doe", "Jane Doe (other)"]
    assert contact["id"] in await browser.text("#record")


async def test_records_export_as_csv_with_their_status_and_error(stack: Stack, page: str, browser: Browser) -> None:
    stack.hubspot_edit("contacts", "create", properties={"email": "csv@example.com", "firstname": "C"})
    await stack.settle()
    await browser.open(f"{page}/connections/{CONNECTION}/records?kind=contact")
    href = await browser.attribute("#csv", "href")
    async with aiohttp.ClientSession() as session, session.get(href) as response:
        assert response.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(row["kind"], row["status"], row["error_category"]) for row in rows] == [("contact", "synced", "")]
    assert rows[0]["hubspot_id"]
    assert rows[0]["qbo_id"]


async def test_a_dead_letter_is_listed_with_its_reason_and_replayed_from_the_page(
    stack: Stack, page: str, browser: Browser
) -> None:
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "dead@example.com", "firstname": "D"})
    await stack.settle()
    command = ApplyCommand(CONNECTION, "contact", "hubspot", contact["id"], attempt=4, first_failed_at=1.0)
    error = ServerError("Service Unavailable", provider="quickbooks", status=503)
    connection = await aio_pika.connect(stack.settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        letter = dead_letter_message(command, error, hints={}, source_queue=APPLY_QUEUE, now=2.0)
        await (await channel.get_exchange(DEAD_EXCHANGE)).publish(letter, routing_key="")

    async def counted() -> bool:  # the count is the queue's, which a quorum queue updates a moment after a publish
        await browser.open(page)
        return await browser.text("#dead-letters") == "1"

    await eventually(counted, within=5.0)
    await browser.open(f"{page}/dead-letters")
    await browser.navigate("#scan")
    [row] = await browser.texts("#letters tr.letter")
    assert "server_error" in row
    assert contact["id"] in row
    await browser.click("#letters tr.letter input[type=checkbox]")
    await browser.navigate("#replay-chosen")
    assert await browser.text("#notice") == "replayed 1 dead letter(s)"
    assert await browser.text("#letters td.muted") == "none"
    await stack.settle()  # the replay was applied: the record was already in sync
    assert [c["email"] for c in stack.hubspot_records("contacts")] == ["dead@example.com"]


async def test_the_page_asks_for_its_password_except_for_probes_and_refuses_cross_site_actions(stack: Stack) -> None:
    status = StatusPage(stack.settings, stack.sync, stack.store, stack.worker.broker)
    async with serving(status.app(password="s3cret")) as server, aiohttp.ClientSession() as session:
        async with session.get(server.url) as anonymous:
            assert anonymous.status == 401
        async with session.get(server.url + HEALTH_PATH) as probe:  # probes carry no password
            assert (probe.status, await probe.text()) == (200, "ok")
        authorized = {"Authorization": aiohttp.encode_basic_auth("hsqbo", "s3cret")}
        async with session.get(server.url, headers=authorized) as allowed:
            assert allowed.status == 200
        forged = {**authorized, "Origin": "https://evil.example"}
        replay = f"{server.url}/dead-letters/replay"
        async with session.post(replay, headers=forged, data={"all": "yes"}, allow_redirects=False) as refused:
            assert refused.status == 403


@pytest.mark.parametrize("provider", [Provider.QUICKBOOKS, Provider.HUBSPOT])
async def test_a_revoked_account_is_reconnected_through_the_providers_consent_screen(
    stack: Stack, page: str, browser: Browser, provider: Provider
) -> None:
    await stack.store.mark_revoked(CONNECTION, provider)
    await browser.open(page)
    authorization = f"section[data-connection='{CONNECTION}'] [data-authorization='{provider}']"
    assert await browser.text(authorization) == "revoked: reconnect the account"

    await browser.click(f"section[data-connection='{CONNECTION}'] [data-connect='{provider}']")
    assert await browser.text("#notice") == f"{CONNECTION}: {provider} connected"
    assert await browser.text(authorization) == "connected"
    credentials = await stack.store.get_credentials(CONNECTION, provider)
    assert credentials is not None
    assert credentials.status == CredentialStatus.ACTIVE


async def test_a_new_connection_is_made_from_the_two_oauth_answers(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    config = tmp_path / "hsqbo.toml"
    add_connection(config, stack.sync.connection[0])  # the rules file the stack's own connection is in
    settings = stack.settings.model_copy(update={"config": config})
    status = StatusPage(settings, load_sync_settings(config), stack.store, stack.worker.broker)
    async with serving(status.app(password=None)) as server:
        for provider in (Provider.HUBSPOT, Provider.QUICKBOOKS):
            await browser.open(server.url)
            field = await asyncio.to_thread(browser.driver.find_element, By.CSS_SELECTOR, "#new-connection input")
            await asyncio.to_thread(field.send_keys, "beta")
            await browser.click(f"#new-connection button[value='{provider}']")
            notice = await browser.text("#notice")
            assert notice.startswith(f"beta: {provider} connected")
        assert "added to the sync rules" in notice
        assert await browser.text("section[data-connection='beta'] [data-authorization='quickbooks']") == "connected"
    beta = load_sync_settings(config).named("beta")
    assert beta is not None
    assert (beta.hubspot_portal_id, beta.qbo_realm_id) == (str(stack.portal_id), stack.realm_id)


async def test_tokens_of_another_company_are_refused_and_not_stored(stack: Stack) -> None:
    before = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
    flow = ConnectFlow(stack.settings, stack.store)
    [connection] = stack.sync.connection
    callback = "http://127.0.0.1:1/oauth/callback/quickbooks"
    url = flow.authorize_url(connection, Provider.QUICKBOOKS, callback)
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["state"]
    other = stack.sandbox.qbo.create_realm().realm_id
    client_id, scope = str(stack.settings.qbo_client_id), "com.intuit.quickbooks.accounting"
    code = stack.sandbox.qbo.tokens.issue_code(other, client_id, scope=scope, redirect_uri=callback)
    with pytest.raises(ConnectError, match=f"that is QuickBooks company {other}"):
        await flow.finish(Provider.QUICKBOOKS, state=state, code=code, realm_id=other, callback_url=callback,
                          connections={connection.name: connection})  # fmt: skip
    assert await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS) == before


async def test_the_overview_still_shows_the_store_while_rabbitmq_is_unreachable(stack: Stack) -> None:
    unreachable = Broker("amqp://guest:guest@127.0.0.1:1/")  # never connected
    status = StatusPage(stack.settings, stack.sync, stack.store, unreachable)
    async with (
        serving(status.app(password=None)) as server,
        aiohttp.ClientSession() as session,
        session.get(server.url) as response,
    ):
        page = await response.text()
    assert response.status == 200
    assert "unknown (RabbitMQ unreachable)" in page
    assert f'data-connection="{CONNECTION}"' in page


async def test_a_record_needing_review_is_listed_with_its_candidates(stack: Stack, page: str) -> None:
    email = {"PrimaryEmailAddr": {"Address": "books@keeper.test"}}
    first = stack.qbo_edit("Customer", "create", {"DisplayName": "Alpha Bakery", **email})
    second = stack.qbo_edit("Customer", "create", {"DisplayName": "Beta Garage", **email})
    stack.hubspot_edit("contacts", "create", properties={"email": "books@keeper.test", "firstname": "Kim"})
    await stack.settle()
    async with aiohttp.ClientSession() as session:
        url = f"{page}/connections/{CONNECTION}/records?kind=contact&status=needs_review"
        async with session.get(url) as response:
            listing = await response.text()
    assert listing.count('class="record needs_review"') == 3  # the contact and both customers
    assert f"{first['Id']} Alpha Bakery &lt;books@keeper.test&gt;" in listing
    assert f"{second['Id']} Beta Garage" in listing

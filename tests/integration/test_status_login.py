"""Logging in to and out of the status page in a real headless Chromium (as tests/integration/test_status.py): a page
asked for without a session leads to the login, a wrong password is refused, the right one leads back to the page
first asked for, and logging out ends the session. Screenshots of each step are saved in the test's tmp_path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from selenium import webdriver
from selenium.webdriver.common.by import By

from services.status import StatusPage
from services.status._guard import SESSION_COOKIE
from shared.asgi import serving
from shared.store import open_store
from tests.integration.test_status import Browser, chromium  # noqa: F401  # the headless Chromium fixture
from tests.status.conftest import PASSWORD, page_settings, sync_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def page(tmp_path: Path, session_vhost_url: str) -> AsyncIterator[str]:
    """The page with a password over a store of its own."""
    key = SecretStr(Fernet.generate_key().decode())
    async with open_store(f"sqlite:///{tmp_path}/store.db", encryption_key=key) as store:
        status = StatusPage(page_settings(session_vhost_url, encryption_key=key), sync_settings(), store)
        async with serving(status.app(PASSWORD)) as server:
            yield server.url


async def test_an_operator_logs_in_and_out(
    page: str,
    chromium: webdriver.Chrome,  # noqa: F811  # the fixture imported above
    tmp_path: Path,
) -> None:
    browser = Browser(chromium)
    await asyncio.to_thread(chromium.delete_all_cookies)

    async def screenshot(name: str) -> None:
        await asyncio.to_thread(chromium.save_screenshot, str(tmp_path / f"{name}.png"))

    async def url() -> str:
        return await asyncio.to_thread(lambda: str(chromium.current_url))

    async def arrive(at: str) -> None:
        """Until the browser shows `at`: a click returns before the page it leads to is there."""
        for _ in range(100):
            if await url() == at:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the browser is at {await url()}, not {at}")

    async def log_in(password: str) -> None:
        field = await asyncio.to_thread(chromium.find_element, By.CSS_SELECTOR, "#password")
        await asyncio.to_thread(field.send_keys, password)
        await browser.click("#log-in")

    await browser.open(f"{page}/dead-letters")
    assert (await url()).startswith(f"{page}/login?next=")
    await screenshot("login")
    await log_in("not the password")
    await arrive(f"{page}/login")
    assert await browser.text("#login-error") == "wrong password"
    await screenshot("login-refused")

    await log_in(PASSWORD)
    await arrive(f"{page}/dead-letters")  # where the operator was going
    assert await browser.text("h1") == "Dead letters"
    [cookie] = [c for c in await asyncio.to_thread(chromium.get_cookies) if c["name"] == SESSION_COOKIE]
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Lax")
    await browser.open(page)
    assert await browser.text("h1") == "Connections"
    await screenshot("logged-in")

    await browser.click("#logout")
    await arrive(f"{page}/login?notice=logged+out")
    assert await browser.text("#notice") == "logged out"
    await screenshot("logged-out")
    await browser.open(page)
    assert await browser.text("h1") == "Log in"  # the session no longer lets anyone in

"""The overview's and the first sync's routes over HTTP, without a browser: what they answer to odd or early input
(no 500), the switch kept in the store and its waiting work made due when switched on, and a plan's decisions checked
before they are kept."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from services.poller._plan import Action, Entry, Plan, to_json
from services.status import StatusPage
from shared.asgi import serving
from shared.budget import CallKind, UsageKey, month_of
from shared.config import Settings
from shared.deadletters import DeadLetters
from shared.domain import Kind, PendingKey, Provider
from shared.store import Candidate, FirstSync, Store, open_store
from shared.syncconfig import ConnectionSettings, SyncSettings

CONNECTION = ConnectionSettings(name="acme", hubspot_portal_id="62515", qbo_realm_id="9130",
                                setup_date=dt.date(2026, 11, 1))  # fmt: skip
REVIEW = Entry(kind=Kind.CONTACT, side=Provider.HUBSPOT, id="7", object_type="contact", label="Bob <bob@x.com>",
               action=Action.REVIEW, reason="bob@x.com matches 2 QuickBooks customers",
               candidates=(Candidate("2", "Bob 1"), Candidate("3", "Bob 2")))  # fmt: skip


@contextlib.asynccontextmanager
async def broker_down() -> AsyncIterator[DeadLetters]:
    raise OSError("connection refused")
    yield


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@pytest.fixture
async def page(store: Store, tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}")
    status = StatusPage(settings, SyncSettings(connection=[CONNECTION]), store, dead_letters=broker_down)
    async with serving(status.app(password=None)) as server:
        yield server.url


async def post(url: str, data: dict[str, str]) -> tuple[int, str]:
    """As the page's own forms do: with the session's CSRF token, read from a page first (status/_guard.py)."""
    jar = aiohttp.CookieJar(unsafe=True)  # keeps the session cookie on 127.0.0.1, as a browser does
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(urllib.parse.urljoin(url, "/")) as page:
            token = re.findall(r'<meta name="csrf-token" content="([^"]+)">', await page.text())[0]
        async with session.post(url, data={**data, "csrf_token": token}, allow_redirects=True) as answer:
            return answer.status, await answer.text()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, await answer.text()


async def test_the_overview_answers_with_no_process_running_and_the_broker_down(page: str) -> None:
    status, text = await get(f"{page}/overview")
    assert status == 200
    assert "no worker or poller has written a heartbeat" in text
    assert "unknown (RabbitMQ unreachable)" in text
    assert text.count("<svg") == 4


async def test_switching_an_object_is_kept_and_switching_it_on_makes_its_waiting_work_due(
    page: str, store: Store
) -> None:
    switch = f"{page}/connections/acme/objects/contact/switch"
    assert (await post(switch, {"enabled": "off"}))[0] == 200
    assert await store.object_switches("acme") == {Kind.CONTACT: False}
    key = PendingKey("acme", Kind.CONTACT, Provider.HUBSPOT, "7")
    await store.touch_pending(key, 1.0)
    await store.defer_pending(key, 1e12)  # as the worker does while the object is off
    status, text = await post(switch, {"enabled": "on"})
    assert status == 200
    assert "acme contact switched on: its waiting changes sync now" in text
    assert await store.object_switches("acme") == {Kind.CONTACT: True}
    pending = await store.get_pending(key)
    assert pending is not None
    assert pending.owner is None  # due again
    assert "no such object" in (await post(f"{page}/connections/acme/objects/vendor/switch", {"enabled": "on"}))[1]
    assert (await post(f"{page}/connections/nope/objects/contact/switch", {"enabled": "on"}))[0] == 404


async def test_decisions_on_a_plan_are_checked_before_they_are_kept(page: str, store: Store) -> None:
    base = f"{page}/connections/acme/first-sync"
    status, text = await get(base)
    assert (status, "Make a plan" in text) == (200, True)
    assert "no plan to decide on" in (await post(f"{base}/resolve", {"key": "x", "decision": "exclude"}))[1]
    assert "no plan to confirm" in (await post(f"{base}/confirm", {}))[1]

    plan = Plan(connection="acme", planned_at=1.0, since=None, entries=(REVIEW,))
    await store.save_first_sync(FirstSync(connection="acme", plan=to_json(plan), planned_at=1.0))
    assert "1 record(s) still need a decision" in (await post(f"{base}/confirm", {}))[1]
    assert "choose a decision" in (await post(f"{base}/resolve", {"key": REVIEW.key, "decision": "maybe"}))[1]
    _, text = await post(f"{base}/resolve", {"key": REVIEW.key, "decision": "pick", "pick": "99"})
    assert "not decided: 99 is not a candidate" in text
    _, text = await post(f"{base}/resolve", {"key": REVIEW.key, "decision": "pick", "pick": "3"})
    assert "Bob &lt;bob@x.com&gt;: link to 3" in text
    kept = await store.first_sync("acme")
    assert kept is not None
    assert kept.plan["entries"][0]["pick"] == "3"


async def test_a_kept_plan_that_cannot_be_read_asks_for_a_new_one(page: str, store: Store) -> None:
    await store.save_first_sync(FirstSync(connection="acme", plan={"format": 99}, planned_at=1.0))
    status, text = await get(f"{page}/connections/acme/first-sync")
    assert status == 200
    assert "make a new one" in text


async def test_the_overview_shows_this_months_calls_against_the_read_budget(page: str, store: Store) -> None:
    month = month_of(time.time())
    await store.add_api_calls({
        UsageKey(Provider.QUICKBOOKS, "9130", CallKind.READ, month): 125_000,
        UsageKey(Provider.QUICKBOOKS, "9130", CallKind.WRITE, month): 40,
        UsageKey(Provider.QUICKBOOKS, "other", CallKind.READ, month): 9,  # another company: not this connection's
        UsageKey(Provider.HUBSPOT, "62515", CallKind.READ, month): 300,
    })  # fmt: skip
    status, text = await get(f"{page}/overview")
    assert status == 200
    line = " ".join(re.findall(r'<p class="monthly-usage">(.*?)</p>', text, re.S)[0].split())
    assert f"Calls in {month} (UTC)" in line
    assert "125000</span> reads of a budget of 500000 (25.0 %), 40 writes" in line
    assert "HubSpot 300 reads, 0 writes" in line

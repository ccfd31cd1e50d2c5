"""The status page's records in a real headless Chromium (services/status/_records.py): a record found by name, its
links into HubSpot's and QuickBooks' own UIs and to the record it waits for, its fields side by side with what the
last sync changed, and what a failing record's error means (page and CSV). Screenshots land in the test's tmp_path.

The links into the products' UIs are checked by their address: this machine reaches neither product."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.status._records import hubspot_url, qbo_url
from shared.domain import Kind
from tests.integration.conftest import CONNECTION, Stack
from tests.integration.test_invoices import BASE as INVOICES_BASE
from tests.integration.test_invoices import item, qbo_invoice, sales_line
from tests.integration.test_status import Browser, browser, chromium, page

pytestmark = pytest.mark.integration
__all__ = ["browser", "chromium", "page"]  # the fixtures this module uses from test_status

# Customers reach HubSpot only once a QBO user marks them ready, so an invoice can wait for its customer.
CONTACTS_WHEN_READY = {
    **INVOICES_BASE, "contacts": {"hubspot_to_qbo": {}, "qbo_to_hubspot": {"qbo_fields": {"Notes": "ready"}}}
}  # fmt: skip


def field(row: dict[str, Any], name: str) -> str:
    return str(row[name])


async def test_a_record_is_found_by_name_links_into_both_products_and_shows_its_fields_side_by_side(
    stack: Stack, page: str, browser: Browser, tmp_path: Path
) -> None:
    jane = stack.hubspot_edit("contacts", "create", properties={
        "email": "jane@example.com", "firstname": "Jane", "lastname": "Doe", "phone": "555-0100"})  # fmt: skip
    other = stack.hubspot_edit("contacts", "create", properties={"email": "sam@example.com", "firstname": "Sam"})
    await stack.settle()
    stack.hubspot_edit("contacts", "update", id=jane["id"], properties={"phone": "555-0199"})
    await stack.settle()

    await browser.open(f"{page}/connections/{CONNECTION}/records")
    await browser.screenshot(tmp_path / "records.png")
    assert await browser.texts("#records tr.record td.name") == [  # last changed first
        "Jane Doe · jane@example.com", "Sam · sam@example.com"
    ]  # fmt: skip
    await browser.open(f"{page}/connections/{CONNECTION}/records?q=SAM")
    assert await browser.texts("#records tr.record td.name") == ["Sam · sam@example.com"]
    await browser.open(f"{page}/connections/{CONNECTION}/records?q=doe")
    await browser.screenshot(tmp_path / "records-search.png")
    [row] = await browser.texts("#records tr.record td.name")
    assert row == "Jane Doe · jane@example.com"
    link = await stack.store.get_link(CONNECTION, Kind.CONTACT, hubspot_id=jane["id"])
    assert link is not None
    assert link.qbo_id is not None
    assert await browser.attribute("#records tr.record a.hubspot-link", "href") == hubspot_url(
        stack.portal_id, Kind.CONTACT, jane["id"]
    )
    await browser.navigate("#records tr.record td.name a")

    assert await browser.text("#name") == "Jane Doe · jane@example.com"
    assert await browser.text("#status") == "synced"
    assert await browser.attribute("#hubspot-link", "href") == (
        f"https://app.hubspot.com/contacts/{stack.portal_id}/record/0-1/{jane['id']}"
    )
    assert await browser.attribute("#qbo-link", "href") == qbo_url(Kind.CONTACT, link.qbo_id, sandbox=True)
    assert await browser.attribute("#qbo-link", "href") == (
        f"https://app.sandbox.qbo.intuit.com/app/customerdetail?nameId={link.qbo_id}"
    )
    await browser.screenshot(tmp_path / "record.png")
    phone = "#fields tr[data-field='phone']"
    assert await browser.texts(f"{phone} td") == ["phone", "555-0199", "555-0199", "555-0199", "555-0100 → 555-0199"]
    assert await browser.texts("#fields tr[data-field='email'] td") == [
        "email", "jane@example.com", "jane@example.com", "jane@example.com", ""
    ]  # fmt: skip
    differing = "return document.querySelectorAll('#fields tr.differs').length"  # none: no implicit wait for one
    assert await asyncio.to_thread(browser.driver.execute_script, differing) == 0

    # Changed in QuickBooks behind hsqbo's back (no webhook): the page reads both now and shows them apart.
    stack.sandbox.qbo.faults.update(webhook_drop_rate=1.0)
    customer = next(c for c in stack.qbo_entities("Customer") if c["Id"] == link.qbo_id)
    stack.qbo_edit("Customer", "update", {"Id": customer["Id"], "PrimaryPhone": {"FreeFormNumber": "555-0777"}})
    await browser.open(str(await asyncio.to_thread(lambda: browser.driver.current_url)))
    assert await browser.texts(f"{phone} td") == ["phone", "555-0199", "555-0777", "555-0199", "555-0100 → 555-0199"]
    assert await browser.texts("#fields tr.differs td:first-child") == ["phone"]
    await browser.screenshot(tmp_path / "record-drifted.png")
    assert other["id"] not in await browser.text("#record")


@pytest.mark.parametrize("sync_overrides", [CONTACTS_WHEN_READY], indirect=True)
async def test_a_failing_invoice_explains_its_error_and_links_to_the_customer_it_waits_for(
    stack: Stack, page: str, browser: Browser, tmp_path: Path
) -> None:
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Late Ltd",
                                                     "PrimaryEmailAddr": {"Address": "late@example.com"}})  # fmt: skip
    invoice_id = qbo_invoice(stack, str(customer["Id"]), sales_line(item(stack, "Late", 10), 1, 10),
                             DocNumber="1001")  # fmt: skip
    await stack.settle()

    await browser.open(f"{page}/connections/{CONNECTION}/records?status=failing")
    [name] = await browser.texts("#records tr.record td.name")
    assert name == "#1001 · Late Ltd · 10.00 USD"
    await browser.navigate("#records tr.record td.name a")
    assert await browser.text("#status") == "failing"
    assert (await browser.text("#error")).startswith("customer_not_synced: QuickBooks customer")
    assert await browser.text("#explanation-what") == "The invoice's customer is not synced yet."
    assert (await browser.text("#explanation-fix")).startswith("Sync the customer it waits for")
    assert await browser.text("#waits-for") == f"QuickBooks customer {customer['Id']} (Late Ltd · late@example.com)"
    assert await browser.texts("#seen tr[data-field='customer'] td") == ["customer", "—", "Late Ltd"]
    await browser.screenshot(tmp_path / "failing-invoice.png")

    await browser.navigate("#waits-for")  # the customer: left out by the contacts filter, and saying why
    assert await browser.text("#name") == "Late Ltd · late@example.com"
    assert await browser.text("#status") == "excluded"
    assert await browser.text("#explanation-what") == "A filter of the sync rules leaves this record out."
    assert await browser.attribute("#qbo-link", "href") == qbo_url(Kind.CONTACT, str(customer["Id"]), sandbox=True)
    await browser.screenshot(tmp_path / "awaited-customer.png")

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{page}/connections/{CONNECTION}/records.csv?kind=invoice") as response,
    ):
        [row] = list(csv.DictReader(io.StringIO(await response.text())))
    assert (field(row, "qbo_id"), field(row, "name"), field(row, "error_category")) == (
        invoice_id, "#1001 · Late Ltd · 10.00 USD", "customer_not_synced"
    )  # fmt: skip
    assert field(row, "explanation").startswith("The invoice's customer is not synced yet. Why: ")
    assert field(row, "quickbooks_url") == qbo_url(Kind.INVOICE, invoice_id, sandbox=True)


async def test_odd_input_to_the_records_and_dead_letters_pages_is_never_a_500(stack: Stack, page: str) -> None:
    gets = [
        f"/connections/{CONNECTION}/records?q=%00%25_&page=%C2%B2",
        f"/connections/{CONNECTION}/records?kind=nope",
        f"/connections/{CONNECTION}/records.csv?q=%00",
        f"/connections/{CONNECTION}/contact/hubspot/%00",
        f"/connections/{CONNECTION}/contact/nowhere/1",
        "/dead-letters?since=%C2%B2&until=tomorrow&kind=%00",
        "/dead-letters/%00",
        "/dead-letters/scan",
    ]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for path in gets:
            async with session.get(page + path) as response:
                assert response.status in (200, 400, 404), path
        async with session.get(page + "/dead-letters") as response:
            token = re.search(r'<meta name="csrf-token" content="([^"]+)"', await response.text())
        assert token is not None
        form = {"scope": "filtered", "since": "²", "csrf_token": token[1]}
        async with session.post(page + "/dead-letters/purge", data=form, allow_redirects=False) as response:
            assert response.status == 303
            assert "could+not+read+since" in response.headers["Location"]

"""Dates across time zones end to end (the issue's "Dates" rules): a QBO transaction date is a day in the QBO
company's time zone, a HubSpot datetime is an instant, and `created_after` filters count from midnight in the zone of
the account a record lives in. The QBO sandbox reports its company's zone (CompanyInfo.DefaultTimeZone, or not) and
stamps every answer's `time` in it, the HubSpot sandbox its portal's (account-info)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain import Kind, Provider
from shared.store import Link, LinkStatus
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration

SAN_FRANCISCO = "America/Los_Angeles"
KOLKATA = "Asia/Kolkata"
PAYMENTS_BOTH_WAYS = {"contacts": {"direction": "off"}, "products": {"direction": "off"},
                      "invoices": {"direction": "off"}, "payments": {"direction": "two_way"}}  # fmt: skip


@pytest.fixture
def sync_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    overrides: dict[str, Any] = getattr(request, "param", PAYMENTS_BOTH_WAYS)
    return overrides


async def linked_invoice(stack: Stack, customer_id: str, name: str) -> tuple[str, str]:
    """A QBO invoice of 100 and an open HubSpot invoice, linked as the invoices rule links them."""
    income = next(a["Id"] for a in stack.qbo_entities("Account") if a["AccountSubType"] == "ServiceFeeIncome")
    item = stack.qbo_edit("Item", "create", {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": income}})
    invoice = stack.qbo_edit("Invoice", "create", {"CustomerRef": {"value": customer_id}, "TxnDate": "2026-01-02",
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 100,
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 100}}]})  # fmt: skip
    hubspot = stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD",
                                                                    "hs_invoice_billable": "false"})  # fmt: skip
    line = stack.hubspot_edit("line_items", "create", properties={"name": name, "price": "100", "quantity": "1"})
    stack.hubspot_edit("line_items", "associate", id=line["id"], to_object_type="invoices", to_id=hubspot["id"])
    stack.hubspot_edit("invoices", "update", id=hubspot["id"], properties={"hs_invoice_status": "open"})
    await stack.store.save_link(Link(connection=CONNECTION, kind=Kind.INVOICE, origin=Provider.QUICKBOOKS,
                                     hubspot_id=hubspot["id"], qbo_id=str(invoice["Id"])))  # fmt: skip
    return str(invoice["Id"]), str(hubspot["id"])


async def test_payment_date_in_company_time_zone(stack: Stack) -> None:
    stack.sandbox.qbo.realms[stack.realm_id].company.configure({"time_zone": SAN_FRANCISCO})
    customer_id = str(stack.qbo_edit("Customer", "create", {"DisplayName": "Bay Area Bikes"})["Id"])
    first_qbo, _ = await linked_invoice(stack, customer_id, "Tune-up")
    _, second_hubspot = await linked_invoice(stack, customer_id, "Repair")

    # HubSpot -> QBO: paid at 21:30 in San Francisco on 5 January (05:30 UTC on the 6th) is TxnDate 5 January.
    evening = dt.datetime(2026, 1, 5, 21, 30, tzinfo=ZoneInfo(SAN_FRANCISCO))
    payment = stack.hubspot_edit("commerce_payments", "create", properties={
        "hs_initial_amount": "100", "hs_currency_code": "USD",
        "hs_initiated_date": evening.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")})  # fmt: skip
    stack.hubspot_edit("commerce_payments", "associate", id=payment["id"], to_object_type="invoices",
                       to_id=second_hubspot)  # fmt: skip
    await stack.settle()
    [made] = [p for p in stack.qbo_entities("Payment") if str(p.get("PrivateNote", "")).startswith("HubSpot")]
    assert made["TxnDate"] == "2026-01-05"

    # QBO -> HubSpot: TxnDate 5 January is the start of that day in San Francisco, an instant on the 5th there.
    applied = [{"Amount": 100, "LinkedTxn": [{"TxnId": first_qbo, "TxnType": "Invoice"}]}]
    stack.qbo_edit("Payment", "create", {"CustomerRef": {"value": customer_id}, "TotalAmt": 100,
                                         "TxnDate": "2026-01-05", "Line": applied})  # fmt: skip
    await stack.settle()
    [copied] = [p for p in stack.hubspot_records("commerce_payments") if p.get("hsqbo_qbo_payment")]
    assert copied["hs_initiated_date"] == "2026-01-05T08:00:00.000Z"
    initiated = dt.datetime.fromisoformat(copied["hs_initiated_date"].replace("Z", "+00:00"))
    assert initiated.astimezone(ZoneInfo(SAN_FRANCISCO)).date() == dt.date(2026, 1, 5)


def _zone_whose_day_is_not_utcs(now: dt.datetime) -> tuple[str, dt.date]:
    """A real zone whose date differs from UTC's at `now` (one of these two always does), and its date."""
    for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14, UTC-11
        local = now.astimezone(ZoneInfo(name)).date()
        if local != now.date():
            return name, local
    raise AssertionError("unreachable: one of the two zones is always on another day than UTC")


NOW = dt.datetime.now(dt.UTC)
ZONE, ZONE_DAY = _zone_whose_day_is_not_utcs(NOW)
# Records are created now: counted in ZONE they are created on ZONE_DAY, counted in UTC on NOW's UTC day. With
# setup_date the later of the two days, a record passes only if the filter counts in ZONE (ZONE ahead of UTC), or,
# with the earlier day, only if it counts in UTC (ZONE behind): either way the outcome tells the zone used.
SETUP_DATE = max(ZONE_DAY, NOW.date())
PASSES_IN_ZONE = ZONE_DAY >= SETUP_DATE
FILTERED_PRODUCTS = {
    "setup_date": SETUP_DATE, "qbo_timezone": ZONE,
    "contacts": {"direction": "off"}, "invoices": {"direction": "off"}, "payments": {"direction": "off"},
    "products": {"direction": "two_way", "require_sku": False, "qbo_to_hubspot": {"created_after": "setup_date"},
                 "hubspot_to_qbo": {"created_after": "setup_date"}},
}  # fmt: skip


@pytest.mark.parametrize("sync_overrides", [FILTERED_PRODUCTS], indirect=True)
async def test_created_after_uses_company_zone(stack: Stack) -> None:
    stack.sandbox.hubspot.accounts.get(stack.portal_id).configure(time_zone=ZONE)
    item = stack.qbo_edit("Item", "create", {"Name": "Made in QuickBooks", "Type": "Service",
                                             "IncomeAccountRef": {"value": "1"}})  # fmt: skip
    product = stack.hubspot_edit("products", "create", properties={"name": "Made in HubSpot"})
    await stack.settle()

    item_link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, qbo_id=str(item["Id"]))
    product_link = await stack.store.get_link(CONNECTION, Kind.PRODUCT, hubspot_id=str(product["id"]))
    assert item_link is not None
    assert product_link is not None
    for link in (item_link, product_link):
        if PASSES_IN_ZONE:
            assert link.status == LinkStatus.SYNCED, link.error_message
        else:
            assert (link.status, link.error_category) == (LinkStatus.EXCLUDED, "filtered")
            assert f"created before {SETUP_DATE.isoformat()} ({ZONE})" in (link.error_message or "")


async def test_company_zone_falls_back_to_quickbooks_clock_offset(stack: Stack) -> None:
    # A company in Kolkata (UTC+05:30 all year) whose CompanyInfo carries no DefaultTimeZone, and no qbo_timezone:
    # its dates follow the offset of QBO's clock (`time` in every answer).
    stack.sandbox.qbo.realms[stack.realm_id].company.configure({"time_zone": KOLKATA, "reports_time_zone": False})
    customer_id = str(stack.qbo_edit("Customer", "create", {"DisplayName": "Chai Traders"})["Id"])
    first_qbo, _ = await linked_invoice(stack, customer_id, "Tea")
    _, second_hubspot = await linked_invoice(stack, customer_id, "Spices")

    # HubSpot -> QBO: paid at 20:00 UTC on 5 January, 01:30 on the 6th in Kolkata: TxnDate 6 January.
    payment = stack.hubspot_edit("commerce_payments", "create", properties={
        "hs_initial_amount": "100", "hs_currency_code": "USD",
        "hs_initiated_date": "2026-01-05T20:00:00.000Z"})  # fmt: skip
    stack.hubspot_edit("commerce_payments", "associate", id=payment["id"], to_object_type="invoices",
                       to_id=second_hubspot)  # fmt: skip
    await stack.settle()
    [made] = [p for p in stack.qbo_entities("Payment") if str(p.get("PrivateNote", "")).startswith("HubSpot")]
    assert made["TxnDate"] == "2026-01-06"

    # QBO -> HubSpot: TxnDate 5 January is 00:00 at UTC+05:30, 18:30 UTC on the 4th.
    applied = [{"Amount": 100, "LinkedTxn": [{"TxnId": first_qbo, "TxnType": "Invoice"}]}]
    stack.qbo_edit("Payment", "create", {"CustomerRef": {"value": customer_id}, "TotalAmt": 100,
                                         "TxnDate": "2026-01-05", "Line": applied})  # fmt: skip
    await stack.settle()
    [copied] = [p for p in stack.hubspot_records("commerce_payments") if p.get("hsqbo_qbo_payment")]
    assert copied["hs_initiated_date"] == "2026-01-04T18:30:00.000Z"


INVOICES_FROM_QBO = {"contacts": {"hubspot_to_qbo": {}}, "products": {"direction": "off"},
                     "payments": {"direction": "off"}}  # fmt: skip


@pytest.mark.parametrize("sync_overrides", [INVOICES_FROM_QBO], indirect=True)
async def test_created_after_far_from_the_setup_date_needs_no_company_zone(stack: Stack) -> None:
    stack.sandbox.qbo.realms[stack.realm_id].company.configure({"reports_time_zone": False})  # QBO reports no zone
    customer = stack.qbo_edit("Customer", "create", {"DisplayName": "Far Ltd",
                                                     "PrimaryEmailAddr": {"Address": "far@example.com"}})  # fmt: skip
    await stack.settle()
    income = next(a["Id"] for a in stack.qbo_entities("Account") if a["AccountSubType"] == "ServiceFeeIncome")
    item = stack.qbo_edit("Item", "create", {"Name": "Far", "Type": "Service", "IncomeAccountRef": {"value": income}})
    invoice = stack.qbo_edit("Invoice", "create", {"CustomerRef": {"value": customer["Id"]}, "Line": [
        {"DetailType": "SalesItemLineDetail", "Amount": 10,
         "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 10}}]})  # fmt: skip
    await stack.settle()
    # The stack's setup date is yesterday: created today is after it in every zone, so the filter needs none.
    link = await stack.store.get_link(CONNECTION, Kind.INVOICE, qbo_id=str(invoice["Id"]))
    assert link is not None
    assert link.status == LinkStatus.SYNCED, link.error_message

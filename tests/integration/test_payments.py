"""Payments end to end: QBO Payment ↔ HubSpot commerce payment, over real webhooks, RabbitMQ and both sandboxes.

Every test sets up its own linked invoice pair (a QBO invoice, a HubSpot invoice and the `Kind.INVOICE` link between
them), with every other object's sync off so only the payments rule acts. Each test is named after the rule it checks
(incumbent-integration.md: "Payment ... QBO → HubSpot", "a payment applied to several invoices does not sync", "an
ACH payment still processing is marked paid only once it completes"; the issue's payment rules)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from shared.domain import Awaited, Kind, PendingKey, Provider
from shared.envelope import Operation
from shared.store import Link, LinkStatus
from tests.integration.conftest import CONNECTION, Stack
from tests.integration.test_poller import hint, queue_changes

pytestmark = pytest.mark.integration

ONLY_PAYMENTS: dict[str, Any] = {
    "contacts": {"direction": "off"},
    "products": {"direction": "off"},
    "invoices": {"direction": "off"},
}
TWO_WAY = {**ONLY_PAYMENTS, "payments": {"direction": "two_way"}}
ALLOCATING = {**ONLY_PAYMENTS, "payments": {"allocate_multi_invoice": True}}


@pytest.fixture
def sync_overrides() -> dict[str, Any]:
    return ONLY_PAYMENTS


@dataclasses.dataclass(frozen=True)
class InvoicePair:
    customer_id: str
    qbo_id: str
    hubspot_id: str


def qbo_customer(stack: Stack) -> str:
    return str(stack.qbo_edit("Customer", "create", {"DisplayName": "Payer Ltd"})["Id"])


async def linked_invoice(stack: Stack, customer_id: str, amount: int = 100, *, link: bool = True) -> InvoicePair:
    """A QBO invoice and an open HubSpot invoice of the same amount, linked as the invoices rule would link them."""
    income = next(a["Id"] for a in stack.qbo_entities("Account") if a["AccountSubType"] == "ServiceFeeIncome")
    item = stack.qbo_edit("Item", "create", {"Name": f"Service {amount}-{customer_id}-{link}", "Type": "Service",
                                             "IncomeAccountRef": {"value": income}})  # fmt: skip
    invoice = stack.qbo_edit("Invoice", "create", {
        "CustomerRef": {"value": customer_id},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": amount,
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": amount}}],
    })  # fmt: skip
    hubspot = stack.hubspot_edit("invoices", "create", properties={"hs_currency": "USD",
                                                                    "hs_invoice_billable": "false"})  # fmt: skip
    line = stack.hubspot_edit("line_items", "create", properties={"name": "Service", "price": str(amount),
                                                                   "quantity": "1"})  # fmt: skip
    stack.hubspot_edit("line_items", "associate", id=line["id"], to_object_type="invoices", to_id=hubspot["id"])
    stack.hubspot_edit("invoices", "update", id=hubspot["id"], properties={"hs_invoice_status": "open"})
    if link:
        await stack.store.save_link(
            Link(connection=CONNECTION, kind=Kind.INVOICE, origin=Provider.QUICKBOOKS,
                 hubspot_id=hubspot["id"], qbo_id=str(invoice["Id"]))
        )  # fmt: skip
    return InvoicePair(customer_id, str(invoice["Id"]), hubspot["id"])


def qbo_payment(stack: Stack, customer_id: str, applied: dict[str, int]) -> str:
    lines = [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}
             for invoice_id, amount in applied.items()]  # fmt: skip
    body = {"CustomerRef": {"value": customer_id}, "TotalAmt": sum(applied.values()), "Line": lines,
            "TxnDate": "2026-03-02", "PaymentRefNum": "CHK-1001"}  # fmt: skip
    return str(stack.qbo_edit("Payment", "create", body)["Id"])


def hubspot_invoice(stack: Stack, hubspot_id: str) -> dict[str, str]:
    [invoice] = [i for i in stack.hubspot_records("invoices") if i["id"] == hubspot_id]
    return invoice


def hubspot_payments(stack: Stack) -> list[dict[str, str]]:
    return stack.hubspot_records("commerce_payments")


def qbo_invoice(stack: Stack, qbo_id: str) -> dict[str, Any]:
    [invoice] = [i for i in stack.qbo_entities("Invoice") if i["Id"] == qbo_id]
    return invoice


def associated_invoices(stack: Stack, payment_id: str) -> list[int]:
    portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal
    return sorted(portal.associations.targets(("commerce_payments", int(payment_id)), "invoices"))


async def payment_link(stack: Stack, *, qbo_id: str | None = None, hubspot_id: str | None = None) -> Link:
    link = await stack.store.get_link(CONNECTION, Kind.PAYMENT, qbo_id=qbo_id, hubspot_id=hubspot_id)
    assert link is not None
    return link


def new_hubspot_payment(stack: Stack, invoice: InvoicePair, amount: int, status: str | None = None) -> str:
    properties = {"hs_initial_amount": str(amount), "hs_initiated_date": "2026-03-02T15:00:00Z",
                  "hs_currency_code": "USD", "hs_payment_method": "ach"}  # fmt: skip
    if status:
        properties["hs_latest_status"] = status
    payment = stack.hubspot_edit("commerce_payments", "create", properties=properties)
    stack.hubspot_edit("commerce_payments", "associate", id=payment["id"], to_object_type="invoices",
                       to_id=invoice.hubspot_id)  # fmt: skip
    return str(payment["id"])


# --- QBO -> HubSpot ---------------------------------------------------------------------------------------------------


async def test_qbo_payment_on_one_mapped_invoice_becomes_one_hubspot_payment_and_pays_the_invoice(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    payment_id = qbo_payment(stack, pair.customer_id, {pair.qbo_id: 100})
    await stack.settle()
    [payment] = hubspot_payments(stack)
    assert float(payment["hs_initial_amount"]) == 100
    assert payment["hs_initiated_date"].startswith("2026-03-02")
    assert (payment["hs_currency_code"], payment["hs_reference_number"]) == ("USD", "CHK-1001")
    assert payment.get("hs_latest_status") == "succeeded"
    assert associated_invoices(stack, payment["id"]) == [int(pair.hubspot_id)]
    invoice = hubspot_invoice(stack, pair.hubspot_id)
    assert invoice["hs_invoice_status"] == "paid"
    assert float(invoice["hs_balance_due"]) == 0
    link = await payment_link(stack, qbo_id=payment_id)
    assert (link.status, link.hubspot_id) == (LinkStatus.SYNCED, payment["id"])


async def test_partial_qbo_payment_leaves_the_invoice_partially_paid_with_its_balance(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    qbo_payment(stack, pair.customer_id, {pair.qbo_id: 40})
    await stack.settle()
    [payment] = hubspot_payments(stack)
    assert float(payment["hs_initial_amount"]) == 40
    invoice = hubspot_invoice(stack, pair.hubspot_id)
    assert invoice["hs_invoice_status"] == "open"
    assert (float(invoice["hs_amount_paid"]), float(invoice["hs_balance_due"])) == (40, 60)


async def test_payment_applied_to_several_invoices_is_excluded_with_the_reason(stack: Stack) -> None:
    customer_id = qbo_customer(stack)
    first, second = await linked_invoice(stack, customer_id, 100), await linked_invoice(stack, customer_id, 50)
    payment_id = qbo_payment(stack, customer_id, {first.qbo_id: 100, second.qbo_id: 50})
    await stack.settle()
    assert hubspot_payments(stack) == []
    link = await payment_link(stack, qbo_id=payment_id)
    assert (link.status, link.error_category) == (LinkStatus.EXCLUDED, "multi_invoice")
    assert "cannot be split" in (link.error_message or "")


@pytest.mark.parametrize("sync_overrides", [ALLOCATING])
async def test_payment_applied_to_several_invoices_is_split_per_invoice_when_allocation_is_on(stack: Stack) -> None:
    customer_id = qbo_customer(stack)
    first, second = await linked_invoice(stack, customer_id, 100), await linked_invoice(stack, customer_id, 50)
    payment_id = qbo_payment(stack, customer_id, {first.qbo_id: 100, second.qbo_id: 30})
    await stack.settle()
    payments = hubspot_payments(stack)
    by_invoice = {associated_invoices(stack, p["id"])[0]: float(p["hs_initial_amount"]) for p in payments}
    assert by_invoice == {int(first.hubspot_id): 100, int(second.hubspot_id): 30}
    assert hubspot_invoice(stack, first.hubspot_id)["hs_invoice_status"] == "paid"
    assert float(hubspot_invoice(stack, second.hubspot_id)["hs_balance_due"]) == 20
    link = await payment_link(stack, qbo_id=payment_id)
    assert link.status == LinkStatus.SYNCED
    assert set(link.synced) == {first.qbo_id, second.qbo_id}


async def test_payment_on_an_invoice_not_synced_is_failing_invoice_not_synced(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack), link=False)
    payment_id = qbo_payment(stack, pair.customer_id, {pair.qbo_id: 100})
    await stack.settle()
    assert hubspot_payments(stack) == []
    link = await payment_link(stack, qbo_id=payment_id)
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "invoice_not_synced")


async def test_qbo_payment_on_an_invoice_of_a_deal_is_visible_from_the_deal(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    deal = stack.hubspot_edit("deals", "create", properties={"dealname": "Payer renewal", "dealstage": "closedwon",
                                                              "amount": "100"})  # fmt: skip
    stack.hubspot_edit("invoices", "associate", id=pair.hubspot_id, to_object_type="deals", to_id=deal["id"])
    qbo_payment(stack, pair.customer_id, {pair.qbo_id: 100})
    await stack.settle()
    [payment] = hubspot_payments(stack)
    portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal
    assert sorted(portal.associations.targets(("deals", int(deal["id"])), "commerce_payments")) == [int(payment["id"])]
    assert associated_invoices(stack, payment["id"]) == [int(pair.hubspot_id)]


# Invoices reach HubSpot only once a QBO user marks them ready, so a payment can sync before its invoice does.
INVOICES_WHEN_READY = {**ONLY_PAYMENTS, "invoices": {"qbo_to_hubspot": {"qbo_fields": {"PrivateNote": "ready"}}}}


@pytest.mark.parametrize("sync_overrides", [INVOICES_WHEN_READY])
async def test_payment_failing_for_want_of_its_invoice_syncs_by_itself_once_the_invoice_syncs(stack: Stack) -> None:
    email = "early@example.com"
    customer_id = str(stack.qbo_edit("Customer", "create", {"DisplayName": "Early Ltd",
                                                            "PrimaryEmailAddr": {"Address": email}})["Id"])  # fmt: skip
    stack.hubspot_edit("contacts", "create", properties={"email": email})
    pair = await linked_invoice(stack, customer_id, link=False)
    payment_id = qbo_payment(stack, customer_id, {pair.qbo_id: 100})
    await stack.settle()
    assert hubspot_payments(stack) == []
    link = await payment_link(stack, qbo_id=payment_id)
    assert (link.status, link.error_category) == (LinkStatus.FAILING, "invoice_not_synced")
    waiting = await stack.store.waiting_for(CONNECTION, Awaited(Kind.INVOICE, Provider.QUICKBOOKS, pair.qbo_id))
    assert waiting == [PendingKey(CONNECTION, Kind.PAYMENT, Provider.QUICKBOOKS, payment_id)]  # data, not its message
    stack.qbo_edit("Invoice", "update", {"Id": pair.qbo_id, "PrivateNote": "ready"})
    await stack.settle()
    [copy] = [i for i in stack.hubspot_records("invoices") if i.get("hsqbo_qbo_invoice_id") == pair.qbo_id]
    [payment] = hubspot_payments(stack)
    assert associated_invoices(stack, payment["id"]) == [int(copy["id"])]
    assert (copy["hs_invoice_status"], float(copy["hs_balance_due"])) == ("paid", 0)
    assert (await payment_link(stack, qbo_id=payment_id)).status == LinkStatus.SYNCED


async def test_payment_voided_in_qbo_removes_the_hubspot_payment_and_reopens_the_balance(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    payment_id = qbo_payment(stack, pair.customer_id, {pair.qbo_id: 100})
    await stack.settle()
    assert len(hubspot_payments(stack)) == 1
    stack.qbo_edit("Payment", "void", {"Id": payment_id})
    await stack.settle()
    assert hubspot_payments(stack) == []
    assert float(hubspot_invoice(stack, pair.hubspot_id)["hs_balance_due"]) == 100
    assert (await payment_link(stack, qbo_id=payment_id)).status == LinkStatus.DELETED


async def test_payment_deleted_in_qbo_removes_the_hubspot_payment(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    payment_id = qbo_payment(stack, pair.customer_id, {pair.qbo_id: 60})
    await stack.settle()
    stack.qbo_edit("Payment", "delete", {"Id": payment_id})
    await stack.settle()
    assert hubspot_payments(stack) == []
    assert (await payment_link(stack, qbo_id=payment_id)).status == LinkStatus.DELETED


async def test_payment_delete_hint_rereads_qbo(stack: Stack) -> None:
    """A "deleted" event is a hint: the payment still exists in QBO, so its HubSpot payment stays."""
    pair = await linked_invoice(stack, qbo_customer(stack))
    payment_id = qbo_payment(stack, pair.customer_id, {pair.qbo_id: 100})
    await stack.settle()
    [payment] = hubspot_payments(stack)
    stack.clear_request_logs()
    await queue_changes(stack, hint(stack, Provider.QUICKBOOKS, "payment", payment_id, Operation.DELETED))
    await stack.settle()
    assert [p["id"] for p in hubspot_payments(stack)] == [payment["id"]]
    assert stack.sandbox.hubspot.requests.list(method="DELETE") == []
    assert stack.sandbox.qbo.requests.list(method="GET", path_contains=f"/payment/{payment_id}")  # re-read
    assert (await payment_link(stack, qbo_id=payment_id)).status == LinkStatus.SYNCED


# --- HubSpot -> QBO ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sync_overrides", [TWO_WAY])
async def test_hubspot_payment_becomes_one_qbo_payment_on_the_linked_invoice_without_echo(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    await stack.settle()
    stack.clear_request_logs()
    hubspot_id = new_hubspot_payment(stack, pair, 100)
    await stack.settle()
    [payment] = stack.qbo_entities("Payment")
    assert payment["CustomerRef"]["value"] == pair.customer_id
    assert payment["TotalAmt"] == 100
    assert payment["TxnDate"] == "2026-03-02"
    assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": pair.qbo_id, "TxnType": "Invoice"}]
    assert qbo_invoice(stack, pair.qbo_id)["Balance"] == 0
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 1}  # once, and nothing echoed back to HubSpot
    assert [p["id"] for p in hubspot_payments(stack)] == [hubspot_id]
    link = await payment_link(stack, hubspot_id=hubspot_id)
    assert (link.origin, link.qbo_id, link.status) == (Provider.HUBSPOT, payment["Id"], LinkStatus.SYNCED)


@pytest.mark.parametrize("sync_overrides", [TWO_WAY])
async def test_processing_ach_payment_reaches_qbo_only_once_it_completes(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    hubspot_id = new_hubspot_payment(stack, pair, 100, status="processing")
    await stack.settle()
    assert stack.qbo_entities("Payment") == []
    link = await payment_link(stack, hubspot_id=hubspot_id)
    assert (link.status, link.error_category) == (LinkStatus.EXCLUDED, "payment_processing")
    stack.hubspot_edit("commerce_payments", "update", id=hubspot_id, properties={"hs_latest_status": "succeeded"})
    await stack.settle()
    [payment] = stack.qbo_entities("Payment")
    assert payment["TotalAmt"] == 100
    assert qbo_invoice(stack, pair.qbo_id)["Balance"] == 0
    assert (await payment_link(stack, hubspot_id=hubspot_id)).status == LinkStatus.SYNCED


@pytest.mark.parametrize("sync_overrides", [TWO_WAY])
async def test_hubspot_payment_deleted_voids_its_qbo_payment(stack: Stack) -> None:
    pair = await linked_invoice(stack, qbo_customer(stack))
    hubspot_id = new_hubspot_payment(stack, pair, 100)
    await stack.settle()
    stack.hubspot_edit("commerce_payments", "delete", id=hubspot_id)
    await stack.settle()
    [payment] = stack.qbo_entities("Payment")
    assert payment["TotalAmt"] == 0
    assert payment["PrivateNote"].startswith("Voided")
    assert qbo_invoice(stack, pair.qbo_id)["Balance"] == 100
    assert (await payment_link(stack, hubspot_id=hubspot_id)).status == LinkStatus.DELETED

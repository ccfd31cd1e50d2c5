"""Reconciliation: every linked pair read back from both sides in batches and compared as the rules compare them;
the fields that differ reported per object and kept; drifted and missing records queued again from the right side;
due once every `reconcile_seconds` per connection."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from services.poller._reconcile import (
    KEEP_REPORTS,
    PAIRS,
    RECONCILED_AT,
    Difference,
    Reconciler,
    cents,
    compare,
    format_report,
    judge,
    qbo_select,
    reconcile,
)
from shared.clients import HubSpotObject, Request, Response
from shared.company import Company, HubSpotAccount, QboCompany
from shared.domain import Kind, Provider
from shared.envelope import Operation
from shared.metrics import RECONCILE_DRIFT
from shared.store import Link, Reconciliation, Store
from shared.syncconfig import ConnectionSettings
from tests.clients.answers import company_settings_answer, json_answer, json_of, path_of, query_of
from tests.poller.conftest import CONNECTION, NOW, RECONCILE_SECONDS, poll_on

CONTACTS, PRODUCTS, INVOICES, PAYMENTS = PAIRS
COMPANY = Company(QboCompany("USD", False, "UTC"), HubSpotAccount("USD", (), "UTC", "101"), "UTC")
AGREED = {"email": "ann@example.com", "first_name": "Ann", "phone": "555-0100"}


def contact(record_id: str, **properties: str) -> HubSpotObject:
    values = {"email": "ann@example.com", "firstname": "Ann", "phone": "555-0100", **properties}
    return HubSpotObject(record_id, dict(values), None, None)


def customer(customer_id: str, **fields: Any) -> dict[str, Any]:
    return {"Id": customer_id, "SyncToken": "0", "Active": True, "GivenName": "Ann",
            "PrimaryEmailAddr": {"Address": "ann@example.com"}, "PrimaryPhone": {"FreeFormNumber": "555-0100"},
            **fields}  # fmt: skip


def contact_link(hubspot_id: str = "101", qbo_id: str = "1", **fields: Any) -> Link:
    return Link(connection="acme", kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id=hubspot_id, qbo_id=qbo_id,
                synced=dict(AGREED), **fields)  # fmt: skip


def settings(**objects: Any) -> ConnectionSettings:
    return CONNECTION.model_copy(update={key: CONNECTION.objects(key[:-1]).model_copy(update=value)
                                         for key, value in objects.items()})  # fmt: skip


# --- the comparison --------------------------------------------------------------------------------------------------


def test_two_mapped_records_compare_to_the_fields_that_differ_with_both_values() -> None:
    hubspot = {"email": "a@example.com", "phone": "555-0100", "city": None}
    qbo = {"email": "a@example.com", "phone": "555-0199", "city": "Oslo", "zip": None}
    assert compare(hubspot, qbo) == [Difference("phone", "555-0100", "555-0199"), Difference("city", None, "Oslo")]
    assert compare(hubspot, dict(hubspot)) == []


def test_amounts_compare_to_the_cent_whatever_form_a_client_returns() -> None:
    assert cents("110") == cents(Decimal("110.00")) == cents(110.0) == cents(110) == "110.00"
    assert cents("110.004") == "110.00"
    assert cents("110.005") == "110.01"  # half away from zero
    assert cents("1234.5", "JPY") == "1235"
    assert cents(None) is None
    assert cents("n/a") == "n/a"  # no number: shown as it is, a difference


def test_a_field_changed_in_hubspot_is_drift_queued_from_hubspot() -> None:
    found = judge(
        CONTACTS, CONNECTION, contact_link(), {"101": contact("101", phone="555-0111")}, customer("1"), company=COMPANY
    )

    assert found.differences == (Difference("phone", "555-0111", "555-0100"),)
    assert found.queue == ((Provider.HUBSPOT, Operation.DRIFTED),)
    assert found.as_json() == {"kind": "contact", "hubspot_id": "101", "qbo_id": "1",
                               "fields": [{"field": "phone", "hubspot": "555-0111", "qbo": "555-0100"}]}  # fmt: skip


def test_a_field_changed_in_quickbooks_is_drift_queued_from_quickbooks() -> None:
    changed = customer("1", PrimaryPhone={"FreeFormNumber": "555-0199"})
    found = judge(CONTACTS, CONNECTION, contact_link(), {"101": contact("101")}, changed, company=COMPANY)

    assert found.differences == (Difference("phone", "555-0100", "555-0199"),)
    assert found.queue == ((Provider.QUICKBOOKS, Operation.DRIFTED),)


def test_a_field_changed_on_both_sides_is_queued_once_and_left_to_the_conflict_winner() -> None:
    moved = customer("1", PrimaryPhone={"FreeFormNumber": "555-0199"})
    found = judge(
        CONTACTS, CONNECTION, contact_link(), {"101": contact("101", phone="555-0111")}, moved, company=COMPANY
    )

    assert found.differences == (Difference("phone", "555-0111", "555-0199"),)
    assert found.queue == ((Provider.HUBSPOT, Operation.DRIFTED),)  # one apply merges both; the winner decides


def test_a_one_way_object_is_queued_from_the_side_it_syncs_from_and_compares_only_what_flows() -> None:
    one_way = settings(contacts={"direction": "qbo_to_hubspot"})
    found = judge(
        CONTACTS, one_way, contact_link(), {"101": contact("101", phone="555-0111")}, customer("1"), company=COMPANY
    )
    assert found.queue == ((Provider.QUICKBOOKS, Operation.DRIFTED),)  # HubSpot moved, but QBO is the source

    item = {"Id": "7", "Active": True, "Name": "Widget", "Sku": "W-1", "UnitPrice": 9.5, "Type": "Inventory"}
    product = HubSpotObject("201", {"name": "Widget", "hs_sku": "W-1", "price": "9.50", "hs_product_type": "service"},
                            None, None)  # fmt: skip
    link = Link(connection="acme", kind=Kind.PRODUCT, origin=Provider.HUBSPOT, hubspot_id="201", qbo_id="7")
    to_qbo = settings(products={"direction": "hubspot_to_qbo"})
    assert judge(PRODUCTS, to_qbo, link, {"201": product}, item, company=COMPANY).agreed  # the type flows from QBO only
    both = settings(products={"direction": "two_way"})
    assert judge(PRODUCTS, both, link, {"201": product}, item, company=COMPANY).differences == (
        Difference("type", "service", "inventory"),
    )


def test_an_invoice_compares_its_totals_to_the_cent_and_its_status() -> None:
    link = Link(connection="acme", kind=Kind.INVOICE, origin=Provider.QUICKBOOKS, hubspot_id="301", qbo_id="5")
    invoice = {"Id": "5", "SyncToken": "2", "TxnDate": "2026-11-20", "TotalAmt": Decimal("110.00"),
               "Balance": Decimal("110.00")}  # fmt: skip
    billed = {"hs_invoice_date": "2026-11-20T00:00:00Z", "hs_amount_billed": "110", "hs_balance_due": "110.00",
              "hs_invoice_status": "open"}  # fmt: skip
    record = HubSpotObject("301", dict(billed), None, None)
    assert judge(INVOICES, CONNECTION, link, {"301": record}, invoice, company=COMPANY).agreed

    short = HubSpotObject("301", {**billed, "hs_amount_billed": "109.99", "hs_balance_due": "109.99"}, None, None)
    found = judge(INVOICES, CONNECTION, link, {"301": short}, invoice, company=COMPANY)
    assert found.differences == (
        Difference("amount_billed", "109.99", "110.00"),
        Difference("balance_due", "109.99", "110.00"),
    )
    assert found.queue == ((Provider.QUICKBOOKS, Operation.DRIFTED),)  # its master re-pushes it

    paid = {**invoice, "Balance": Decimal(0)}
    assert [d.field for d in judge(INVOICES, CONNECTION, link, {"301": record}, paid, company=COMPANY).differences] == [
        "balance_due", "status",
    ]  # fmt: skip
    no_payments = settings(payments={"direction": "off"})  # HubSpot never learns of payments: only the total
    assert judge(INVOICES, no_payments, link, {"301": record}, paid, company=COMPANY).agreed

    voided = {**invoice, "TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}
    gone = judge(INVOICES, CONNECTION, link, {"301": HubSpotObject("301", {**billed, "hs_invoice_status": "voided"},
                                                                   None, None)}, voided, company=COMPANY)  # fmt: skip
    assert gone.agreed  # voided on both sides: HubSpot keeps what was billed


def test_a_payment_compares_the_amount_and_date_the_rule_writes() -> None:
    link = Link(connection="acme", kind=Kind.PAYMENT, origin=Provider.QUICKBOOKS, hubspot_id="401", qbo_id="9",
                synced={"5": "401"})  # fmt: skip
    payment = {"Id": "9", "TxnDate": "2026-11-21", "TotalAmt": Decimal("50.00"),
               "Line": [{"Amount": Decimal("50.00"), "LinkedTxn": [{"TxnId": "5", "TxnType": "Invoice"}]}]}  # fmt: skip
    record = HubSpotObject("401", {"hs_initial_amount": "50", "hs_initiated_date": "2026-11-21T00:00:00.000Z",
                                   "hs_currency_code": "USD"}, None, None)  # fmt: skip
    assert judge(PAYMENTS, CONNECTION, link, {"401": record}, payment, company=COMPANY).agreed

    moved = {**payment, "TxnDate": "2026-11-22"}
    found = judge(PAYMENTS, CONNECTION, link, {"401": record}, moved, company=COMPANY)
    assert [d.field for d in found.differences] == ["date"]
    assert found.queue == ((Provider.QUICKBOOKS, Operation.DRIFTED),)


def test_a_side_gone_or_inactive_is_missing_and_queued_where_it_flows() -> None:
    gone = judge(CONTACTS, CONNECTION, contact_link(), {}, customer("1"), company=COMPANY)
    assert (gone.missing, gone.queue) == ((Provider.HUBSPOT,), ((Provider.HUBSPOT, Operation.DELETED),))

    inactive = judge(
        CONTACTS, CONNECTION, contact_link(), {"101": contact("101")}, customer("1", Active=False), company=COMPANY
    )
    assert inactive.missing == (Provider.QUICKBOOKS,)
    assert inactive.queue == ((Provider.QUICKBOOKS, Operation.DRIFTED),)  # the rule re-reads it and archives
    assert inactive.as_json()["missing"] == ["quickbooks"]

    one_way = settings(contacts={"direction": "qbo_to_hubspot"})
    assert judge(CONTACTS, one_way, contact_link(), {}, customer("1"), company=COMPANY).queue == ()  # reported only


def test_qbo_is_read_by_id_in_chunks_inactive_name_list_records_included() -> None:
    assert qbo_select(CONTACTS, ["1", "2"]) == (
        "SELECT * FROM Customer WHERE Id IN ('1', '2') AND Active IN (true, false) MAXRESULTS 2"
    )
    assert qbo_select(INVOICES, ["5"]) == "SELECT * FROM Invoice WHERE Id IN ('5') MAXRESULTS 1"


# --- a run -----------------------------------------------------------------------------------------------------------


def books(customers: dict[str, dict[str, Any]], contacts: dict[str, HubSpotObject]) -> Any:
    """A handler answering contact batch reads and customer queries from these records."""

    def handler(request: Request) -> Response:
        if (settings := company_settings_answer(request)) is not None:
            return settings
        if path_of(request).endswith("/contacts/batch/read"):
            asked = [item["id"] for item in json_of(request)["inputs"]]
            found = [{"id": i, "properties": contacts[i].properties} for i in asked if i in contacts]
            return json_answer(200, {"status": "COMPLETE", "results": found})
        if path_of(request).endswith("/query"):
            statement = dict(query_of(request))["query"]
            rows = [row for customer_id, row in customers.items() if f"'{customer_id}'" in statement]
            return json_answer(200, {"QueryResponse": {"Customer": rows} if rows else {}})
        raise AssertionError(f"unexpected call {request.method} {request.url}")

    return handler


async def linked(store: Store, *pairs: tuple[str, str]) -> None:
    for hubspot_id, qbo_id in pairs:
        await store.save_link(contact_link(hubspot_id, qbo_id))


async def test_a_run_reports_and_queues_the_drifted_records_and_keeps_the_report(store: Store) -> None:
    await linked(store, ("101", "1"), ("102", "2"), ("103", "3"))
    handler = books(
        {"1": customer("1"), "2": customer("2", PrimaryPhone={"FreeFormNumber": "555-0199"})},
        {"101": contact("101"), "102": contact("102"), "103": contact("103")},
    )
    poll, queued, transport = poll_on(store, handler)

    report = await reconcile(poll.ctx, queued.publish, now=poll.now)

    assert report.objects["contact"] == {"checked": 3, "agreed": 1, "drifted": 1, "missing": 1}
    assert [(d["qbo_id"], d.get("missing"), d["fields"]) for d in report.drifted] == [
        ("2", None, [{"field": "phone", "hubspot": "555-0100", "qbo": "555-0199"}]),
        ("3", ["quickbooks"], []),
    ]
    assert [(e.provider, e.object_type, e.object_id, e.operation) for e in queued] == [
        (Provider.QUICKBOOKS, "customer", "2", Operation.DRIFTED),
        (Provider.QUICKBOOKS, "customer", "3", Operation.DELETED),
    ]
    reads = [r for r in transport.requests if company_settings_answer(r) is None]
    assert len(reads) == 2  # one batch read, one query for the three pairs (and the accounts' settings, once)
    assert await store.reconciliations("acme") == [report]
    assert RECONCILE_DRIFT.labels("acme", "contact")._value.get() == 2


async def test_a_run_names_the_records_it_read_for_the_status_page_and_a_dry_run_does_not(store: Store) -> None:
    await linked(store, ("101", "1"))
    handler = books({"1": customer("1", DisplayName="Ann (books)")}, {"101": contact("101", lastname="Lee")})
    poll, queued, _ = poll_on(store, handler)

    await reconcile(poll.ctx, None, now=poll.now)
    link = await store.get_link("acme", Kind.CONTACT, hubspot_id="101")
    assert link is not None
    assert (link.label, link.summary) == ("", {})

    await reconcile(poll.ctx, queued.publish, now=poll.now)
    link = await store.get_link("acme", Kind.CONTACT, hubspot_id="101")
    assert link is not None
    assert link.label == "Ann (books) · ann@example.com"  # the side read last, QuickBooks, over HubSpot's "Ann Lee"
    assert link.summary["hubspot"] == {"name": "Ann Lee", "email": "ann@example.com"}


async def test_a_dry_run_reports_and_queues_nothing(store: Store) -> None:
    await linked(store, ("101", "1"))
    poll, queued, _ = poll_on(store, books({"1": customer("1", GivenName="Anna")}, {"101": contact("101")}))

    report = await reconcile(poll.ctx, None, now=poll.now)

    assert report.dry_run
    assert report.objects["contact"]["drifted"] == 1
    assert queued == []


async def test_values_are_cut_short_and_old_reports_pruned(store: Store) -> None:
    await linked(store, ("101", "1"))
    long_name = "Ann" + "e" * 200
    poll, queued, _ = poll_on(store, books({"1": customer("1", GivenName=long_name)}, {"101": contact("101")}))
    for _ in range(KEEP_REPORTS + 2):
        report = await reconcile(poll.ctx, queued.publish, now=poll.now)
    [field] = report.drifted[0]["fields"]
    assert len(field["qbo"]) == 60
    assert field["qbo"].endswith("…")
    assert len(await store.reconciliations("acme", limit=100)) == KEEP_REPORTS


def test_the_report_prints_a_table_per_object_and_each_drifted_record() -> None:
    report = Reconciliation(
        connection="acme", started_at=NOW.timestamp(), finished_at=NOW.timestamp() + 1.5,
        objects={"contact": {"checked": 3, "agreed": 1, "drifted": 1, "missing": 1},
                 "invoice": {"checked": 0, "agreed": 0, "drifted": 0, "missing": 0}},
        drifted=[{"kind": "contact", "hubspot_id": "102", "qbo_id": "2",
                  "fields": [{"field": "phone", "hubspot": "555-0100", "qbo": None}]},
                 {"kind": "contact", "hubspot_id": "103", "qbo_id": "3", "missing": ["quickbooks"], "fields": []}],
    )  # fmt: skip
    lines = format_report(report).splitlines()

    assert lines[0] == "reconciled 2026-11-22 12:00:00 UTC in 1.5 s"
    assert lines[1].split() == ["object", "checked", "agreed", "drifted", "missing"]
    assert lines[2].split() == ["contact", "3", "1", "1", "1"]
    assert "HubSpot 102 / QuickBooks 2" in lines[5]
    assert lines[6].split() == ["phone", "HubSpot", "'555-0100'", "QuickBooks", "(empty)"]
    assert "missing in QuickBooks" in lines[8]
    quiet = dataclasses.replace(report, objects={"contact": {"checked": 3, "agreed": 3, "drifted": 0, "missing": 0}})
    assert format_report(quiet).splitlines()[-1] == "every pair agrees"


async def test_the_poller_reconciles_once_per_period(store: Store) -> None:
    await linked(store, ("101", "1"))
    handler = books({"1": customer("1")}, {})  # the contact is gone
    poll, queued, _ = poll_on(store, handler)
    await Reconciler().poll(poll)
    assert [(e.object_id, e.operation) for e in queued] == [("101", Operation.DELETED)]
    assert await store.get_cursor(CONNECTION.name, RECONCILED_AT) == str(NOW.timestamp())

    await Reconciler().poll(poll)  # the same instant: not due
    assert len(queued) == 1
    later, queued_later, _ = poll_on(store, handler)
    await Reconciler().poll(dataclasses.replace(later, now=later.now + RECONCILE_SECONDS))  # due again
    assert len(queued_later) == 1


async def test_a_restarted_poller_shows_the_last_kept_reports_drift_until_the_next_run(store: Store) -> None:
    await store.set_cursor(CONNECTION.name, RECONCILED_AT, str(NOW.timestamp()))  # reconciled just before
    kept = Reconciliation(connection="acme", started_at=1.0, finished_at=2.0,
                          objects={"product": {"checked": 4, "agreed": 1, "drifted": 2, "missing": 1}})  # fmt: skip
    await store.save_reconciliation(kept, keep=KEEP_REPORTS)
    RECONCILE_DRIFT.labels("acme", "product").set(0)
    poll, queued, transport = poll_on(store, books({}, {}))

    await Reconciler().poll(poll)

    assert RECONCILE_DRIFT.labels("acme", "product")._value.get() == 3
    assert (queued, transport.requests) == ([], [])  # not due: no API read

"""Randomized convergence: a few hundred creates and edits on both sides, made while the worker is syncing, then
quiescence → both systems agree on every mapped field and on every invoice's currency and total to the cent
(invoices with bundle and discount lines among them; the QBO company has multicurrency on and the portal has EUR too,
so some customers and their invoices are in EUR), and no customer, contact, item, product or invoice exists twice.
Two customers sharing a bookkeeper's email, and then a contact with it, need review: nothing is written for them on
either side."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from services.worker import _fields
from services.worker.rules import products
from services.worker.rules.contacts import SPEC
from shared.domain import Kind
from shared.store import LinkStatus
from tests.integration.conftest import CONNECTION, Stack

pytestmark = pytest.mark.integration

OPERATIONS = 240
SHARED_EMAIL = "books@keeper.converge.test"
SHARED_CUSTOMERS_AT, SHARED_CONTACT_AT = OPERATIONS // 3, 2 * OPERATIONS // 3  # operation numbers
HOME, FOREIGN = "USD", "EUR"


def hubspot_values(contact: dict[str, Any]) -> dict[str, str | None]:
    return _fields.from_hubspot(SPEC.fields, contact)


def qbo_values(customer: dict[str, Any]) -> dict[str, str | None]:
    return _fields.from_qbo(SPEC.fields, customer)


async def test_random_edits_on_both_sides_converge_without_duplicates(stack: Stack) -> None:
    rng = random.Random(20261122)
    stack.sandbox.qbo.realms[stack.realm_id].company.configure({"multicurrency": True,
                                                                "exchange_rates": {FOREIGN: "1.0825"}})  # fmt: skip
    stack.sandbox.hubspot.accounts.get(stack.portal_id).configure(additional_currencies=[FOREIGN])
    contacts: list[str] = []  # HubSpot ids
    customers: list[str] = []  # QBO ids
    items: list[str] = []  # QBO ids (products sync QBO -> HubSpot by default)
    invoices: list[str] = []  # QBO ids (invoices sync QBO -> HubSpot by default)
    kits: list[str] = []  # QBO Group items (bundles: no SKU, so no product)
    income = next(str(a["Id"]) for a in stack.qbo_entities("Account") if a["Name"] == "Sales of Product Income")
    shared: dict[str, dict[str, Any]] = {}  # records with SHARED_EMAIL, by id: never edited, never synced
    for n in range(OPERATIONS):
        if n == SHARED_CUSTOMERS_AT:
            for name in ("Alpha", "Beta"):
                body = {"DisplayName": f"{name} {n}", "GivenName": name, "PrimaryEmailAddr": {"Address": SHARED_EMAIL}}
                shared[stack.qbo_edit("Customer", "create", body)["Id"]] = body
            continue
        if n == SHARED_CONTACT_AT:
            properties = {"email": SHARED_EMAIL, "firstname": "Kim"}
            shared[stack.hubspot_edit("contacts", "create", properties=properties)["id"]] = properties
            continue
        roll = rng.random()
        if roll < 0.05 or (roll < 0.1 and items):
            if not items or roll < 0.05:
                item = stack.qbo_edit("Item", "create", {
                    "Name": f"Part {n}", "Sku": f"SKU-{n}", "Type": "Service", "UnitPrice": n,
                    "IncomeAccountRef": {"value": income},
                })  # fmt: skip
                items.append(item["Id"])
            else:
                stack.qbo_edit("Item", "update", {"Id": rng.choice(items), "UnitPrice": round(rng.uniform(1, 99), 2)})
        elif roll < 0.14 and items and customers:
            if not invoices or roll < 0.12:
                line = {"DetailType": "SalesItemLineDetail", "Amount": 2 * n, "SalesItemLineDetail": {
                    "ItemRef": {"value": rng.choice(items)}, "Qty": 2, "UnitPrice": n}}  # fmt: skip
                lines: list[dict[str, Any]] = [line]
                if len(items) >= 2 and rng.random() < 0.4:  # a bundle of two parts (a Group item made in QBO)
                    picked = zip(rng.sample(items, 2), (1, 3), strict=True)
                    parts = [{"ItemRef": {"value": i}, "Qty": q} for i, q in picked]
                    kit = stack.qbo_edit("Item", "create", {"Name": f"Kit {n}", "Type": "Group",
                                                            "ItemGroupDetail": {"ItemGroupLine": parts}})  # fmt: skip
                    kits.append(kit["Id"])
                    lines.append({"DetailType": "GroupLineDetail", "GroupLineDetail": {
                        "GroupItemRef": {"value": kit["Id"]}, "Quantity": rng.randint(1, 3)}})  # fmt: skip
                if rng.random() < 0.5:  # a discount, percent or amount
                    lines.append(rng.choice([
                        {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {
                            "PercentBased": True, "DiscountPercent": Decimal(rng.randint(1, 400)) / 10}},
                        {"DetailType": "DiscountLineDetail", "Amount": Decimal(n) / 4,
                         "DiscountLineDetail": {"PercentBased": False}},
                    ]))  # fmt: skip
                customer_id = rng.choice(customers)
                [customer] = [c for c in stack.qbo_entities("Customer") if c["Id"] == customer_id]
                currency = {"value": customer["CurrencyRef"]["value"]}  # QBO: the customer's currency, required
                invoice = stack.qbo_edit(
                    "Invoice", "create", {"CustomerRef": {"value": customer_id}, "CurrencyRef": currency, "Line": lines}
                )
                invoices.append(invoice["Id"])
            else:
                stack.qbo_edit("Invoice", "update", {"Id": rng.choice(invoices), "PrivateNote": f"note {n}"})
        elif roll < 0.2 or not contacts:
            created = stack.hubspot_edit("contacts", "create", properties={
                "email": f"hs{n}@converge.test", "firstname": f"H{n}", "lastname": rng.choice(["Ng", "Ortiz", "Li"]),
            })  # fmt: skip
            contacts.append(created["id"])
        elif roll < 0.33 or not customers:
            email = {"Address": f"qb{n}@converge.test"}
            held = {"value": FOREIGN if rng.random() < 0.35 else HOME}  # a customer's currency, for good
            body = {"DisplayName": f"Books {n}", "GivenName": f"Q{n}", "PrimaryEmailAddr": email, "CurrencyRef": held}
            created = stack.qbo_edit("Customer", "create", body)
            customers.append(created["Id"])
        elif roll < 0.65:
            field, value = rng.choice([("firstname", f"F{n}"), ("lastname", f"L{n}"), ("phone", f"+1 555 {n:04d}"),
                                       ("city", f"Town {n}")])  # fmt: skip
            stack.hubspot_edit("contacts", "update", id=rng.choice(contacts), properties={field: value})
        else:
            customer_id = rng.choice(customers)
            change: dict[str, Any] = rng.choice([{"GivenName": f"G{n}"}, {"FamilyName": f"K{n}"},
                                 {"PrimaryPhone": {"FreeFormNumber": f"+44 20 {n:04d}"}}])  # fmt: skip
            stack.qbo_edit("Customer", "update", {"Id": customer_id, **change})
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0, 0.08))  # let the worker get mid-sync between some edits
        if rng.random() < 0.2:
            # A record's counterpart appears while we edit: edit the other side of synced pairs too.
            linked = await stack.store.list_links(CONNECTION, Kind.CONTACT, LinkStatus.SYNCED, limit=1000)
            if linked:
                customers = sorted({*customers, *(link.qbo_id for link in linked if link.qbo_id)})
                contacts = sorted({*contacts, *(link.hubspot_id for link in linked if link.hubspot_id)})
    # Which customers an invoice went to depends on timing (linked customers join the pool): make sure the mix holds
    # an invoice in each currency.
    invoiced = {i["CurrencyRef"]["value"] for i in stack.qbo_entities("Invoice")}
    for lacking in sorted({HOME, FOREIGN} - invoiced):
        email = {"Address": f"last-{lacking.lower()}@converge.test"}
        body = {"DisplayName": f"Last {lacking}", "PrimaryEmailAddr": email, "CurrencyRef": {"value": lacking}}
        customer_id = stack.qbo_edit("Customer", "create", body)["Id"]
        line = {"DetailType": "SalesItemLineDetail", "Amount": 10, "SalesItemLineDetail": {
            "ItemRef": {"value": items[0]}, "Qty": 1, "UnitPrice": 10}}  # fmt: skip
        invoice = {"CustomerRef": {"value": customer_id}, "CurrencyRef": {"value": lacking}, "Line": [line]}
        invoices.append(stack.qbo_edit("Invoice", "create", invoice)["Id"])
    await stack.settle(within=120)

    every_link = await stack.store.list_links(CONNECTION, Kind.CONTACT, limit=10_000)
    review = [link for link in every_link if link.status == LinkStatus.NEEDS_REVIEW]
    assert sorted(str(link.hubspot_id or link.qbo_id) for link in review) == sorted(shared)
    assert all(not (link.hubspot_id and link.qbo_id) for link in review)  # linked to none
    links = [link for link in every_link if link not in review]
    assert [(link.hubspot_id, link.error_message) for link in links if link.status != LinkStatus.SYNCED] == []
    hubspot = {c["id"]: c for c in stack.hubspot_records("contacts")}
    qbo = {c["Id"]: c for c in stack.qbo_entities("Customer")}
    for record_id, made in shared.items():  # nothing written for them: each is as the user made it
        now = hubspot.pop(record_id, None) or qbo.pop(record_id)
        assert {key: now.get(key) for key in made} == made
    assert [c for c in hubspot.values() if c.get("email") == SHARED_EMAIL] == []
    contact_emails = Counter(c.get("email") for c in hubspot.values())
    customer_emails = Counter((c.get("PrimaryEmailAddr") or {}).get("Address") for c in qbo.values())
    assert max(contact_emails.values()) == 1
    assert max(customer_emails.values()) == 1
    assert set(contact_emails) == set(customer_emails)

    assert len(links) == len(hubspot) == len(qbo)
    disagreements = []
    for link in links:
        ours = hubspot_values(hubspot[str(link.hubspot_id)])
        theirs = qbo_values(qbo[str(link.qbo_id)])
        if ours != theirs:
            disagreements.append((link.hubspot_id, link.qbo_id, _fields.changed(ours, theirs)))
    assert disagreements == []

    qbo_items = {i["Sku"]: i for i in stack.qbo_entities("Item") if i.get("Sku")}
    hubspot_products = Counter(p.get("hs_sku") for p in stack.hubspot_records("products"))
    duplicated = {}
    for sku in (sku for sku, count in hubspot_products.items() if count > 1):
        history = await stack.store.activity(CONNECTION, Kind.PRODUCT, qbo_id=qbo_items[sku]["Id"])
        duplicated[sku] = [(a.action, a.hubspot_id, a.detail) for a in reversed(history)]
    assert duplicated == {}
    assert set(hubspot_products) == set(qbo_items)
    item_links = await stack.store.list_links(CONNECTION, Kind.PRODUCT, limit=10_000)
    assert {link.status for link in item_links if link.qbo_id in kits} <= {LinkStatus.EXCLUDED}
    item_links = [link for link in item_links if link.qbo_id not in kits]
    assert len(item_links) == len(qbo_items)
    by_id = {p["id"]: p for p in stack.hubspot_records("products")}
    qbo_by_id = {i["Id"]: i for i in qbo_items.values()}
    for link in item_links:
        assert link.status == LinkStatus.SYNCED, link.error_message
        ours = _fields.from_hubspot(products.SPEC.fields, by_id[str(link.hubspot_id)])
        theirs = _fields.from_qbo(products.SPEC.fields, qbo_by_id[str(link.qbo_id)])
        assert ours == theirs

    assert invoices  # the mix made some
    copies = Counter(i.get("hsqbo_qbo_invoice_id") for i in stack.hubspot_records("invoices"))
    assert max(copies.values(), default=1) == 1
    assert set(copies) == {i["Id"] for i in stack.qbo_entities("Invoice")}
    by_qbo_id = {i["hsqbo_qbo_invoice_id"]: i for i in stack.hubspot_records("invoices")}
    totals = {
        i["Id"]: ((i["CurrencyRef"]["value"], i["TotalAmt"]),
                  (by_qbo_id[i["Id"]]["hs_currency"], Decimal(by_qbo_id[i["Id"]]["hs_amount_billed"])))
        for i in stack.qbo_entities("Invoice")
    }  # fmt: skip
    assert {qbo_id: pair for qbo_id, pair in totals.items() if pair[0] != pair[1]} == {}  # same currency, to the cent
    assert {currency for (currency, _), _ in totals.values()} == {HOME, FOREIGN}  # the mix made both
    invoice_links = await stack.store.list_links(CONNECTION, Kind.INVOICE, limit=10_000)
    assert [(link.qbo_id, link.error_message) for link in invoice_links if link.status != LinkStatus.SYNCED] == []

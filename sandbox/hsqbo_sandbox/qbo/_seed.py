"""Seed data: the chart of accounts and tax codes every realm starts with, and a realistic demo book (customers,
items with and without SKUs, invoices with taxable and VAT lines, payments including ones applied to several
invoices). Seeding is history, not activity: it writes through the business rules but emits no webhooks."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from hsqbo_sandbox.qbo import _rules as rules
from hsqbo_sandbox.qbo._store import Realm, Record
from hsqbo_sandbox.qbo._timestamps import company_time, whole_seconds

ACCOUNTS = (
    ("Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("Services", "Income", "ServiceFeeIncome"),
    ("Consulting Income", "Income", "OtherPrimaryIncome"),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("Checking", "Bank", "Checking"),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("Inventory Asset", "Other Current Asset", "Inventory"),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
)
# (Id, Name, Description, TaxRate Id or None); TAX/NON are the US line codes, "3" a non-US style VAT code
TAX_RATES = (("1", "California", Decimal(8)), ("2", "VAT Standard", Decimal(20)))
TAX_CODES: tuple[tuple[str, str, str, str | None], ...] = (
    ("TAX", "TAX", "Taxable (US sales tax)", "1"),
    ("NON", "NON", "Non-taxable", None),
    ("3", "20.0% S", "UK VAT standard rate", "2"),
)
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam")
LAST_NAMES = ("Okafor", "Schmidt", "Nakamura", "Silva", "Novak", "Haddad", "Brennan", "Kowalski", "Moreau")
COMPANY_WORDS = ("Acme", "Northwind", "Blue Harbor", "Granite", "Evergreen", "Summit", "Lumen", "Cobalt", "Juniper")
COMPANY_KINDS = ("Ltd", "GmbH", "Inc", "LLC", "& Co", "Partners", "Studio", "Labs")
PRODUCTS = ("Widget", "Gadget", "Consulting hour", "Support plan", "Installation", "Sensor", "Licence", "Training")


def system_record(realm: Realm, entity: str, entity_id: str, data: dict[str, Any], now: float) -> None:
    stamp = whole_seconds(now)
    meta = {"CreateTime": company_time(stamp), "LastUpdatedTime": company_time(stamp)}
    realm.records[entity][entity_id] = Record(
        {"Id": entity_id, "SyncToken": "0", "domain": "QBO", "sparse": False, "Active": True, **data, "MetaData": meta},
        stamp,
        stamp,
    )


def seed_reference_data(realm: Realm, now: float) -> None:
    for name, account_type, sub_type in ACCOUNTS:
        system_record(realm, "Account", realm.new_id("Account"), {"Name": name, "FullyQualifiedName": name,
                      "AccountType": account_type, "AccountSubType": sub_type, "Classification": None,
                      "CurrentBalance": 0, "CurrencyRef": {"value": "USD"}}, now)  # fmt: skip
    for rate_id, name, value in TAX_RATES:
        system_record(realm, "TaxRate", rate_id, {"Name": name, "RateValue": value, "SpecialTaxType": "NONE"}, now)
    for code_id, name, description, code_rate in TAX_CODES:
        rates = (
            [{"TaxRateRef": {"value": code_rate}, "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0}]
            if code_rate
            else []
        )
        system_record(realm, "TaxCode", code_id, {"Name": name, "Description": description, "Taxable": bool(code_rate),
                      "TaxGroup": False, "SalesTaxRateList": {"TaxRateDetail": rates},
                      "PurchaseTaxRateList": {"TaxRateDetail": []}}, now)  # fmt: skip


def _account_id(realm: Realm, sub_type: str) -> str:
    return next(str(r.data["Id"]) for r in realm.records["Account"].values() if r.data["AccountSubType"] == sub_type)


def seed_demo_book(
    realm: Realm, now: float, *, customers: int = 1000, items: int = 200, invoices: int = 2000, seed: int = 42
) -> dict[str, int]:
    """Create the demo book; returns how many of each entity were created. Payments: about 40% of invoices are
    paid, a quarter of those by one payment applied to several invoices of the same customer."""
    rng = random.Random(seed)
    customer_ids = []
    company_names = [f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}" for _ in range(max(1, customers // 4))]
    for number in range(customers):
        given, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        company = rng.choice(company_names)  # several customers share a company name, as contacts of one firm do
        customer: dict[str, Any] = {"GivenName": given, "FamilyName": family, "CompanyName": company,
                "DisplayName": f"{given} {family} ({company}) #{number + 1}",
                "PrimaryEmailAddr": {"Address": f"{given.lower()}.{family.lower()}{number + 1}@example.com"},
                "PrimaryPhone": {"FreeFormNumber": f"(555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}"},
                "BillAddr": {"Line1": f"{rng.randint(1, 999)} Main St", "City": "Springfield",
                             "CountrySubDivisionCode": "CA", "PostalCode": f"9{rng.randint(1000, 9999)}",
                             "Country": "USA"}}  # fmt: skip
        customer_ids.append(rules.create(realm, "Customer", customer, now).body["Id"])
    item_ids = []
    income = {
        "Service": _account_id(realm, "ServiceFeeIncome"),
        "NonInventory": _account_id(realm, "SalesOfProductIncome"),
    }
    for number in range(items):
        item_type = "Service" if number % 2 else "NonInventory"
        item: dict[str, Any] = {"Name": f"{rng.choice(PRODUCTS)} {number + 1}", "Type": item_type,
                "UnitPrice": Decimal(rng.randint(5, 500)), "IncomeAccountRef": {"value": income[item_type]},
                "Taxable": item_type == "NonInventory"}  # fmt: skip
        if number % 3:  # two thirds have a SKU, the rest do not
            item["Sku"] = f"SKU-{number + 1:05d}"
        item_ids.append(rules.create(realm, "Item", item, now).body["Id"])
    invoice_ids: dict[str, list[str]] = {}
    for _ in range(invoices if customer_ids and item_ids else 0):
        customer_id = rng.choice(customer_ids)
        lines = []
        for _ in range(rng.randint(1, 4)):
            product = realm.records["Item"][rng.choice(item_ids)].data
            qty = rng.randint(1, 10)
            code = rng.choice(("TAX", "NON", "NON", "3"))
            lines.append({"DetailType": "SalesItemLineDetail", "Amount": qty * product["UnitPrice"],
                          "Description": product["Name"], "SalesItemLineDetail": {"ItemRef": {"value": product["Id"]},
                          "Qty": qty, "UnitPrice": product["UnitPrice"], "TaxCodeRef": {"value": code}}})  # fmt: skip
        invoice = rules.create(realm, "Invoice", {"CustomerRef": {"value": customer_id}, "Line": lines}, now).body
        invoice_ids.setdefault(customer_id, []).append(invoice["Id"])
    payments = 0
    for customer_id, owned in invoice_ids.items():
        paid = [invoice_id for invoice_id in owned if rng.random() < 0.4]
        groups = [paid] if len(paid) > 1 and rng.random() < 0.25 else [[invoice_id] for invoice_id in paid]
        for group in groups:
            amounts = {i: realm.records["Invoice"][i].data["Balance"] for i in group}
            applied = [
                {"Amount": amount, "LinkedTxn": [{"TxnId": i, "TxnType": "Invoice"}]} for i, amount in amounts.items()
            ]
            payment = {
                "CustomerRef": {"value": customer_id},
                "TotalAmt": rules.money(sum(amounts.values())),
                "Line": applied,
            }
            rules.create(realm, "Payment", payment, now)
            payments += 1
    return {
        "customers": customers,
        "items": items,
        "invoices": sum(map(len, invoice_ids.values())),
        "payments": payments,
    }

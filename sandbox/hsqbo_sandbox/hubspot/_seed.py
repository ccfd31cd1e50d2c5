"""Realistic demo data for a portal, deterministic for a given seed: companies with several contacts each (the
contacts carry their company's name in `company`, the case that trips QBO's unique DisplayName), standalone
contacts, products with and without SKUs, and invoices (draft, open, paid) with line items, a contact, the
contact's company and, for paid ones, a payment."""

from __future__ import annotations

import random

from hsqbo_sandbox.hubspot._associations import KINDS
from hsqbo_sandbox.hubspot._schema import BY_NAME
from hsqbo_sandbox.hubspot._store import Actor, Portal

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Linus", "Radia")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Perlman")
_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent")
_GOODS = ("Consulting hour", "Onboarding", "Widget", "Gadget", "Support plan", "Licence", "Training day", "Audit")


def seed_portal(
    portal: Portal,
    actor: Actor,
    *,
    companies: int = 100,
    contacts_per_company: int = 3,
    lone_contacts: int = 50,
    products: int = 200,
    invoices: int = 300,
    seed: int = 1,
) -> dict[str, int]:
    rng = random.Random(seed)
    contacts_type, companies_type = BY_NAME["contacts"], BY_NAME["companies"]
    contact_ids: list[int] = []
    for c in range(companies):
        name = f"{rng.choice(_WORDS)} {('Labs', 'Inc', 'GmbH', 'Ltd')[c % 4]} {c + 1}"
        company = portal.create(companies_type, {"name": name, "domain": f"company{c + 1}.example.com"}, actor)
        for n in range(contacts_per_company):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            contact = portal.create(contacts_type, {
                "email": f"{first}.{last}.{c + 1}.{n + 1}@company{c + 1}.example.com".lower(),
                "firstname": first, "lastname": last, "company": name, "phone": f"+1555{c:03d}{n:04d}",
            }, actor, associations=[(("companies", company.id), KINDS[1 if n == 0 else 279])])  # fmt: skip
            contact_ids.append(contact.id)
    for n in range(lone_contacts):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}.solo{n + 1}@example.org".lower()
        contact_ids.append(portal.create(contacts_type, {"email": email, "firstname": first, "lastname": last},
                                         actor).id)  # fmt: skip
    product_rows: list[tuple[int, str, str]] = []
    for n in range(products):
        name = f"{rng.choice(_GOODS)} {n + 1}"
        price = f"{rng.randint(5, 500)}.{rng.choice(('00', '50', '99'))}"
        values = {"name": name, "price": price, "description": f"Seeded product {n + 1}"}
        if n % 4:  # every fourth product has no SKU
            values["hs_sku"] = f"SKU-{1000 + n}"
        product_rows.append((portal.create(BY_NAME["products"], values, actor).id, name, price))
    for n in range(invoices):
        contact_id = rng.choice(contact_ids) if contact_ids else None
        links = [(("contacts", contact_id), KINDS[177])] if contact_id else []
        if contact_id:
            links += [(("companies", company_id), KINDS[179])
                      for company_id, type_ids in portal.associations.targets(("contacts", contact_id), "companies")
                      .items() if 1 in type_ids]  # fmt: skip
        invoice = portal.create(BY_NAME["invoices"], {"hs_currency": "USD", "hs_invoice_billable": "false"}, actor,
                                associations=links)  # fmt: skip
        for _ in range(rng.randint(1, 3)) if product_rows else ():
            product_id, name, price = rng.choice(product_rows)
            portal.create(BY_NAME["line_items"], {"name": name, "price": price, "quantity": str(rng.randint(1, 5)),
                                                  "hs_product_id": str(product_id)}, actor,
                          associations=[(("invoices", invoice.id), KINDS[410])])  # fmt: skip
        stage = n % 3  # draft, open, paid
        if stage >= 1:
            portal.update(invoice, {"hs_invoice_status": "open"}, actor)
        if stage == 2:
            portal.create(BY_NAME["commerce_payments"], {
                "hs_initial_amount": invoice.properties["hs_amount_billed"], "hs_currency_code": "USD",
                "hs_initiated_date": invoice.properties["hs_invoice_date"], "hs_payment_method": "ach",
            }, actor, associations=[(("invoices", invoice.id), KINDS[542])])  # fmt: skip
    return {
        "companies": companies,
        "contacts": len(contact_ids),
        "products": products,
        "invoices": invoices,
    }

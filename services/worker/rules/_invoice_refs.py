"""What an invoice points at on the other side: its contact or customer, the items or products of its lines, the
"Custom line item" item, the tax code. Each is found through the id map first, then by natural key (email, SKU,
name); a missing one raises `Failing` naming what to fix (a missing contact or customer also as the record the invoice
waits for). A natural key matching several records is no match (never a guess): the invoice fails naming the record
to link first (`hsqbo review` resolves it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from services.worker._fields import get_path, lower_text, text
from services.worker.rules import Failing
from services.worker.rules._match import ACTIVE_OR_NOT
from services.worker.rules.contacts import PRIMARY_COMPANY
from shared.clients import qbo_quote
from shared.connections import SyncContext
from shared.domain import Awaited, Kind, Provider
from shared.errors import DuplicateName, NotFound
from shared.store import LinkStatus
from shared.syncconfig import InvoiceSettings


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(qbo_quote(value) for value in values) + ")"


async def _linked(ctx: SyncContext, kind: Kind, *, hubspot_id: str | None = None, qbo_id: str | None = None) -> (
    tuple[str | None, str | None]
):  # fmt: skip
    link = await ctx.store.get_link(ctx.name, kind, hubspot_id=hubspot_id, qbo_id=qbo_id)
    if link is None or link.status == LinkStatus.DELETED:
        return None, None
    return link.hubspot_id, link.qbo_id


# --- QBO -> HubSpot --------------------------------------------------------------------------------------------------


async def hubspot_contact(ctx: SyncContext, customer_id: str) -> str:
    """The HubSpot contact of a QBO customer: its link, else the contact with the customer's email."""
    contact_id, _ = await _linked(ctx, Kind.CONTACT, qbo_id=customer_id)
    if contact_id is not None:
        return contact_id
    customer = await ctx.qbo.read("Customer", customer_id)
    email = lower_text(get_path(customer, "PrimaryEmailAddr.Address"))
    if email:
        where = f"{ACTIVE_OR_NOT} AND PrimaryEmailAddr = {qbo_quote(email)}"
        sharing = await ctx.qbo.query(f"SELECT * FROM Customer WHERE {where}")
        if len(sharing) > 1:
            raise Failing(
                f"QuickBooks customer {customer_id} shares its email with other customers: link it first"
                " (hsqbo review)",
                category="customer_not_synced",
                awaits=Awaited(Kind.CONTACT, Provider.QUICKBOOKS, customer_id),
            )
        try:
            return (await ctx.hubspot.get("contacts", email, id_property="email")).id
        except NotFound:
            pass
    raise Failing(
        f"QuickBooks customer {customer_id} has no HubSpot contact yet (not synced, and no contact has its email)",
        category="customer_not_synced",
        awaits=Awaited(Kind.CONTACT, Provider.QUICKBOOKS, customer_id),
    )


async def primary_company(ctx: SyncContext, contact_id: str) -> str | None:
    associations = await ctx.hubspot.list_associations("contacts", contact_id, "companies")
    return next((a.to_id for a in associations if any(t.type_id == PRIMARY_COMPANY for t in a.types)), None)


async def item_skus(ctx: SyncContext, item_ids: Sequence[str]) -> dict[str, str]:
    """QBO item id -> SKU, for the items that have one."""
    if not item_ids:
        return {}
    items = await ctx.qbo.query(f"SELECT * FROM Item WHERE Id IN {_in_list(sorted(set(item_ids)))}")
    return {str(item["Id"]): sku for item in items if (sku := text(item.get("Sku")))}


async def products_for_items(ctx: SyncContext, skus: dict[str, str]) -> dict[str, str]:
    """QBO item id -> HubSpot product id: the product link, else the product with the item's SKU."""
    products: dict[str, str] = {}
    for item_id in skus:
        product_id, _ = await _linked(ctx, Kind.PRODUCT, qbo_id=item_id)
        if product_id is not None:
            products[item_id] = product_id
    unlinked = {item_id: sku for item_id, sku in skus.items() if item_id not in products}
    if unlinked:
        wanted = sorted({sku.lower() for sku in unlinked.values()})
        sorts = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        with_sku = await asyncio.gather(  # the client puts them in one search (an IN filter)
            *(ctx.hubspot.search_by("products", "hs_sku", sku, properties=["hs_sku"], sorts=sorts) for sku in wanted)
        )
        # several products with one SKU: no guess, the line names no product
        by_sku = {sku: found[0].id for sku, found in zip(wanted, with_sku, strict=True) if len(found) == 1}
        products.update({i: by_sku[sku.lower()] for i, sku in unlinked.items() if sku.lower() in by_sku})
    return products


# --- HubSpot -> QBO --------------------------------------------------------------------------------------------------


async def qbo_customer(ctx: SyncContext, contact_ids: Sequence[str]) -> str:
    """The QBO customer of a HubSpot invoice's contact: its link, else the customer with the contact's email."""
    if not contact_ids:
        raise Failing("the HubSpot invoice has no contact", category="customer_not_synced")
    contact_id = contact_ids[0]
    _, customer_id = await _linked(ctx, Kind.CONTACT, hubspot_id=contact_id)
    if customer_id is not None:
        return customer_id
    contact = await ctx.hubspot.get("contacts", contact_id, properties=["email"])
    email = lower_text(contact.properties.get("email"))
    if email:
        where = f"{ACTIVE_OR_NOT} AND PrimaryEmailAddr = {qbo_quote(email)}"
        found = await ctx.qbo.query(f"SELECT * FROM Customer WHERE {where}")
        if len(found) == 1 and found[0].get("Active", True):
            return str(found[0]["Id"])
        if found:
            raise Failing(
                f"HubSpot contact {contact_id}'s email matches {len(found)} QuickBooks customer(s), none linked or"
                " one inactive: sync the contact first (hsqbo review)",
                category="customer_not_synced",
                awaits=Awaited(Kind.CONTACT, Provider.HUBSPOT, contact_id),
            )
    raise Failing(
        f"HubSpot contact {contact_id} has no QuickBooks customer yet (not synced, and no customer has its email)",
        category="customer_not_synced",
        awaits=Awaited(Kind.CONTACT, Provider.HUBSPOT, contact_id),
    )


async def items_for_lines(ctx: SyncContext, product_ids: Sequence[str | None], skus: Sequence[str | None]) -> (
    list[str | None]
):  # fmt: skip
    """The QBO item of each line: the product link of its product, else the item with its SKU, else None."""
    items: list[str | None] = []
    for product_id in product_ids:
        item_id = (await _linked(ctx, Kind.PRODUCT, hubspot_id=product_id))[1] if product_id else None
        items.append(item_id)
    wanted = sorted({sku for sku, item in zip(skus, items, strict=True) if sku and item is None})
    by_sku: dict[str, str] = {}
    if wanted:
        for item in await ctx.qbo.query(f"SELECT * FROM Item WHERE Sku IN {_in_list(wanted)} ORDERBY Id"):
            sku = str(item.get("Sku")).casefold()
            if sku in by_sku and by_sku[sku] != str(item["Id"]):
                raise Failing(
                    f"SKU {item.get('Sku')!r} matches several QuickBooks items: link its product first (hsqbo review)",
                    category="ambiguous_sku",
                )
            by_sku[sku] = str(item["Id"])
    return [item or (by_sku.get(sku.casefold()) if sku else None) for sku, item in zip(skus, items, strict=True)]


async def custom_line_item(ctx: SyncContext, settings: InvoiceSettings) -> str:
    """The item unmatched lines are booked to, looked up by name and created once, on the configured income
    account."""
    name = settings.custom_line_item_name
    found = await ctx.qbo.query(f"SELECT * FROM Item WHERE Name = {qbo_quote(name)}")
    if found:
        return str(found[0]["Id"])
    body = {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": await _income_account(ctx, settings)}}
    try:
        created = await ctx.qbo.create(
            "Item", body, request_id=ctx.request_id("Item", "create", "custom", name, link=None)
        )
    except DuplicateName:  # created meanwhile by another process, or taken by an inactive item
        found = await ctx.qbo.query(f"SELECT * FROM Item WHERE Name = {qbo_quote(name)}")
        if found:
            return str(found[0]["Id"])
        raise Failing(
            f"the QuickBooks item {name!r} for unmatched lines is inactive: reactivate it or set custom_line_item_name",
            category="custom_line_item",
        ) from None
    return str(created["Id"])


async def _income_account(ctx: SyncContext, settings: InvoiceSettings) -> str:
    wanted = settings.income_account
    if wanted is None:
        where = "AccountType = 'Income' ORDERBY Id"
    elif wanted.isdigit():
        return wanted
    else:
        where = f"Name = {qbo_quote(wanted)}"
    found = await ctx.qbo.query(f"SELECT * FROM Account WHERE {where} MAXRESULTS 1")
    if not found:
        raise Failing(f"no QuickBooks income account {wanted or ''!r} for the custom line item", category="account")
    return str(found[0]["Id"])


async def tax_code(ctx: SyncContext, settings: InvoiceSettings) -> str | None:
    """The configured QBO tax code's id (the setting names it by id or by name)."""
    wanted = settings.tax_code
    if wanted is None:
        return None
    for field in ("Id", "Name"):
        found = await ctx.qbo.query(f"SELECT * FROM TaxCode WHERE {field} = {qbo_quote(wanted)}")
        if found:
            return str(found[0]["Id"])
    raise Failing(f"QuickBooks has no tax code {wanted!r} (setting tax_code)", category="tax_code")

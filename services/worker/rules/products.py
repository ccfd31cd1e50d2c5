"""HubSpot product ↔ QBO Item.

Matching: the id map first, then the SKU (`hs_sku` ↔ `Item.Sku`), never a guess (see `_match`): the SKU is looked up
among QBO's items, inactive ones included, and among HubSpot's products (archived products are not searchable in
HubSpot, so they never match: the item gets a new product). One record, linked to no other: linked. None: created.
Several (QBO does not keep SKUs unique, HubSpot neither), or other records on its own side sharing the SKU: the
record needs review and nothing is written until an operator decides (`hsqbo review`). A live product matching an
inactive item links to it and reactivates it (the live side wins; never a second item). By default only records with
a SKU sync (`require_sku`, the incumbent's guard against duplicates); the others are excluded with that reason.
Mapped: name, SKU, description, unit price (compared as exact numbers at 5 decimals, the precision sent to both
APIs; see shared/money.py) and type.

Prices sync in the QBO home currency only: QBO's `UnitPrice` is in the home currency and HubSpot's `price` in the
portal's company currency, so when those differ neither price is written from the other (HubSpot's per-currency
`hs_price_<currency>` properties are not used: a QBO item has one price).

Type is QuickBooks' to decide: QBO refuses most conversions (an Inventory item stays one and needs asset accounts),
so `Type` flows to `hs_product_type` and a HubSpot edit of the type is not written back. An item created from HubSpot
is a Service, or NonInventory for a non_inventory product; an inventory product is failing until its item is made
in QuickBooks with the same SKU (it then links by SKU).

QBO Item names are unique (6240), at most 100 characters, without colon, tab or newline (`_names`): an item created
from HubSpot whose name is taken is named "Widget (SKU-1)", then "Widget (HubSpot 512)", the name cut and the suffix
kept at the limit. Names that only differ by that suffix (or a colon QBO refuses) count as equal, so the
disambiguated item is not renamed back. Items are never deleted: inactive in QBO → the product is archived; product
archived in HubSpot → the item is made inactive (on_delete = "propagate").
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.worker import _fields, _names
from services.worker._fields import FieldMap
from services.worker._plan import AllRefused, Step
from services.worker.rules import GONE, Excluded, Failing, Hints, Outcome, hubspot_version, qbo_version, saw
from services.worker.rules import _currency as currencies
from services.worker.rules import _filters as filters
from services.worker.rules import _match as match
from services.worker.rules._origin import OriginProperty, made_from
from services.worker.rules._pair import (
    Ambiguous,
    PairSpec,
    archive_in_hubspot,
    carry_out_create,
    carry_out_qbo_create,
    claim,
    deactivate_in_qbo,
    hubspot_properties,
    lost_create,
    plan_hubspot_create,
    plan_qbo_create,
    repoint_merged,
    sync_fields,
    wait_for_a_create_in_doubt,
)
from shared import money
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.company import Company
from shared.connections import SyncContext
from shared.domain import Action, Kind, Provider
from shared.errors import NotFound
from shared.store import Candidate, Link, ReviewDecision
from shared.syncconfig import ConnectionSettings, ProductSettings

HUBSPOT_TYPES = {"service": "service", "noninventory": "non_inventory", "non_inventory": "non_inventory",
                 "inventory": "inventory"}  # fmt: skip
QBO_TYPES = {"service": "Service", "non_inventory": "NonInventory"}  # types hsqbo creates items with
NOT_PRODUCTS = ("category", "group")  # QBO item types with no HubSpot counterpart


def product_type(value: Any) -> str | None:
    """QBO `Type` and HubSpot `hs_product_type` in HubSpot's spelling."""
    cleaned = _fields.lower_text(value)
    return HUBSPOT_TYPES.get(cleaned, cleaned) if cleaned else None


def price(value: Any) -> str:
    """A unit price as both sides compare it: QBO's UnitPrice defaults to 0 (a product without a price costs 0), and
    a price is taken at the precision both APIs are sent (5 decimals, `shared.money.round_price`), so a HubSpot
    price with more decimals equals the QBO price it was written as and is not rewritten back and forth."""
    try:
        exact = money.decimal(value)
    except ValueError:  # not a number (a float never comes from the APIs' parsed JSON)
        return _fields.number(value) or "0"
    return money.plain(money.round_price(exact)) if exact is not None else "0"


def unit_price(canonical: str) -> Decimal:
    """The QBO UnitPrice of a canonical price: an exact JSON number, at most 5 decimals."""
    return money.round_price(money.decimal(canonical) or money.ZERO)


# The QBO item a HubSpot product was made from: a retry after a crash finds it instead of making a second product.
ITEM_ORIGIN = OriginProperty("products", "hsqbo_qbo_item_id", "QuickBooks item id (hsqbo)", "productinformation")

SPEC = PairSpec(
    hubspot_type="products",
    qbo_entity="Item",
    fields=(
        FieldMap("name", "name", "Name"),
        FieldMap("sku", "hs_sku", "Sku"),
        FieldMap("description", "description", "Description"),
        FieldMap("price", "price", "UnitPrice", price, unit_price),
        FieldMap("type", "hs_product_type", "Type", product_type),
    ),
)


def item_names(name: str, sku: str | None, product_id: str) -> list[str]:
    """The names an item created from this product may take, in order: QBO's name rules (`_names`), and names must
    be unique, so the later ones carry the SKU, then the product id."""
    return _names.candidates(name, [sku, f"HubSpot {product_id}"], _names.ITEM_NAME_MAX)


class ProductRule:
    kind = Kind.PRODUCT

    def settings(self, connection: ConnectionSettings) -> ProductSettings:
        return connection.products

    # --- HubSpot -> QBO ----------------------------------------------------------------------------------------------

    async def from_hubspot(self, ctx: SyncContext, product_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.products
        merged = await repoint_merged(ctx, Kind.PRODUCT, Provider.HUBSPOT, product_id, hints)
        # The link first, then the records (see rules/__init__.py).
        link = await ctx.store.get_link(ctx.name, Kind.PRODUCT, hubspot_id=product_id)
        try:
            product = await ctx.hubspot.get("products", product_id, properties=_properties(settings))
        except NotFound:
            saw(GONE)
            return await deactivate_in_qbo(ctx, SPEC, Kind.PRODUCT, settings, product_id)
        saw(hubspot_version(product), product)
        if link is not None and link.qbo_id is not None:
            item = await ctx.qbo.read("Item", link.qbo_id)
            restore = {"Active": True} if not item.get("Active", True) else None
            action = Action.RESTORED if restore else Action.MERGED if merged else Action.UPDATED
            return await _sync(ctx, settings, link, product, item, action=action, qbo_extra=restore)

        await screen_product(ctx, product)
        decision = match.resolved(link)
        found: QboEntity | None = None
        if decision == ReviewDecision.PICK and link is not None and link.review_pick is not None:
            found = await ctx.qbo.read("Item", link.review_pick)
        elif decision is None:
            chosen, items = await match_product(ctx, product, link)
            if isinstance(chosen, match.Review):
                return await match.needs_review(
                    ctx, Kind.PRODUCT, link, Provider.HUBSPOT, product_id, chosen, match.version(product)
                )
            if isinstance(chosen, match.LinkTo):
                found = items[chosen.id]
        if found is not None:
            return await _link(ctx, settings, link, Provider.HUBSPOT, product, found)
        made = await _create_item(ctx, settings, product, link)
        if isinstance(made, Outcome):
            return made
        created, item = made
        return await _sync(ctx, settings, created, product, item, action=Action.CREATED)

    # --- QBO -> HubSpot ----------------------------------------------------------------------------------------------

    async def from_qbo(self, ctx: SyncContext, item_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.products
        merged = await repoint_merged(ctx, Kind.PRODUCT, Provider.QUICKBOOKS, item_id, hints)
        # The link first, then the records (see rules/__init__.py).
        link = await ctx.store.get_link(ctx.name, Kind.PRODUCT, qbo_id=item_id)
        item = await ctx.qbo.read("Item", item_id)
        saw(qbo_version(item), item)
        if link is not None and link.qbo_written_sync_token == str(item.get("SyncToken")) and not merged:
            return Outcome(Action.ECHO, link=link, detail="our own write")
        if not item.get("Active", True):
            return await archive_in_hubspot(ctx, SPEC, settings, link)
        if link is not None and link.hubspot_id is not None:
            try:
                product = await ctx.hubspot.get("products", link.hubspot_id, properties=_properties(settings))
            except NotFound:
                return Outcome(Action.SKIPPED, link=link, detail="the linked HubSpot product was archived")
            return await _sync(ctx, settings, link, product, item, action=Action.MERGED if merged else Action.UPDATED)

        await screen_item(ctx, item)
        decision = match.resolved(link)
        made = await made_from(ctx, ITEM_ORIGIN, item_id, _properties(settings))
        found: HubSpotObject | None = made
        if made is None and decision == ReviewDecision.PICK and link is not None and link.review_pick is not None:
            found = await ctx.hubspot.get("products", link.review_pick, properties=_properties(settings))
        elif made is None and decision is None:
            chosen, products = await match_item(ctx, item, link)
            if isinstance(chosen, match.Review):
                return await match.needs_review(
                    ctx, Kind.PRODUCT, link, Provider.QUICKBOOKS, item_id, chosen, str(item.get("SyncToken"))
                )
            if isinstance(chosen, match.LinkTo):
                found = products[chosen.id]
        if found is None:
            await wait_for_a_create_in_doubt(ctx, Kind.PRODUCT, link, item, await _item_hash(ctx, settings, item))
            created, product = await _create_product(ctx, settings, item, link)
            return await _sync(ctx, settings, created, product, item, action=Action.CREATED)
        return await _link(ctx, settings, link, Provider.QUICKBOOKS, found, item)


# --- the filters and the matching, for the rule and for the initial sync's plan -------------------------------------


async def screen_product(ctx: SyncContext, product: HubSpotObject) -> None:
    """The filters a product with no linked item passes before it is matched; raises `Excluded`."""
    settings = ctx.connection.products
    await filters.check_hubspot(ctx, settings.hubspot_to_qbo, product)
    if _fields.text(product.properties.get("hs_sku")) is None and settings.require_sku:
        raise Excluded("no SKU (require_sku)", category="no_sku")


async def match_product(
    ctx: SyncContext, product: HubSpotObject, link: Link | None
) -> tuple[match.Match, dict[str, QboEntity]]:
    """What matching by SKU makes of a product with no linked item, and the items it found (by id)."""
    settings = ctx.connection.products
    sku = _fields.text(product.properties.get("hs_sku"))
    items = await _items_by_sku(ctx, sku) if sku else []
    qbo = Provider.QUICKBOOKS
    candidates = [await match.found(ctx, Kind.PRODUCT, str(i["Id"]), _item_label(i), on=qbo) for i in items]
    # Products with this SKU that could be these items' (linked to none, or to one of them).
    linked = [await match.found(ctx, Kind.PRODUCT, p.id, "", on=Provider.HUBSPOT)
              for p in (await _products_by_sku(ctx, settings, sku) if sku else [])]  # fmt: skip
    sharing = [p.id for p in linked if p.linked_to in (None, *(str(i["Id"]) for i in items))]
    chosen = match.decide(
        product.id, sku or "", candidates, other_side="QuickBooks items", sharing=sharing,
        under_review=match.awaiting_review(link),
    )  # fmt: skip
    return chosen, {str(i["Id"]): i for i in items}


async def screen_item(ctx: SyncContext, item: QboEntity) -> None:
    """The filters an active item with no linked product passes before it is matched; raises `Excluded`."""
    settings = ctx.connection.products
    if product_type(item.get("Type")) in NOT_PRODUCTS:
        raise Excluded(f"a {item.get('Type')} item is not a product or service", category="item_type")
    await filters.check_qbo(ctx, settings.qbo_to_hubspot, item)
    if _fields.text(item.get("Sku")) is None and settings.require_sku:
        raise Excluded("no SKU (require_sku)", category="no_sku")


async def match_item(
    ctx: SyncContext, item: QboEntity, link: Link | None
) -> tuple[match.Match, dict[str, HubSpotObject]]:
    """What matching by SKU makes of an item with no linked product, and the products it found (by id)."""
    settings = ctx.connection.products
    sku = _fields.text(item.get("Sku"))
    products = await _products_by_sku(ctx, settings, sku) if sku else []
    hubspot = Provider.HUBSPOT
    candidates = [await match.found(ctx, Kind.PRODUCT, p.id, _product_label(p), on=hubspot) for p in products]
    # Items with this SKU that could be these products' (linked to none, or to one of them).
    linked = [await match.found(ctx, Kind.PRODUCT, str(i["Id"]), "", on=Provider.QUICKBOOKS)
              for i in (await _items_by_sku(ctx, sku) if sku else [])]  # fmt: skip
    sharing = [i.id for i in linked if i.linked_to in (None, *(p.id for p in products))]
    chosen = match.decide(
        str(item["Id"]), sku or "", candidates, other_side="HubSpot products", sharing=sharing,
        under_review=match.awaiting_review(link),
    )  # fmt: skip
    return chosen, {p.id: p for p in products}


# --- shared by both directions ---------------------------------------------------------------------------------------


def _properties(settings: ProductSettings) -> list[str]:
    return hubspot_properties(_fields.active_maps(SPEC.fields, settings), "name", "hs_sku")


async def _link(
    ctx: SyncContext, settings: ProductSettings, link: Link | None, origin: Provider, product: HubSpotObject,
    item: QboEntity,
) -> Outcome:  # fmt: skip
    """A record with no link (on `origin`; `link`: its link as read) joined to the record it matched on the other
    side (`claim`), then the fields synced. A live product matching an inactive item reactivates it."""
    claimed = await claim(ctx, Kind.PRODUCT, link, origin, product.id, str(item["Id"]), category="duplicate_sku")
    restore = {"Active": True} if not item.get("Active", True) else None
    return await _sync(
        ctx, settings, match.cleared(claimed.link), product, item, action=Action.LINKED, qbo_extra=restore,
        first=claimed.steps,
    )  # fmt: skip


async def _sync(
    ctx: SyncContext,
    settings: ProductSettings,
    link: Link,
    product: HubSpotObject,
    item: QboEntity,
    *,
    action: Action,
    qbo_extra: dict[str, Any] | None = None,
    first: Sequence[Step] = (),
) -> Outcome:
    """`sync_fields` (after the steps `first`), with the two product rules folded into what it compares
    (`_compared`); the type always takes QBO's value (HubSpot's current type is presented as the agreed one, so the
    merge picks QBO's)."""
    settings = await _priced(ctx, settings)
    settings, item = _compared(settings, product, item)
    settled = {"type": product_type(product.properties.get("hs_product_type"))}
    return await sync_fields(
        ctx, SPEC, settings, link, product, item, action=action, qbo_extra=qbo_extra, settled=settled, first=first
    )


async def _priced(ctx: SyncContext, settings: ProductSettings) -> ProductSettings:
    return priced_settings(settings, await ctx.company())


def priced_settings(settings: ProductSettings, company: Company) -> ProductSettings:
    """The settings with the price mapping off when HubSpot's company currency is not QBO's home currency."""
    if currencies.prices_sync(company):
        return settings
    return settings.model_copy(update={"mappings": {**settings.mappings, "price": False}})


def _compared(settings: ProductSettings, product: HubSpotObject, item: QboEntity) -> tuple[ProductSettings, QboEntity]:
    """The settings and item `sync_fields` compares: an item name that is one of this product's disambiguated names
    reads as the product's name; with no QBO -> HubSpot flow the type is not synced."""
    name = _fields.text(product.properties.get("name"))
    sku = _fields.text(product.properties.get("hs_sku"))
    if name and item.get("Name") in item_names(name, sku, product.id):
        item = {**item, "Name": name}
    return _compared_settings(settings), item


def _compared_settings(settings: ProductSettings) -> ProductSettings:
    if not settings.syncs_from("quickbooks"):
        settings = settings.model_copy(update={"mappings": {**settings.mappings, "type": False}})
    return settings


async def _item_hash(ctx: SyncContext, settings: ProductSettings, item: QboEntity) -> str:
    """An item's values as the create intent of a product recorded them (`_create_item`'s `holds`), for an item made
    under its product's own name: a QBO record with no link looks for a create in doubt by it."""
    compared = _compared_settings(await _priced(ctx, settings))
    return _fields.content_hash(_fields.from_qbo(_fields.active_maps(SPEC.fields, compared), item))


async def _create_item(
    ctx: SyncContext, settings: ProductSettings, product: HubSpotObject, link: Link | None
) -> tuple[Link, QboEntity] | Outcome:
    """The item made (`plan_qbo_create`, carried out, after `lost_create`'s look for the item of an attempt cut
    short): the link as saved, and the item as the create answered it (a create replayed for a retry answers what
    the first attempt made); or the product needing review (`Ambiguous`)."""
    settings = await _priced(ctx, settings)
    kind = product_type(product.properties.get("hs_product_type")) or "service"
    if kind not in QBO_TYPES:
        raise Failing(
            f"a HubSpot {kind} product needs its item made in QuickBooks (same SKU links them)",
            category="item_type",
        )
    maps = [m for m in _fields.active_maps(SPEC.fields, settings) if m.name != "type"]
    values = _fields.from_hubspot(maps, product.properties)
    body = {key: value for key, value in _fields.to_qbo(maps, values).items() if value != ""}
    body |= {"Type": QBO_TYPES[kind], "IncomeAccountRef": {"value": await _income_account(ctx, settings)}}
    name = _fields.text(product.properties.get("name")) or f"HubSpot product {product.id}"
    names = item_names(name, values.get("sku"), product.id)

    def holds(item: QboEntity) -> _fields.Values:  # as the field sync compares it, named as first asked
        compared_settings, compared_item = _compared(settings, product, {**item, "Name": names[0]})
        return _fields.from_qbo(_fields.active_maps(SPEC.fields, compared_settings), compared_item)

    taken = AllRefused(f"QuickBooks already has items named {name!r} and its variants", category="duplicate_name")
    new = link or Link(connection=ctx.name, kind=Kind.PRODUCT, origin=Provider.HUBSPOT, hubspot_id=product.id)
    held = await lost_create(
        ctx, SPEC, Kind.PRODUCT, new, name_field="Name", names=names,
        hash_of=lambda item: _fields.content_hash(holds(item)),
    )  # fmt: skip
    try:
        plan = plan_qbo_create(
            SPEC, new, product.id, body, name_field="Name", names=names, holds=holds(body), all_refused=taken,
            held=held,
        )  # fmt: skip
    except Ambiguous as exc:
        review = match.Review(tuple(Candidate(str(i["Id"]), _item_label(i)) for i in exc.entities), str(exc))
        return await match.needs_review(
            ctx, Kind.PRODUCT, link, Provider.HUBSPOT, product.id, review, match.version(product)
        )
    return await carry_out_qbo_create(ctx, plan, held)


async def _create_product(
    ctx: SyncContext, settings: ProductSettings, item: QboEntity, link: Link | None
) -> tuple[Link, HubSpotObject]:
    """The product made (`plan_hubspot_create`, carried out; marked with the item it was made from, which a retry
    after a crash finds it by): the link as saved, and the product as the create wrote it."""
    settings = await _priced(ctx, settings)
    maps = _fields.active_maps(SPEC.fields, settings)
    values = _fields.from_qbo(maps, item)
    properties = {name: value for name, value in _fields.to_hubspot(maps, values).items() if value}
    properties[ITEM_ORIGIN.name] = str(item["Id"])
    base = link or Link(connection=ctx.name, kind=Kind.PRODUCT, origin=Provider.QUICKBOOKS, qbo_id=str(item["Id"]))
    made, product_id = await carry_out_create(
        ctx, plan_hubspot_create(SPEC, base, properties, holds=None), Provider.HUBSPOT
    )
    return made, HubSpotObject(product_id, dict(properties), None, None)


async def _income_account(ctx: SyncContext, settings: ProductSettings) -> str:
    """The configured income account (an id or a name), else the first active Income account."""
    wanted = settings.income_account
    if wanted is None:
        where = "AccountType = 'Income'"
    else:
        where = f"Id = {qbo_quote(wanted)}" if wanted.isdigit() else f"Name = {qbo_quote(wanted)}"
    found = await ctx.qbo.query(f"SELECT * FROM Account WHERE {where} MAXRESULTS 1")
    if not found:
        raise Failing(f"no active income account {wanted or ''!r} in QuickBooks", category="income_account")
    return str(found[0]["Id"])


async def _items_by_sku(ctx: SyncContext, sku: str) -> list[QboEntity]:
    """Every item with this SKU, inactive ones too (so none is ever made twice; the lookups of concurrent applies in
    one query)."""
    return await ctx.qbo.find("Item", "Sku", sku)


async def _products_by_sku(ctx: SyncContext, settings: ProductSettings, sku: str) -> list[HubSpotObject]:
    """Every live HubSpot product with this SKU (archived products are not searchable)."""
    page = await ctx.hubspot.search(
        "products",
        filter_groups=[{"filters": [{"propertyName": "hs_sku", "operator": "EQ", "value": sku}]}],
        properties=_properties(settings),
        sorts=[{"propertyName": "createdate", "direction": "ASCENDING"}],
    )
    return list(page.results)


def _item_label(item: QboEntity) -> str:
    return f"{item.get('Name')}"[:120] + ("" if item.get("Active", True) else ", inactive")


def _product_label(product: HubSpotObject) -> str:
    return str(product.properties.get("name") or f"product {product.id}")[:120]

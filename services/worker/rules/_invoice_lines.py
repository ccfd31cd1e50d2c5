"""Invoice lines both ways, exactly (pure: no I/O). Every amount is a Decimal (`shared.money`); a line the other side
cannot hold at the same amount raises `Failing(category="not_representable")`, so no invoice ever syncs with a
different total.

QBO lines → HubSpot (`hubspot_copy`)
    SalesItemLineDetail   one line item (name, quantity, unit price, SKU, product). The quantity and price are QBO's
                          when Qty x UnitPrice is exactly the line Amount; else a price Amount / Qty that is exact
                          within `PRICE_PLACES` decimals; else quantity 1 at the Amount (never a price with 27
                          digits, never a product HubSpot would have to round). Shipping (ItemRef
                          `SHIPPING_ITEM_ID`, QBO's shipping pseudo-item) is such a line, named "Shipping".
    GroupLineDetail       a bundle: one line item per component (its own item, SKU and product) when the components
                          add up to the group's Amount; otherwise one line item for the bundle.
    DescriptionOnly       a line item at price 0 carrying the text (a description has no amount in QBO).
    SubTotalLineDetail    nothing: QBO computes it, and so does HubSpot.
    DiscountLineDetail    an invoice-level HubSpot discount (`hs_type` FIXED) of the amount QBO computed, percent
                          or not: HubSpot's own percent rounding is undocumented, a fixed amount has none.
    TxnTaxDetail          an invoice-level HubSpot tax (`hs_type` FIXED) of TotalTax, the tax QBO computed.
    A negative line (HubSpot prices cannot be negative) or a line type not listed is not representable.

HubSpot invoice → QBO lines (`qbo_lines`)
    Line items become SalesItemLineDetail lines at their gross amount (Qty x UnitPrice); their discounts
    (`discount`, a per-unit amount, and `hs_discount_percentage`, a percent of the line's quantity x price — HubSpot's
    line item guide and knowledge base) are the difference between that and the `amount` HubSpot computed, and go,
    with the invoice-level discount objects, into QBO's one DiscountLineDetail (fixed amount, after the item lines).
    Invoice-level fees become lines on the adjustment item after it; invoice-level taxes too, unless QBO computes the
    tax (`tax_code`). HubSpot applies discounts, then fees, then taxes (invoice guide); each PERCENT applies to the
    running total and is rounded half away from zero to the currency's minor unit (stricter reading: HubSpot does not
    document it). The total computed so must equal HubSpot's `hs_amount_billed`, else the invoice is not
    representable and nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from services.worker._fields import get_path, number, text
from services.worker.rules import Failing
from shared.money import ZERO, decimal, plain, round_money

LINE_ITEM_PROPERTIES = (
    "name", "quantity", "price", "hs_sku", "hs_product_id", "discount", "hs_discount_percentage", "amount"
)  # fmt: skip
ADJUSTMENT_PROPERTIES = ("hs_label", "hs_type", "hs_value", "hs_sort_order")
ADJUSTMENT_KINDS = ("discounts", "fees", "taxes")  # HubSpot applies them in this order
TAX_KEY = "tax"  # the HubSpot tax standing for QBO's computed tax (TxnTaxDetail.TotalTax)
SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"  # QBO's shipping pseudo-item (the company's shipping preference)
PRICE_PLACES = 5  # QBO's UnitPrice and Qty: 15 digits, 10.5 (Intuit); the stricter reading for HubSpot as well
NOT_REPRESENTABLE = "not_representable"

AdjustmentKind = Literal["discounts", "fees", "taxes"]
V = TypeVar("V")


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _canonical(value: Decimal) -> str:
    return number(plain(value)) or "0"


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One invoice line; numbers are canonical strings ("2", "9.5"), so equal lines compare equal."""

    name: str
    quantity: str
    price: str  # unit price
    sku: str | None = None
    product_id: str | None = None  # the HubSpot product, when one matches
    discount: str | None = None  # HubSpot: discount per unit, an amount
    discount_percentage: str | None = None  # HubSpot: percent of quantity x price

    @classmethod
    def of(
        cls,
        name: Any,
        quantity: Any,
        price: Any,
        sku: Any = None,
        product_id: Any = None,
        discount: Any = None,
        discount_percentage: Any = None,
    ) -> Line:
        return cls(
            name=text(name) or "",
            quantity=number(quantity) or "1",
            price=number(price) or "0",
            sku=text(sku),
            product_id=text(product_id),
            discount=_nonzero(discount),
            discount_percentage=_nonzero(discount_percentage),
        )

    @classmethod
    def from_hubspot(cls, properties: Mapping[str, str | None]) -> Line:
        return cls.of(*(properties.get(name) for name in LINE_ITEM_PROPERTIES[:-1]))

    def hubspot_properties(self) -> dict[str, str]:
        """What hsqbo writes; "" clears a discount a user added to a copy."""
        return {
            "name": self.name,
            "quantity": self.quantity,
            "price": self.price,
            "hs_sku": self.sku or "",
            "hs_product_id": self.product_id or "",
            "discount": self.discount or "",
            "hs_discount_percentage": self.discount_percentage or "",
        }

    @property
    def gross(self) -> Decimal:
        """Quantity x unit price, exactly."""
        return Decimal(self.quantity) * Decimal(self.price)

    @property
    def amount(self) -> Decimal:
        """The line's net amount as HubSpot computes it (line item guide: the percent applies to quantity x price,
        the discount amount is per unit), rounded half away from zero to the cent."""
        discount = Decimal(self.quantity) * Decimal(self.discount or 0)
        discount += self.gross * Decimal(self.discount_percentage or 0) / 100
        return round_money(self.gross - discount)


def _nonzero(value: Any) -> str | None:
    canonical = number(value)
    return None if canonical in (None, "0") else canonical


@dataclasses.dataclass(frozen=True, slots=True)
class Adjustment:
    """An invoice-level HubSpot discount, fee or tax object (`hs_type` PERCENT or FIXED, `hs_value`)."""

    kind: AdjustmentKind
    label: str
    type: str  # PERCENT | FIXED
    value: str

    @classmethod
    def from_hubspot(cls, kind: AdjustmentKind, properties: Mapping[str, str | None]) -> Adjustment:
        return cls(
            kind,
            text(properties.get("hs_label")) or kind[:-1].capitalize(),
            (text(properties.get("hs_type")) or "FIXED").upper(),
            number(properties.get("hs_value")) or "0",
        )

    def hubspot_properties(self) -> dict[str, str]:
        return {"hs_label": self.label, "hs_type": self.type, "hs_value": self.value}

    def amount_on(self, running: Decimal, currency: str | None = None) -> Decimal:
        """What it adds to (fee, tax) or takes from (discount) a running total."""
        if self.type == "PERCENT":
            return round_money(running * Decimal(self.value) / 100, currency)
        return Decimal(self.value)


# --- QBO -> HubSpot ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotCopy:
    """What a HubSpot invoice copied from a QBO invoice must hold, keyed by where each part came from in QBO."""

    line_items: dict[str, Line]
    adjustments: dict[str, Adjustment]  # "discount:<QBO line Id>" -> discount; TAX_KEY -> tax (all FIXED)

    @property
    def total(self) -> Decimal:
        """What HubSpot bills for it: its line items, less its discounts, plus its tax."""
        billed = sum((round_money(line.gross) for line in self.line_items.values()), ZERO)
        for adjustment in sorted(self.adjustments.values(), key=lambda a: ADJUSTMENT_KINDS.index(a.kind)):
            sign = -1 if adjustment.kind == "discounts" else 1
            billed += sign * adjustment.amount_on(billed)
        return billed


def _money(value: Any, what: str) -> Decimal:
    try:
        parsed = decimal(value)
    except ValueError as exc:
        raise Failing(f"{what}: {exc}", category=NOT_REPRESENTABLE) from None
    return parsed if parsed is not None else ZERO


def item_lines(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every SalesItemLineDetail line of a QBO invoice, bundle components included, in order."""
    found: list[dict[str, Any]] = []
    for line in invoice.get("Line") or ():
        if line.get("DetailType") == "SalesItemLineDetail":
            found.append(line)
        elif line.get("DetailType") == "GroupLineDetail":
            found += [c for c in get_path(line, "GroupLineDetail.Line") or () if c.get("SalesItemLineDetail")]
    return found


def sales_lines(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The item lines of a QBO invoice (subtotal, discount and description-only lines left out)."""
    return [line for line in invoice.get("Line") or () if line.get("DetailType") == "SalesItemLineDetail"]


def exact_line(name: Any, quantity: Decimal | None, price: Decimal | None, amount: Decimal, **more: Any) -> Line:
    """A line item billing exactly `amount`: QBO's quantity and price when they multiply to it, a derived price
    when one exists within PRICE_PLACES decimals, else 1 x amount."""
    if amount < 0:
        raise Failing(f"line {text(name) or ''!r} has a negative amount ({plain(amount)}); HubSpot line items cannot",
                      category=NOT_REPRESENTABLE)  # fmt: skip
    qty = quantity if quantity is not None else Decimal(1)
    if price is not None and qty * price == amount and price >= 0:
        return Line.of(name, plain(qty), plain(price), **more)
    if qty > 0:
        derived = amount / qty
        if _places(derived) <= PRICE_PLACES and qty * derived == amount:
            return Line.of(name, plain(qty), plain(derived.normalize()), **more)
    return Line.of(name, "1", plain(amount), **more)


def line_from_qbo(line: Mapping[str, Any], sku: str | None, product_id: str | None) -> Line:
    detail = line.get("SalesItemLineDetail") or {}
    item_id = text(get_path(detail, "ItemRef.value"))
    name = get_path(detail, "ItemRef.name") or line.get("Description")
    if item_id == SHIPPING_ITEM_ID:
        name = name or "Shipping"
    qty, price = decimal(detail.get("Qty")), decimal(detail.get("UnitPrice"))
    amount = _money(line.get("Amount"), "line Amount")
    return exact_line(name, qty, price, amount, sku=sku, product_id=product_id)


def hubspot_copy(
    invoice: Mapping[str, Any], skus: Mapping[str, str], products: Mapping[str, str], currency: str | None = None
) -> HubSpotCopy:
    """The HubSpot line items, discounts and tax a QBO invoice becomes, keyed by QBO line Id (components by
    "<group Id>.<n>"). `skus`: item id -> SKU; `products`: item id -> HubSpot product id. Raises Failing
    (not_representable) when HubSpot could not bill exactly QBO's TotalAmt."""
    line_items: dict[str, Line] = {}
    adjustments: dict[str, Adjustment] = {}

    def of_item(line: Mapping[str, Any]) -> Line:
        item_id = text(get_path(line, "SalesItemLineDetail.ItemRef.value"))
        sku = skus.get(item_id) if item_id else None
        return line_from_qbo(line, sku, products.get(item_id) if item_id else None)

    for position, line in enumerate(invoice.get("Line") or (), start=1):
        key = str(line.get("Id") or f"#{position}")
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            line_items[key] = of_item(line)
        elif kind == "GroupLineDetail":
            line_items.update(_bundle(key, line, of_item))
        elif kind in ("DescriptionOnly", "DescriptionLineDetail"):
            if description := text(line.get("Description")):
                line_items[key] = Line.of(description, 1, 0)
        elif kind == "DiscountLineDetail":
            amount = _money(line.get("Amount"), "discount Amount")
            if amount:
                percent = get_path(line, "DiscountLineDetail.DiscountPercent")
                percent_based = get_path(line, "DiscountLineDetail.PercentBased") and percent is not None
                label = f"Discount {number(percent)} %" if percent_based else "Discount"
                adjustments[f"discount:{key}"] = Adjustment("discounts", label, "FIXED", _canonical(amount))
        elif kind != "SubTotalLineDetail":
            raise Failing(f"QuickBooks line type {kind!r} has no HubSpot counterpart", category=NOT_REPRESENTABLE)
    tax = _money(get_path(invoice, "TxnTaxDetail.TotalTax"), "TotalTax")
    if tax < 0:
        raise Failing(f"the tax is negative ({plain(tax)}); a HubSpot tax cannot be", category=NOT_REPRESENTABLE)
    if tax > 0:
        adjustments[TAX_KEY] = Adjustment("taxes", "Tax", "FIXED", _canonical(tax))
    copy = HubSpotCopy(line_items, adjustments)
    total = invoice.get("TotalAmt")
    if total is not None and copy.total != round_money(_money(total, "TotalAmt"), currency):
        raise Failing(
            f"HubSpot would bill {plain(copy.total)} for this QuickBooks invoice of {plain(_money(total, 'TotalAmt'))}",
            category=NOT_REPRESENTABLE,
        )
    return copy


def _bundle(key: str, line: Mapping[str, Any], of_item: Any) -> dict[str, Line]:
    """A GroupLineDetail line: its components when they add up to it, else the bundle as one line."""
    detail = line.get("GroupLineDetail") or {}
    components = [c for c in detail.get("Line") or () if c.get("DetailType") == "SalesItemLineDetail"]
    amount = decimal(line.get("Amount"))
    parts = sum((_money(c.get("Amount"), "component Amount") for c in components), ZERO)
    if components and (amount is None or parts == amount):
        return {f"{key}.{n}": of_item(component) for n, component in enumerate(components, start=1)}
    name = get_path(detail, "GroupItemRef.name") or line.get("Description") or "Bundle"
    return {key: exact_line(name, decimal(detail.get("Quantity")), None, amount if amount is not None else parts)}


# --- HubSpot -> QBO ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HubSpotLine:
    """A HubSpot line item as read: the line, the QBO item it goes to, the net `amount` HubSpot computed."""

    line: Line
    item_id: str
    amount: Decimal | None = None


def qbo_sales_line(line: Line, item_id: str, tax_code: str | None, amount: Decimal | None = None) -> dict[str, Any]:
    """A QBO SalesItemLineDetail line for `line` at its gross amount; without a tax code QBO applies its default."""
    detail: dict[str, Any] = {
        "ItemRef": {"value": item_id},
        "Qty": Decimal(line.quantity),
        "UnitPrice": Decimal(line.price),
    }
    if tax_code:
        detail["TaxCodeRef"] = {"value": tax_code}
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": round_money(line.gross) if amount is None else amount,
        "Description": line.name,
        "SalesItemLineDetail": detail,
    }


def qbo_line(line: Line, item_id: str, tax_code: str | None) -> dict[str, Any]:
    return qbo_sales_line(line, item_id, tax_code)


def qbo_lines(
    lines: Sequence[HubSpotLine],
    adjustments: Sequence[Adjustment],
    billed: Decimal | None,
    *,
    adjustment_item: str | None,
    tax_code: str | None,
    currency: str | None = None,
) -> list[dict[str, Any]]:
    """The QBO Line[] of a HubSpot invoice (see the module docstring). `adjustment_item`: the QBO item fee and tax
    lines go to (needed only when there are some). Raises Failing (not_representable) when QBO could not hold it at
    HubSpot's amount billed."""
    body: list[dict[str, Any]] = []
    discount = ZERO
    subtotal = ZERO
    for read in lines:
        line = read.line
        for field, value in (("quantity", line.quantity), ("price", line.price)):
            if _places(Decimal(value)) > PRICE_PLACES:
                raise Failing(f"line {line.name!r}: {field} {value} has more than {PRICE_PLACES} decimals, more than "
                              "QuickBooks takes", category=NOT_REPRESENTABLE)  # fmt: skip
        gross = round_money(line.gross, currency)
        net = read.amount if read.amount is not None else line.amount
        if gross < 0 or net < 0:
            raise Failing(f"line {line.name!r} is negative", category=NOT_REPRESENTABLE)
        discount += gross - net
        subtotal += net
        body.append(qbo_sales_line(line, read.item_id, tax_code, gross))
    running = subtotal
    extra: list[dict[str, Any]] = []
    for kind in ADJUSTMENT_KINDS:
        for adjustment in (a for a in adjustments if a.kind == kind):
            amount = adjustment.amount_on(running, currency)
            if amount < 0:
                raise Failing(f"{adjustment.label!r} is negative", category=NOT_REPRESENTABLE)
            if kind == "discounts":
                discount += amount
                running -= amount
                continue
            running += amount
            if kind == "taxes" and tax_code:
                continue  # QBO computes the tax from the tax code; the totals are compared after the write
            if adjustment_item is None:
                raise Failing("no QuickBooks item for fees and taxes", category=NOT_REPRESENTABLE)
            fee = Line.of(adjustment.label, 1, plain(amount))
            extra.append(qbo_sales_line(fee, adjustment_item, tax_code if kind == "fees" else None, amount))
    gross_total = sum((line["Amount"] for line in body), ZERO)
    if discount > gross_total or running < 0:
        raise Failing(f"the discounts ({plain(discount)}) exceed the lines they discount ({plain(gross_total)}); a "
                      "QuickBooks discount cannot", category=NOT_REPRESENTABLE)  # fmt: skip
    if discount > 0:
        body.append({"DetailType": "DiscountLineDetail", "Amount": discount,
                     "DiscountLineDetail": {"PercentBased": False}})  # fmt: skip
    body += extra
    if billed is not None and running != billed:
        raise Failing(
            f"QuickBooks would total {plain(running)} for this HubSpot invoice billing {plain(billed)}",
            category=NOT_REPRESENTABLE,
        )
    return body


def qbo_line_signature(lines: Sequence[Mapping[str, Any]], *, with_tax_code: bool) -> list[tuple[str | None, ...]]:
    """What matters of QBO lines when deciding whether they must be rewritten: per item line its item, quantity,
    unit price, description and (when hsqbo sets it) tax code; per discount line its amount; in order. Subtotal
    lines are QBO's own."""
    signature: list[tuple[str | None, ...]] = []
    for line in lines:
        kind = line.get("DetailType")
        if kind == "DiscountLineDetail":
            signature.append(("discount", number(line.get("Amount"))))
            continue
        if kind == "GroupLineDetail":
            group = line.get("GroupLineDetail") or {}
            ref = text(get_path(group, "GroupItemRef.value"))
            signature.append(("group", ref, number(group.get("Quantity")), number(line.get("Amount"))))
            continue
        if kind != "SalesItemLineDetail":
            continue
        detail = line.get("SalesItemLineDetail") or {}
        parts = (
            text(get_path(detail, "ItemRef.value")),
            number(detail.get("Qty")),
            number(detail.get("UnitPrice")),
            text(line.get("Description")),
        )
        signature.append((*parts, text(get_path(detail, "TaxCodeRef.value"))) if with_tax_code else parts)
    return signature


# --- the plan ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Plan(Generic[V]):
    kept: dict[str, str]  # wanted key -> existing record id (updated or not)
    update: dict[str, V]  # existing record id -> what it must become
    create: dict[str, V]  # wanted key -> record to create
    archive: list[str]  # existing record ids no wanted one needs


LinePlan = Plan[Line]


def plan_records(wanted: Mapping[str, V], current: Mapping[str, V], known: Mapping[str, str]) -> Plan[V]:
    """Match wanted records (line items, discounts) to existing ones: first through `known` (key -> id, as last
    synced), then an unclaimed identical record (one written by a run that crashed before recording it) — so a
    replay never duplicates one; what is left is created or archived."""
    kept: dict[str, str] = {}
    update: dict[str, V] = {}
    for key, line in wanted.items():
        item_id = known.get(key)
        if item_id is not None and item_id in current and item_id not in kept.values():
            kept[key] = item_id
            if current[item_id] != line:
                update[item_id] = line
    create: dict[str, V] = {}
    for key, line in wanted.items():
        if key in kept:
            continue
        twin = next((i for i, existing in current.items() if existing == line and i not in kept.values()), None)
        if twin is None:
            create[key] = line
        else:
            kept[key] = twin
    archive = [item_id for item_id in current if item_id not in kept.values()]
    return Plan(kept, update, create, archive)


def plan_line_items(wanted: Mapping[str, Line], current: Mapping[str, Line], known: Mapping[str, str]) -> LinePlan:
    return plan_records(wanted, current, known)


def wanted_from_qbo(
    invoice: Mapping[str, Any], skus: Mapping[str, str], products: Mapping[str, str]
) -> dict[str, Line]:
    """The HubSpot line items a QBO invoice should have (`hubspot_copy`'s line items)."""
    return hubspot_copy(invoice, skus, products).line_items

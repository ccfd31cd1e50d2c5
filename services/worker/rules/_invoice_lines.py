"""Invoice lines in one canonical form whichever side they were read from, and the plan that brings a HubSpot
invoice's line items to the wanted lines with the fewest writes (pure: no I/O)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from services.worker._fields import get_path, number, text
from shared.money import round_price

LINE_ITEM_PROPERTIES = ("name", "quantity", "price", "hs_sku", "hs_product_id")
TAX_LINE_KEY = "tax"  # the line item standing for QBO's computed tax (TxnTaxDetail.TotalTax)
_CENTS = Decimal("0.01")


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One invoice line; numbers are canonical strings ("2", "9.5"), so equal lines compare equal."""

    name: str
    quantity: str
    price: str  # unit price
    sku: str | None = None
    product_id: str | None = None  # the HubSpot product, when one matches

    @classmethod
    def of(cls, name: Any, quantity: Any, price: Any, sku: Any = None, product_id: Any = None) -> Line:
        return cls(
            name=text(name) or "",
            quantity=number(quantity) or "1",
            price=number(price) or "0",
            sku=text(sku),
            product_id=text(product_id),
        )

    @classmethod
    def from_hubspot(cls, properties: Mapping[str, str | None]) -> Line:
        return cls.of(*(properties.get(name) for name in LINE_ITEM_PROPERTIES))

    def hubspot_properties(self) -> dict[str, str]:
        return {
            "name": self.name,
            "quantity": self.quantity,
            "price": self.price,
            "hs_sku": self.sku or "",
            "hs_product_id": self.product_id or "",
        }

    @property
    def amount(self) -> Decimal:
        return (Decimal(self.quantity) * Decimal(self.price)).quantize(_CENTS)


def sales_lines(invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The item lines of a QBO invoice (subtotal, discount and description-only lines left out)."""
    return [line for line in invoice.get("Line") or () if line.get("DetailType") == "SalesItemLineDetail"]


def line_from_qbo(line: Mapping[str, Any], sku: str | None, product_id: str | None) -> Line:
    detail = line.get("SalesItemLineDetail") or {}
    quantity = detail.get("Qty")
    price = detail.get("UnitPrice")
    if price is None:  # QBO accepts a line with only an Amount
        amount = Decimal(str(line.get("Amount") or 0))
        price = round_price(amount / Decimal(str(quantity))) if quantity else amount  # never 28 digits
    name = get_path(detail, "ItemRef.name") or line.get("Description")
    return Line.of(name, quantity if quantity is not None else 1, price, sku, product_id)


def wanted_from_qbo(
    invoice: Mapping[str, Any], skus: Mapping[str, str], products: Mapping[str, str]
) -> dict[str, Line]:
    """The HubSpot line items a QBO invoice should have, keyed by QBO line Id: one per item line, plus one for the
    tax QBO computed, so that HubSpot's amount billed equals the QBO total. `skus`: item id -> SKU; `products`:
    item id -> HubSpot product id."""
    wanted: dict[str, Line] = {}
    for line in sales_lines(invoice):
        item_id = text(get_path(line, "SalesItemLineDetail.ItemRef.value"))
        sku = skus.get(item_id) if item_id else None
        product = products.get(item_id) if item_id else None
        wanted[str(line.get("Id"))] = line_from_qbo(line, sku, product)
    tax = Decimal(str(get_path(invoice, "TxnTaxDetail.TotalTax") or 0))
    if tax > 0:
        wanted[TAX_LINE_KEY] = Line.of("Tax", 1, tax)
    return wanted


def qbo_line(line: Line, item_id: str, tax_code: str | None) -> dict[str, Any]:
    """A QBO SalesItemLineDetail line for `line`; without a tax code QBO applies its default."""
    detail: dict[str, Any] = {
        "ItemRef": {"value": item_id},
        "Qty": Decimal(line.quantity),  # exact JSON numbers (shared.money)
        "UnitPrice": Decimal(line.price),
    }
    if tax_code:
        detail["TaxCodeRef"] = {"value": tax_code}
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": line.amount,
        "Description": line.name,
        "SalesItemLineDetail": detail,
    }


def qbo_line_signature(lines: list[dict[str, Any]], *, with_tax_code: bool) -> list[tuple[str | None, ...]]:
    """What matters of QBO item lines when deciding whether they must be rewritten: item, quantity, unit price,
    description and (when hsqbo sets it) tax code, in order."""
    signature: list[tuple[str | None, ...]] = []
    for line in lines:
        detail = line.get("SalesItemLineDetail") or {}
        parts = (
            text(get_path(detail, "ItemRef.value")),
            number(detail.get("Qty")),
            number(detail.get("UnitPrice")),
            text(line.get("Description")),
        )
        signature.append((*parts, text(get_path(detail, "TaxCodeRef.value"))) if with_tax_code else parts)
    return signature


@dataclasses.dataclass(frozen=True, slots=True)
class LinePlan:
    kept: dict[str, str]  # wanted key -> existing line item id (updated or not)
    update: dict[str, Line]  # existing line item id -> what it must become
    create: dict[str, Line]  # wanted key -> line item to create
    archive: list[str]  # existing line item ids no wanted line needs


def plan_line_items(wanted: Mapping[str, Line], current: Mapping[str, Line], known: Mapping[str, str]) -> LinePlan:
    """Match wanted lines to existing line items: first through `known` (key -> line item id, as last synced), then
    an unclaimed identical line item (one written by a run that crashed before recording it) — so a replay never
    duplicates a line item; what is left is created or archived."""
    kept: dict[str, str] = {}
    update: dict[str, Line] = {}
    for key, line in wanted.items():
        item_id = known.get(key)
        if item_id is not None and item_id in current and item_id not in kept.values():
            kept[key] = item_id
            if current[item_id] != line:
                update[item_id] = line
    create: dict[str, Line] = {}
    for key, line in wanted.items():
        if key in kept:
            continue
        twin = next((i for i, existing in current.items() if existing == line and i not in kept.values()), None)
        if twin is None:
            create[key] = line
        else:
            kept[key] = twin
    archive = [item_id for item_id in current if item_id not in kept.values()]
    return LinePlan(kept, update, create, archive)

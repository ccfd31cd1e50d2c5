"""The CRM object types the emulator serves and their built-in property definitions.

Type ids and names: OBJ. Property names: the object guides (CONTACTS, deals, INV, PAY, products / line items guides)
and SPEC property schemas. Values are validated by type (`_values.py`); `read_only` properties are computed by the
emulator (ids, timestamps, invoice totals) and refused on writes. Portals add custom properties through the
properties API (`hasUniqueValue` included).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

PropertyType = Literal["string", "number", "date", "datetime", "enumeration", "bool"]

FIELD_TYPES: dict[PropertyType, str] = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
    "bool": "booleancheckbox",
}


@dataclasses.dataclass(frozen=True, slots=True)
class PropertyDef:
    name: str
    type: PropertyType = "string"
    options: tuple[str, ...] = ()
    has_unique_value: bool = False
    read_only: bool = False
    hubspot_defined: bool = True
    label: str = ""
    group_name: str = ""
    field_type: str = ""

    def to_json(self, object_name: str) -> dict[str, Any]:
        """SPEC `Property` (required: name, label, type, fieldType, groupName, description, options)."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "fieldType": self.field_type or FIELD_TYPES[self.type],
            "groupName": self.group_name or f"{object_name}information",
            "description": "",
            "options": [
                {"label": option, "value": option, "hidden": False, "displayOrder": order}
                for order, option in enumerate(self.options)
            ],
            "hasUniqueValue": self.has_unique_value,
            "hubspotDefined": self.hubspot_defined,
            "calculated": self.read_only,
            "modificationMetadata": {"readOnlyValue": self.read_only, "readOnlyDefinition": self.hubspot_defined,
                                     "archivable": not self.hubspot_defined},
            "hidden": False,
            "formField": False,
            "archived": False,
        }  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectType:
    name: str  # path segment, e.g. "contacts"
    type_id: str  # e.g. "0-1"
    singular: str  # e.g. "contact": association type names, webhook prefixes
    label: str  # e.g. "CONTACT": error messages
    created_property: str
    modified_property: str
    default_properties: tuple[str, ...]
    required_any: tuple[str, ...] = ()  # create needs at least one of these
    required_all: tuple[str, ...] = ()  # create needs every one of these
    legacy_webhooks: bool = False  # `contact.*` style subscriptions exist; otherwise generic `object.*`
    mergeable: bool = False
    properties: tuple[PropertyDef, ...] = ()

    @property
    def system_properties(self) -> tuple[str, ...]:
        """Always returned, whatever `properties` asks for."""
        return ("hs_object_id", self.created_property, self.modified_property)


def _system(created: str, modified: str) -> tuple[PropertyDef, ...]:
    return (
        PropertyDef("hs_object_id", "number", read_only=True),
        PropertyDef(created, "datetime", read_only=True),
        PropertyDef(modified, "datetime", read_only=True),
    )


def _strings(*names: str) -> tuple[PropertyDef, ...]:
    return tuple(PropertyDef(name) for name in names)


CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "JPY", "SEK", "NOK", "DKK", "INR", "MXN", "BRL", "ZAR")

CONTACTS = ObjectType(
    "contacts", "0-1", "contact", "CONTACT", "createdate", "lastmodifieddate",
    default_properties=("firstname", "lastname", "email"),
    required_any=("email", "firstname", "lastname"),
    legacy_webhooks=True,
    mergeable=True,
    properties=(
        *_system("createdate", "lastmodifieddate"),
        PropertyDef("email", has_unique_value=True),
        *_strings("firstname", "lastname", "phone", "mobilephone", "fax", "jobtitle", "company", "website",
                  "address", "city", "state", "zip", "country", "hs_timezone"),
        PropertyDef("lifecyclestage", "enumeration", options=(
            "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
            "evangelist", "other")),
        PropertyDef("hs_additional_emails", read_only=True),
        PropertyDef("hs_merged_object_ids", read_only=True),
        PropertyDef("associatedcompanyid", "number", read_only=True),
    ),
)  # fmt: skip

COMPANIES = ObjectType(
    "companies", "0-2", "company", "COMPANY", "createdate", "hs_lastmodifieddate",
    default_properties=("name", "domain"),
    legacy_webhooks=True,
    mergeable=True,
    properties=(
        *_system("createdate", "hs_lastmodifieddate"),
        *_strings("name", "domain", "website", "phone", "address", "address2", "city", "state", "zip", "country",
                  "description", "industry"),
        PropertyDef("hs_merged_object_ids", read_only=True),
    ),
)  # fmt: skip

# The default pipeline's stages (deals guide: the internal ids of a portal without custom pipelines).
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent", "closedwon", "closedlost")  # fmt: skip

# Deals guide: create with dealname and dealstage (required here, the stricter reading of "should include");
# pipeline defaults to "default".
DEALS = ObjectType(
    "deals", "0-3", "deal", "DEAL", "createdate", "hs_lastmodifieddate",
    default_properties=("dealname", "amount", "closedate", "pipeline", "dealstage"),
    required_all=("dealname", "dealstage"),
    legacy_webhooks=True,
    mergeable=True,
    properties=(
        *_system("createdate", "hs_lastmodifieddate"),
        *_strings("dealname", "description", "dealtype"),
        PropertyDef("amount", "number"),
        PropertyDef("closedate", "datetime"),
        PropertyDef("pipeline", "enumeration", options=("default",)),
        PropertyDef("dealstage", "enumeration", options=DEAL_STAGES),
        PropertyDef("deal_currency_code", "enumeration", options=CURRENCIES),
        PropertyDef("hs_merged_object_ids", read_only=True),
    ),
)  # fmt: skip

PRODUCTS = ObjectType(
    "products", "0-7", "product", "PRODUCT", "createdate", "hs_lastmodifieddate",
    default_properties=("name", "description", "price"),
    required_all=("name",),
    legacy_webhooks=True,
    properties=(
        *_system("createdate", "hs_lastmodifieddate"),
        *_strings("name", "description", "hs_sku", "hs_recurring_billing_period", "hs_url"),
        PropertyDef("price", "number"),
        PropertyDef("hs_cost_of_goods_sold", "number"),
        PropertyDef("hs_product_type", "enumeration", options=("inventory", "non_inventory", "service")),
    ),
)  # fmt: skip

LINE_ITEMS = ObjectType(
    "line_items", "0-8", "line_item", "LINE_ITEM", "createdate", "hs_lastmodifieddate",
    default_properties=("quantity", "amount", "price"),
    legacy_webhooks=True,
    properties=(
        *_system("createdate", "hs_lastmodifieddate"),
        *_strings("name", "description", "hs_sku", "hs_product_id", "hs_recurring_billing_period"),
        PropertyDef("quantity", "number"),
        PropertyDef("price", "number"),
        PropertyDef("discount", "number"),
        PropertyDef("hs_discount_percentage", "number"),
        PropertyDef("hs_line_item_currency_code", "enumeration", options=CURRENCIES),
        PropertyDef("hs_total_discount", "number", read_only=True),  # quantity * discount + percent of the gross
        PropertyDef("amount", "number", read_only=True),  # quantity * price - hs_total_discount
    ),
)  # fmt: skip

INVOICE_STATUSES = ("draft", "open", "paid", "voided")

INVOICES = ObjectType(
    "invoices", "0-53", "invoice", "INVOICE", "hs_createdate", "hs_lastmodifieddate",
    default_properties=("hs_currency", "hs_invoice_status", "hs_number"),
    required_all=("hs_currency",),
    properties=(
        *_system("hs_createdate", "hs_lastmodifieddate"),
        PropertyDef("hs_currency", "enumeration", options=CURRENCIES),
        PropertyDef("hs_invoice_status", "enumeration", options=INVOICE_STATUSES),
        PropertyDef("hs_invoice_billable", "bool"),
        PropertyDef("hs_invoice_date", "datetime"),
        PropertyDef("hs_due_date", "datetime"),
        PropertyDef("hs_invoice_payment_collection_method", "enumeration", options=("manual", "none")),
        PropertyDef("hs_allow_partial_payments", "bool"),
        *_strings("hs_purchase_order_number", "hs_comments", "hs_tax_id", "hs_title", "hs_language",
                  "hs_locale", "hs_recipient_company_address", "hs_recipient_company_city"),
        PropertyDef("hs_number", read_only=True),  # INV-OLD lists it as read; HubSpot numbers invoices itself
        PropertyDef("hs_subtotal", "number", read_only=True),  # sum of the line items' amounts
        PropertyDef("hs_amount_billed", "number", read_only=True),  # subtotal - discounts + fees + taxes
        PropertyDef("hs_amount_paid", "number", read_only=True),  # sum of the counted payments
        PropertyDef("hs_balance_due", "number", read_only=True),  # billed - paid
    ),
)  # fmt: skip

# Invoice-level discounts, fees and taxes (the discounts, fees and taxes guides: `hs_label`, `hs_type` PERCENT or
# FIXED, `hs_value`, `hs_sort_order`; discounts also `hs_duration`). Applied in the order discounts, fees, taxes.
# Stricter reading: `hs_type` and `hs_value` are required on create (the guides' examples always send both).
ADJUSTMENT_TYPES = ("PERCENT", "FIXED")


def _adjustment(name: str, type_id: str, singular: str) -> ObjectType:
    return ObjectType(
        name, type_id, singular, singular.upper(), "hs_createdate", "hs_lastmodifieddate",
        default_properties=("hs_label", "hs_type", "hs_value"),
        required_all=("hs_type", "hs_value"),
        properties=(
            *_system("hs_createdate", "hs_lastmodifieddate"),
            PropertyDef("hs_label"),
            PropertyDef("hs_type", "enumeration", options=ADJUSTMENT_TYPES),
            PropertyDef("hs_value", "number"),
            PropertyDef("hs_sort_order", "number"),
            PropertyDef("hs_duration", "enumeration", options=("ONCE", "FOREVER", "RECURRING")),
        ),
    )  # fmt: skip


DISCOUNTS = _adjustment("discounts", "0-84", "discount")
FEES = _adjustment("fees", "0-85", "fee")
TAXES = _adjustment("taxes", "0-86", "tax")
ADJUSTMENTS = (DISCOUNTS, FEES, TAXES)

PAYMENT_STATUSES = ("succeeded", "processing", "failed", "refunded", "partially_refunded", "canceled")

COMMERCE_PAYMENTS = ObjectType(
    "commerce_payments", "0-101", "commerce_payment", "COMMERCE_PAYMENT", "hs_createdate", "hs_lastmodifieddate",
    default_properties=("hs_initial_amount", "hs_latest_status", "hs_initiated_date"),
    required_all=("hs_initial_amount", "hs_initiated_date"),
    properties=(
        *_system("hs_createdate", "hs_lastmodifieddate"),
        PropertyDef("hs_initial_amount", "number"),
        PropertyDef("hs_initiated_date", "datetime"),
        PropertyDef("hs_currency_code", "enumeration", options=CURRENCIES),
        PropertyDef("hs_latest_status", "enumeration", options=PAYMENT_STATUSES),
        *_strings("hs_payment_method", "hs_reference_number", "hs_internal_comment", "hs_customer_email"),
    ),
)  # fmt: skip

OBJECT_TYPES: tuple[ObjectType, ...] = (
    CONTACTS, COMPANIES, DEALS, PRODUCTS, LINE_ITEMS, INVOICES, COMMERCE_PAYMENTS, DISCOUNTS, FEES, TAXES
)  # fmt: skip

BY_NAME: dict[str, ObjectType] = {object_type.name: object_type for object_type in OBJECT_TYPES}

# Every spelling HubSpot accepts in a path: plural name, singular name, type id ("contacts", "contact", "0-1").
_BY_ANY_NAME: dict[str, ObjectType] = {
    key: object_type
    for object_type in OBJECT_TYPES
    for key in (object_type.name, object_type.singular, object_type.type_id)
}


def object_type_named(name: str) -> ObjectType | None:
    return _BY_ANY_NAME.get(name.lower())

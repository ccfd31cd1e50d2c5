"""The OAuth scopes of every HubSpot call hsqbo makes, and the scopes it requests: their union.

    required_scopes("PUT", "/crm/v4/objects/commerce_payments/7/associations/default/deals/9")
        == {"crm.objects.commercepayments.write", "crm.objects.deals.write"}

`FAMILIES` maps each endpoint family (method + path pattern) to the scopes a call needs. Sources: HubSpot's public
OpenAPI specs (`security` of each operation, HubSpot-public-api-spec-collection @ 99893791383, names only) and the
reference (hubspot-api.md §2, §4, §7). Where the spec is loose hsqbo takes the stricter reading, so a portal that
checks more than documented still accepts every call:
- association reads and writes (v4, or `associations` on a create or a read) need the scopes of both objects'
  types, read for reads, write for writes; the spec accepts any one of 80 object scopes for them;
- products and line items: the spec also accepts the legacy `e-commerce` scope for objects; hsqbo asks for the
  granular `crm.objects.*` ones, and for `e-commerce` only where nothing granular exists (product and line item
  property definitions);
- property definitions need the object's `crm.schemas.<type>.read` / `.write` (the spec accepts many scopes for a
  read; the schema scope is the one that names the object);
- `GET /account-info/v3/details` needs `oauth` (spec), which every HubSpot app has: it gives the company currency,
  the additional currencies and the time zone, so hsqbo needs no `settings.currencies.read`;
- the OAuth token endpoints and token metadata take the app's credentials or the token itself, no scope; the
  consent screen (`/oauth/authorize`, visited by the operator's browser) is where the scopes are asked for;
- the webhooks API (`hsqbo config check` reads the app's subscriptions) takes the developer API key, no scope.

`REQUESTED_SCOPES` is what hsqbo asks for on the consent screen (the status page's Connect) and what a private app
for hsqbo must be given; a test checks it covers every call. A call outside the table raises `UnknownCall`: add its
family here first.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# Object type (the API's path name) -> the stem of its object scopes: `<stem>.read`, `<stem>.write` (SPEC).
OBJECT_SCOPES: dict[str, str] = {
    "contacts": "crm.objects.contacts",
    "companies": "crm.objects.companies",
    "deals": "crm.objects.deals",
    "products": "crm.objects.products",
    "line_items": "crm.objects.line_items",
    "invoices": "crm.objects.invoices",
    "commerce_payments": "crm.objects.commercepayments",
    # Invoice-level discounts, fees and taxes have no scopes of their own: HubSpot's guides for these objects name
    # the line items scopes (a doubtful fact: the stricter reading would be a scope per object, which no doc names).
    "discounts": "crm.objects.line_items",
    "fees": "crm.objects.line_items",
    "taxes": "crm.objects.line_items",
}

# Object type -> (read, write) scope of its property definitions (SPEC `/crm/v3/properties/{objectType}`; there is
# no `crm.schemas.products.*`, and line item definitions are written under `e-commerce`).
SCHEMA_SCOPES: dict[str, tuple[str, str]] = {
    "contacts": ("crm.schemas.contacts.read", "crm.schemas.contacts.write"),
    "companies": ("crm.schemas.companies.read", "crm.schemas.companies.write"),
    "deals": ("crm.schemas.deals.read", "crm.schemas.deals.write"),
    "products": ("e-commerce", "e-commerce"),
    "line_items": ("crm.schemas.line_items.read", "e-commerce"),
    "invoices": ("crm.schemas.invoices.read", "crm.schemas.invoices.write"),
    "commerce_payments": ("crm.schemas.commercepayments.read", "crm.schemas.commercepayments.write"),
}

# HUBSPOT_DEFINED association type ids hsqbo sends on creates -> the type they point at (reference §4).
ASSOCIATION_TARGETS: dict[int, str] = {
    177: "contacts",  # invoice -> contact
    179: "companies",  # invoice -> company
    410: "invoices",  # line item -> invoice
    542: "invoices",  # commerce payment -> invoice
    391: "deals",  # commerce payment -> deal
}

# What hsqbo requests, and why (the README's table).
REQUESTED_SCOPES: dict[str, str] = {
    "oauth": "every HubSpot app has it; the portal's account details (time zone, company currency)",
    "crm.objects.contacts.read": "read contacts to sync them to QBO customers, and invoices' contacts",
    "crm.objects.contacts.write": "create and update contacts from QBO customers; associate invoices with them",
    "crm.objects.companies.read": "read a contact's primary company (the QBO customer's company name)",
    "crm.objects.companies.write": "associate invoices made from QBO with the contact's primary company",
    "crm.objects.deals.read": "read an invoice's deals, so a payment made from QBO shows on them",
    "crm.objects.deals.write": "associate payments made from QBO with the invoice's deals",
    "crm.objects.products.read": "read products to sync them to QBO items",
    "crm.objects.products.write": "create and update products from QBO items",
    "crm.objects.line_items.read": "read an invoice's line items",
    "crm.objects.line_items.write": "create, update and remove the line items of invoices made from QBO",
    "crm.objects.invoices.read": "read invoices to sync them to QBO",
    "crm.objects.invoices.write": "create, update and void invoices from QBO; associate line items and payments",
    "crm.objects.commercepayments.read": "read payments to sync them to QBO",
    "crm.objects.commercepayments.write": "create, update and archive payments from QBO",
    "e-commerce": "define the product property holding the QBO item id (no granular scope exists for it)",
    "crm.schemas.invoices.read": "read the invoice property holding the QBO invoice id",
    "crm.schemas.invoices.write": "define the invoice property holding the QBO invoice id",
    "crm.schemas.commercepayments.read": "read the payment property holding the QBO payment id",
    "crm.schemas.commercepayments.write": "define the payment property holding the QBO payment id",
}

QueryParams = Sequence[tuple[str, str]]


class UnknownCall(LookupError):
    """A HubSpot call no family of the table covers: its scopes are unknown."""


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """What decides a call's scopes: its method and path, and the associations its query or body name."""

    method: str
    path: str
    params: QueryParams = ()
    body: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class Family:
    name: str
    method: str
    path: re.Pattern[str]
    scopes: Callable[[re.Match[str], Call], Iterable[str]]


def _object(type_name: str, access: str) -> str:
    stem = OBJECT_SCOPES.get(type_name)
    if stem is None:
        raise UnknownCall(f"no scopes known for HubSpot object type {type_name!r}")
    return f"{stem}.{access}"


def _schema(type_name: str, access: int) -> str:
    scopes = SCHEMA_SCOPES.get(type_name)
    if scopes is None:
        raise UnknownCall(f"no schema scopes known for HubSpot object type {type_name!r}")
    return scopes[access]


def _read_with_associations(match: re.Match[str], call: Call) -> list[str]:
    inline = [part for name, value in call.params if name == "associations" for part in value.split(",") if part]
    return [_object(match["type"], "read"), *(_object(to_type, "read") for to_type in inline)]


def _create_with_associations(match: re.Match[str], call: Call) -> list[str]:
    return [_object(match["type"], "write"), *_association_scopes(call.body)]


def _batch_create_with_associations(match: re.Match[str], call: Call) -> list[str]:
    inputs = (call.body or {}).get("inputs", ()) if isinstance(call.body, Mapping) else ()
    return [_object(match["type"], "write"), *(scope for new in inputs for scope in _association_scopes(new))]


def _association_scopes(new_record: Any) -> list[str]:
    """The write scopes of the types a new record's inline associations point at."""
    scopes = []
    for association in new_record.get("associations", ()) if isinstance(new_record, Mapping) else ():
        for kind in association.get("types", ()):
            to_type = ASSOCIATION_TARGETS.get(int(kind.get("associationTypeId", -1)))
            if to_type is None:
                raise UnknownCall(f"association type {kind.get('associationTypeId')!r} is not in the table")
            scopes.append(_object(to_type, "write"))
    return scopes


def _both(access: str) -> Callable[[re.Match[str], Call], list[str]]:
    return lambda match, call: [_object(match["type"], access), _object(match["to"], access)]


def _just(*scopes: str) -> Callable[[re.Match[str], Call], tuple[str, ...]]:
    return lambda match, call: scopes


def _of_type(access: str) -> Callable[[re.Match[str], Call], list[str]]:
    return lambda match, call: [_object(match["type"], access)]


_TYPE = r"(?P<type>[a-z_]+)"
_TO = r"(?P<to>[a-z_]+)"
_ID = r"[^/]+"

FAMILIES: tuple[Family, ...] = (
    Family("object read", "GET", re.compile(rf"/crm/v3/objects/{_TYPE}/{_ID}"), _read_with_associations),
    Family("object create", "POST", re.compile(rf"/crm/v3/objects/{_TYPE}"), _create_with_associations),
    Family("object update", "PATCH", re.compile(rf"/crm/v3/objects/{_TYPE}/{_ID}"), _of_type("write")),
    Family("object archive", "DELETE", re.compile(rf"/crm/v3/objects/{_TYPE}/{_ID}"), _of_type("write")),
    Family("batch read", "POST", re.compile(rf"/crm/v3/objects/{_TYPE}/batch/read"), _of_type("read")),
    Family(
        "batch create", "POST", re.compile(rf"/crm/v3/objects/{_TYPE}/batch/create"), _batch_create_with_associations
    ),
    Family("batch upsert", "POST", re.compile(rf"/crm/v3/objects/{_TYPE}/batch/upsert"), _of_type("write")),
    Family("batch update", "POST", re.compile(rf"/crm/v3/objects/{_TYPE}/batch/update"), _of_type("write")),
    Family("search", "POST", re.compile(rf"/crm/v3/objects/{_TYPE}/search"), _of_type("read")),
    Family("associations list", "GET", re.compile(rf"/crm/v4/objects/{_TYPE}/{_ID}/associations/{_TO}"), _both("read")),
    Family(
        "associations batch read", "POST", re.compile(rf"/crm/v4/associations/{_TYPE}/{_TO}/batch/read"), _both("read")
    ),
    Family(
        "associate (default)",
        "PUT",
        re.compile(rf"/crm/v4/objects/{_TYPE}/{_ID}/associations/default/{_TO}/{_ID}"),
        _both("write"),
    ),
    Family(
        "associate (labelled)",
        "PUT",
        re.compile(rf"/crm/v4/objects/{_TYPE}/{_ID}/associations/{_TO}/{_ID}"),
        _both("write"),
    ),
    Family(
        "remove association",
        "DELETE",
        re.compile(rf"/crm/v4/objects/{_TYPE}/{_ID}/associations/{_TO}/{_ID}"),
        _both("write"),
    ),
    Family(
        "property read",
        "GET",
        re.compile(rf"/crm/v3/properties/{_TYPE}/{_ID}"),
        lambda match, call: [_schema(match["type"], 0)],
    ),
    Family(
        "property create",
        "POST",
        re.compile(rf"/crm/v3/properties/{_TYPE}"),
        lambda match, call: [_schema(match["type"], 1)],
    ),
    Family("account details", "GET", re.compile(r"/account-info/v3/details"), _just("oauth")),
    Family("oauth token", "POST", re.compile(r"/oauth/(v1|v3|\d{4}-\d{2})/token(/introspect)?"), _just()),
    Family("token metadata", "GET", re.compile(rf"/oauth/v1/access-tokens/{_ID}"), _just()),
    Family("consent screen", "GET", re.compile(r"/oauth/authorize"), _just()),  # the browser's, with `scope`
    Family("webhook subscriptions", "GET", re.compile(rf"/webhooks/v3/{_ID}/subscriptions"), _just()),  # hapikey
)


def required_scopes(call: Call) -> frozenset[str]:
    """Every scope the call needs (all of them); `UnknownCall` when no family covers it."""
    for family in FAMILIES:
        if family.method == call.method.upper():
            match = family.path.fullmatch(call.path)
            if match is not None:
                return frozenset(family.scopes(match, call))
    raise UnknownCall(f"{call.method} {call.path} is in no family of the scope table")


def scopes_to_grant(named: Iterable[str], call: Call) -> tuple[str, ...]:
    """The scopes to ask the operator to grant after a MISSING_SCOPES answer: those HubSpot named that the call
    needs (HubSpot may list alternatives, e.g. sensitive-data scopes), else those it named that hsqbo requests, else
    the call's own scopes, else whatever it named."""
    named = set(named)
    try:
        needed = set(required_scopes(call))
    except UnknownCall:
        needed = set()
    for choice in (named & needed, named & set(REQUESTED_SCOPES), needed, named):
        if choice:
            return tuple(sorted(choice))
    return ()

"""Scopes: every API call is checked against the scopes its token was granted (OAuth tokens carry the scopes of
their install, private-app tokens those given to the app); a call outside them is answered 403 `MISSING_SCOPES`.

Requirements come from HubSpot's OpenAPI specs (the `security` of each operation, HubSpot-public-api-spec-collection
@ 99893791383, names only) and are written here independently of hsqbo's own table (`shared/clients/_scopes.py`),
so a call hsqbo does not cover is caught. A requirement is a set of alternatives (any one of them will do); a call
needs every requirement met:
- objects (`/crm/v3/objects/{type}...`, `/crm/objects/{version}/{type}...`): `crm.objects.<type>.read` for GET,
  search and batch read, `.write` for everything else; products and line items also accept `e-commerce` (spec);
- property definitions (`/crm/v3/properties/{type}`): reads `crm.schemas.<type>.read`, writes `.write`; products
  and line items `e-commerce` (the spec has no `crm.schemas.products.*`; line item reads also accept
  `crm.schemas.line_items.read`);
- account details (`/account-info/v3/details`): `oauth`; currency settings (`/settings/v3/currencies/...`): reads
  `settings.currencies.read` or a quote scope, writes `settings.currencies.write` (checked once those routes exist);
- the webhooks API (`/webhooks/v3/{appId}/subscriptions`) takes the developer API key, not a token: no scope
  (`_app_api.py` refuses a missing or wrong key instead).

Stricter readings (the spec accepts any one of ~80 object scopes for association endpoints, and lists only the
object's own scope for a create or read that names associations):
- an association read or write (v4 single and batch endpoints, `associations` of a create body or of a read's
  query) needs the scopes of both objects' types: read for reads, write for writes;
- a property read needs the object's schema scope, though the spec also accepts object scopes for it.

The 403 body follows what HubSpot sends (ERR; answers quoted in HubSpot/hubspot-api-nodejs#268 and HubSpot
community threads): `{"status": "error", "message": "This app hasn't been granted all required scopes to make this
call. Read more about required scopes here: https://developers.hubspot.com/scopes.", "correlationId", "errors":
[{"message": "One or more of the following scopes are required.", "context": {"requiredGranularScopes": [...]}}],
"links": {"scopes": "https://developers.hubspot.com/scopes"}, "category": "MISSING_SCOPES"}`, one entry of `errors`
per requirement not met.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hsqbo_sandbox.hubspot._associations import KINDS
from hsqbo_sandbox.hubspot._errors import HubSpotError
from hsqbo_sandbox.hubspot._schema import object_type_named

Requirement = frozenset[str]  # any one of these scopes

_OBJECT_STEMS = {
    "contacts": "crm.objects.contacts",
    "companies": "crm.objects.companies",
    "deals": "crm.objects.deals",
    "products": "crm.objects.products",
    "line_items": "crm.objects.line_items",
    "invoices": "crm.objects.invoices",
    "commerce_payments": "crm.objects.commercepayments",
    "discounts": "crm.objects.line_items",  # discounts, fees and taxes: the line items scopes (their guides)
    "fees": "crm.objects.line_items",
    "taxes": "crm.objects.line_items",
}
_LEGACY_ECOMMERCE = {"products", "line_items"}
_SCHEMA_SCOPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # type -> (read, write) alternatives
    "contacts": (frozenset({"crm.schemas.contacts.read"}), frozenset({"crm.schemas.contacts.write"})),
    "companies": (frozenset({"crm.schemas.companies.read"}), frozenset({"crm.schemas.companies.write"})),
    "deals": (frozenset({"crm.schemas.deals.read"}), frozenset({"crm.schemas.deals.write"})),
    "products": (frozenset({"e-commerce"}), frozenset({"e-commerce"})),
    "line_items": (frozenset({"crm.schemas.line_items.read", "e-commerce"}), frozenset({"e-commerce"})),
    "invoices": (frozenset({"crm.schemas.invoices.read"}), frozenset({"crm.schemas.invoices.write"})),
    "commerce_payments": (
        frozenset({"crm.schemas.commercepayments.read"}),
        frozenset({"crm.schemas.commercepayments.write"}),
    ),
}
SCOPES_LINK = "https://developers.hubspot.com/scopes"
# Currency settings (spec): reads take settings.currencies.read or a quote scope, writes settings.currencies.write.
_CURRENCY_READ = frozenset(
    {"settings.currencies.read", "crm.objects.quotes.read", "crm.objects.quotes.write", "cpq.quotes.read",
     "cpq.quotes.write"}
)  # fmt: skip
_CURRENCY_WRITE = "settings.currencies.write"
# Every scope a requirement here names: a token with these may make any call the emulator serves (its own tests).
EVERY_SCOPE: tuple[str, ...] = tuple(sorted(
    {f"{stem}.{access}" for stem in _OBJECT_STEMS.values() for access in ("read", "write")}
    | {scope for pair in _SCHEMA_SCOPES.values() for alternatives in pair for scope in alternatives}
    | {"oauth", "settings.currencies.read", _CURRENCY_WRITE}
))  # fmt: skip


def _type_name(segment: str) -> str | None:
    object_type = object_type_named(segment)
    return object_type.name if object_type is not None else None


def object_scope(type_segment: str, access: str) -> Requirement | None:
    """`access` ("read" / "write") of an object type; None for a type the emulator does not know (the handler
    answers it)."""
    name = _type_name(type_segment)
    if name is None or name not in _OBJECT_STEMS:
        return None
    alternatives = {f"{_OBJECT_STEMS[name]}.{access}"}
    if name in _LEGACY_ECOMMERCE:
        alternatives.add("e-commerce")
    return frozenset(alternatives)


def _inline_targets(associations: Any) -> Iterable[str]:
    """The object types a create body's `associations` point at (through their type ids)."""
    for association in associations if isinstance(associations, list) else ():
        for spec in (association.get("types") or ()) if isinstance(association, Mapping) else ():
            type_id = str(spec.get("associationTypeId", "")) if isinstance(spec, Mapping) else ""
            kind = KINDS.get(int(type_id)) if type_id.isdigit() else None
            if kind is not None:
                yield kind.to_type


def requirements(method: str, path: str, query_associations: Iterable[str], body: Any) -> list[Requirement]:
    """What a call needs, one requirement per scope family; [] for a path without scopes (or unknown here)."""
    parts = [part for part in path.split("/") if part]
    method = method.upper()
    needed: list[Requirement | None] = []
    if parts[:2] == ["crm", "v3"] and len(parts) >= 4 and parts[2] == "objects":
        rest = parts[4:]
        needed += _object_call(method, parts[3], rest, query_associations, body)
    elif parts[:2] == ["crm", "objects"] and len(parts) >= 4:  # dated paths: /crm/objects/{version}/{type}
        needed += _object_call(method, parts[3], parts[4:], query_associations, body)
    elif parts[:3] == ["crm", "v4", "objects"] and len(parts) >= 6 and parts[5] == "associations":
        to_type = parts[7] if len(parts) > 7 and parts[6] == "default" else parts[6] if len(parts) > 6 else None
        access = "read" if method == "GET" else "write"
        needed += [object_scope(parts[3], access), object_scope(to_type, access) if to_type else None]
    elif parts[:3] == ["crm", "v4", "associations"] and len(parts) >= 5:
        access = "read" if parts[-1] == "read" else "write"
        needed += [object_scope(parts[3], access), object_scope(parts[4], access)]
    elif parts[:3] == ["account-info", "v3", "details"]:
        needed.append(frozenset({"oauth"}))
    elif parts[:3] == ["settings", "v3", "currencies"]:
        needed.append(_CURRENCY_READ if method == "GET" or parts[-1] == "read" else frozenset({_CURRENCY_WRITE}))
    elif parts[:3] == ["crm", "v3", "properties"] and len(parts) >= 4:
        name = _type_name(parts[3])
        if name in _SCHEMA_SCOPES:
            read, write = _SCHEMA_SCOPES[name]
            needed.append(read if method == "GET" or parts[-1] == "read" else write)
    return list(dict.fromkeys(requirement for requirement in needed if requirement))


def _object_call(
    method: str, type_segment: str, rest: list[str], query_associations: Iterable[str], body: Any
) -> list[Requirement | None]:
    reads = method == "GET" or rest in (["search"], ["batch", "read"])
    needed = [object_scope(type_segment, "read" if reads else "write")]
    if method == "GET":
        needed += [object_scope(to_type, "read") for to_type in query_associations]
    elif method == "POST" and not rest and isinstance(body, Mapping):
        needed += [object_scope(to_type, "write") for to_type in _inline_targets(body.get("associations"))]
    elif method == "POST" and rest == ["batch", "create"] and isinstance(body, Mapping):
        for item in body.get("inputs") or ():
            if isinstance(item, Mapping):
                needed += [object_scope(to_type, "write") for to_type in _inline_targets(item.get("associations"))]
    return needed


def check(granted: Iterable[str], needed: list[Requirement]) -> None:
    """Raise HubSpot's 403 MISSING_SCOPES when a requirement has none of its scopes granted."""
    have = set(granted)
    unmet = [requirement for requirement in needed if not requirement & have]
    if unmet:
        raise HubSpotError(
            403, "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
            f"here: {SCOPES_LINK}.",
            errors=[
                {"message": "One or more of the following scopes are required.",
                 "context": {"requiredGranularScopes": sorted(requirement)}}
                for requirement in unmet
            ],
            links={"scopes": SCOPES_LINK},
        )  # fmt: skip

"""HubSpot contact ↔ QBO Customer.

Matching: the id map first, then email, and never a guess (see `_match`): the email is looked up among QBO's
customers, inactive ones included. One customer, linked to no other contact: linked. None: a customer is made. Several
(a bookkeeper's email on two customers), or the one found is linked to another contact: the contact needs review and
nothing is written until an operator decides (`hsqbo review`). From QBO alike: the contact with the customer's email
(HubSpot emails are unique) is linked only when no other customer shares that email; customers sharing one need
review. A match with an inactive customer (from a live HubSpot contact) links to it and reactivates it: the live
side wins, and no second customer is made. An inactive customer with no link does not reach HubSpot (excluded).
When two existing records are first linked, the values the link overwrites are kept in the record's activity.

A customer created from HubSpot is named (DisplayName) after the contact's primary company, else first + last name.
Names follow QBO's rules (`_names`: DisplayName 500 characters, GivenName/FamilyName/CompanyName 100, no colon, tab
or newline). QBO requires DisplayName to be unique; when the second contact of a company collides with the first, the
`display_name_strategy` decides:

    fail          the incumbent's behaviour: the contact is failing (category duplicate_display_name)
    link          the existing customer has the same email: link to it; otherwise fail
    disambiguate  (default) a deterministic suffix: "Acme (Jane Doe)", then "Acme (jane@acme.com)", then
                  "Acme (HubSpot 512)", so every contact becomes a customer and no data is lost; at the limit the
                  company name is cut and the suffix kept, so the names stay distinct

A company-only customer (no GivenName, FamilyName or email) reaches HubSpot as a contact whose `lastname` carries its
DisplayName and `company` its CompanyName (its DisplayName when it has none): HubSpot needs an email, a first or a last
name on a contact. Both read back as the customer's names, so nothing is written back to QBO.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

from services.worker import _fields, _names
from services.worker._executor import MergedAway
from services.worker._fields import FieldMap, lower_text
from services.worker._plan import AllRefused, Step
from services.worker.rules import GONE, Excluded, Failing, Hints, Outcome, hubspot_version, qbo_version, saw
from services.worker.rules import _filters as filters
from services.worker.rules import _match as match
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
    restore_survivor,
    settled_from_qbo,
    sync_fields,
    unread_hubspot,
    wait_for_a_create_in_doubt,
)
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.connections import SyncContext
from shared.domain import Action, Kind, Provider
from shared.errors import Conflict, NotFound
from shared.store import Candidate, Link, ReviewDecision
from shared.syncconfig import ConnectionSettings, ContactSettings

SPEC = PairSpec(
    hubspot_type="contacts",
    qbo_entity="Customer",
    fields=(
        FieldMap("email", "email", "PrimaryEmailAddr.Address", lower_text),
        FieldMap("first_name", "firstname", "GivenName", _names.canonical(_names.PERSON_NAME_MAX)),
        FieldMap("last_name", "lastname", "FamilyName", _names.canonical(_names.PERSON_NAME_MAX)),
        FieldMap("phone", "phone", "PrimaryPhone.FreeFormNumber", _names.cut_to(_names.PHONE_MAX)),
        FieldMap("company", "company", "CompanyName", _names.canonical(_names.COMPANY_NAME_MAX)),
        FieldMap("address", "address", "BillAddr.Line1"),
        FieldMap("city", "city", "BillAddr.City"),
        FieldMap("state", "state", "BillAddr.CountrySubDivisionCode"),
        FieldMap("zip", "zip", "BillAddr.PostalCode"),
        FieldMap("country", "country", "BillAddr.Country"),
    ),
)
PRIMARY_COMPANY = 1  # contact -> company association type id of the primary company
NON_DRAFT = ("open", "paid", "voided")


class ContactRule:
    kind = Kind.CONTACT

    def settings(self, connection: ConnectionSettings) -> ContactSettings:
        return connection.contacts

    # --- HubSpot -> QBO ----------------------------------------------------------------------------------------------

    async def from_hubspot(self, ctx: SyncContext, contact_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.contacts
        maps = _fields.active_maps(SPEC.fields, settings)
        merged = await repoint_merged(ctx, Kind.CONTACT, Provider.HUBSPOT, contact_id, hints)
        # The link first, then the records (see rules/__init__.py).
        link = await ctx.store.get_link(ctx.name, Kind.CONTACT, hubspot_id=contact_id)
        try:
            contact = await ctx.hubspot.get("contacts", contact_id, properties=hubspot_properties(maps))
        except NotFound:
            saw(GONE)
            return await deactivate_in_qbo(ctx, SPEC, Kind.CONTACT, settings, contact_id)
        if contact.id != contact_id:
            return await _merged_away(ctx, contact_id, contact.id)
        saw(hubspot_version(contact), contact)
        if link is not None and link.qbo_id is not None:
            customer = await ctx.qbo.read("Customer", link.qbo_id)
            restore = {"Active": True} if not customer.get("Active", True) else None
            action = Action.RESTORED if restore else Action.MERGED if merged else Action.UPDATED
            return await _sync(ctx, settings, link, contact, customer, action=action, qbo_extra=restore)

        await screen_contact(ctx, contact)
        decision = match.resolved(link)
        found: QboEntity | None = None
        if decision == ReviewDecision.PICK and link is not None and link.review_pick is not None:
            found = await ctx.qbo.read("Customer", link.review_pick)
        elif decision is None:
            chosen, customers = await match_contact(ctx, contact, link)
            if isinstance(chosen, match.Review):
                return await match.needs_review(
                    ctx, Kind.CONTACT, link, Provider.HUBSPOT, contact_id, chosen, match.version(contact)
                )
            if isinstance(chosen, match.LinkTo):
                found = customers[chosen.id]
        if found is not None:
            return await _link(ctx, settings, link, Provider.HUBSPOT, contact, found)
        return await self._create_customer(ctx, settings, contact, maps, link)

    async def _create_customer(
        self,
        ctx: SyncContext,
        settings: ContactSettings,
        contact: HubSpotObject,
        maps: list[FieldMap],
        link: Link | None,
    ) -> Outcome:
        """The customer made (`plan_qbo_create`, carried out), then the fields synced from what QBO made; under the
        `link` strategy, the customer already holding the name linked when it has the contact's email."""
        values = _fields.from_hubspot(maps, contact.properties)
        body = _unblank(_fields.to_qbo(maps, values))
        base = await _display_name(ctx, settings, contact)
        taken = AllRefused(
            f"QuickBooks already has a customer named {base!r} (DisplayName must be unique)",
            category="duplicate_display_name",
        )
        suffixes: list[str | None] = []
        if settings.display_name_strategy == "disambiguate":
            person = " ".join(filter(None, (values.get("first_name"), values.get("last_name"))))
            suffixes = [person, values.get("email"), f"HubSpot {contact.id}"]
        elif settings.display_name_strategy == "link" and (existing := await _customer_by_display_name(ctx, base)):
            email = values.get("email")
            if not email or lower_text(_fields.get_path(existing, "PrimaryEmailAddr.Address")) != email:
                raise Failing(taken.message, category=taken.category)
            return await _link(ctx, settings, link, Provider.HUBSPOT, contact, existing)
        names = _names.candidates(base, suffixes, _names.DISPLAY_NAME_MAX)
        new = link or Link(connection=ctx.name, kind=Kind.CONTACT, origin=Provider.HUBSPOT, hubspot_id=contact.id)
        held = await lost_create(
            ctx, SPEC, Kind.CONTACT, new, name_field="DisplayName", names=names,
            hash_of=lambda customer: _fields.content_hash(_fields.from_qbo(maps, customer)),
        )  # fmt: skip
        try:
            plan = plan_qbo_create(
                SPEC, new, contact.id, body, name_field="DisplayName", names=names, holds=_fields.from_qbo(maps, body),
                all_refused=taken, held=held,
            )  # fmt: skip
        except Ambiguous as exc:
            review = match.Review(tuple(Candidate(str(c["Id"]), _label(c)) for c in exc.entities), str(exc))
            return await match.needs_review(
                ctx, Kind.CONTACT, link, Provider.HUBSPOT, contact.id, review, match.version(contact)
            )
        made, customer = await carry_out_qbo_create(ctx, plan, held)
        return await _sync(ctx, settings, made, contact, customer, action=Action.CREATED)

    # --- QBO -> HubSpot ----------------------------------------------------------------------------------------------

    async def from_qbo(self, ctx: SyncContext, customer_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.contacts
        maps = _fields.active_maps(SPEC.fields, settings)
        merged = await repoint_merged(ctx, Kind.CONTACT, Provider.QUICKBOOKS, customer_id, hints)
        # The link first, then the records (see rules/__init__.py).
        link = await ctx.store.get_link(ctx.name, Kind.CONTACT, qbo_id=customer_id)
        customer = await ctx.qbo.read("Customer", customer_id)
        saw(qbo_version(customer), customer)
        if link is not None and link.qbo_written_sync_token == str(customer.get("SyncToken")) and not merged:
            return Outcome(Action.ECHO, link=link, detail="our own write")
        if not customer.get("Active", True):
            return await archive_in_hubspot(ctx, SPEC, settings, link)
        properties = hubspot_properties(maps)
        if link is not None and link.hubspot_id is not None:
            if not merged and settled_from_qbo(SPEC, settings, link, _customer_view(customer)):
                return Outcome(Action.UNCHANGED, link=link, detail="no synced field changed in QuickBooks")
            if not merged and (assumed := await unread_hubspot(ctx, SPEC, settings, link)) is not None:
                try:
                    return await _sync(
                        ctx, settings, link, assumed, customer, action=Action.UPDATED, hubspot_read=False
                    )
                except NotFound as gone:
                    # Deleted or merged away in HubSpot: again, reading it (the link now holds the plan's intent).
                    if isinstance(gone, MergedAway):
                        await restore_survivor(ctx, SPEC, settings, Kind.CONTACT, gone)
                    return await self.from_qbo(ctx, customer_id, hints)
            try:
                linked = await ctx.hubspot.get("contacts", link.hubspot_id, properties=properties)
            except NotFound:
                return Outcome(Action.SKIPPED, link=link, detail="the linked HubSpot contact was deleted")
            if linked.id != link.hubspot_id:  # merged into another contact, its merge not yet seen: as in from_hubspot
                return await _merged_away(ctx, link.hubspot_id, linked.id)
            action = Action.MERGED if merged else Action.UPDATED
            return await _sync(ctx, settings, link, linked, customer, action=action)

        await screen_customer(ctx, customer)
        decision = match.resolved(link)
        contact: HubSpotObject | None = None
        if decision == ReviewDecision.PICK and link is not None and link.review_pick is not None:
            contact = await ctx.hubspot.get("contacts", link.review_pick, properties=properties)
        elif decision is None:
            chosen, contact = await match_customer(ctx, customer, link)
            if isinstance(chosen, match.Review):
                return await match.needs_review(
                    ctx, Kind.CONTACT, link, Provider.QUICKBOOKS, customer_id, chosen, str(customer.get("SyncToken"))
                )
        if contact is not None:
            return await _link(ctx, settings, link, Provider.QUICKBOOKS, contact, customer)
        # Not the customer of a contact whose create's answer was lost (that create's retry adopts it).
        await wait_for_a_create_in_doubt(
            ctx, Kind.CONTACT, link, customer, _fields.content_hash(_fields.from_qbo(maps, customer))
        )
        # The contact made (`plan_hubspot_create`: what it will hold recorded first, so a retry after a crash that
        # lost the link finds it by email and takes its values as our write), then the fields synced from what the
        # create wrote.
        values = _fields.from_qbo(maps, _customer_view(customer))
        written = _fields.to_hubspot(maps, values)
        base = link or Link(connection=ctx.name, kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id=customer_id)
        try:
            made, contact_id = await carry_out_create(
                ctx, plan_hubspot_create(SPEC, base, written, holds=values), Provider.HUBSPOT
            )
        except Conflict as exc:  # made meanwhile, or by a crashed attempt of ours the lookup by email missed
            if exc.existing_id is None:
                raise
            taken = await ctx.hubspot.get("contacts", exc.existing_id, properties=properties)
            intent = adopted_intent(maps, link, taken, create_new=decision == ReviewDecision.CREATE_NEW)
            link = await ctx.store.get_link(ctx.name, Kind.CONTACT, qbo_id=customer_id)  # as the plan left it
            return await _link(ctx, settings, link, Provider.QUICKBOOKS, taken, customer, hubspot_hash=intent)
        created = HubSpotObject(contact_id, dict(written), None, None)
        return await _sync(ctx, settings, made, created, customer, action=Action.CREATED)


def adopted_intent(maps: list[FieldMap], link: Link | None, taken: HubSpotObject, *, create_new: bool) -> str | None:
    """The contact a create's 409 names (it holds the customer's email): when it holds exactly what the intent of
    an earlier attempt recorded (`link` as read, before this attempt's), that attempt made it: the intent is kept,
    so its values read as our write, not as HubSpot-side edits winning over the user's newer QBO edits. Otherwise
    someone else's contact: linked (None: the intent stays this attempt's), unless an operator asked for a new
    contact (failing: HubSpot emails are unique)."""
    earlier = link.hubspot_hash if link is not None else None
    if earlier is not None and earlier == _fields.content_hash(_fields.from_hubspot(maps, taken.properties)):
        return earlier
    if create_new:
        raise Failing(
            f"HubSpot contact {taken.id} already has this customer's email (HubSpot emails are unique):"
            " pick it or exclude the customer",
            category="duplicate_email",
        )
    return None


# --- the filters and the matching, for the rule and for the initial sync's plan -------------------------------------


async def screen_contact(ctx: SyncContext, contact: HubSpotObject) -> None:
    """The filters a contact with no linked customer passes before it is matched; raises `Excluded`."""
    settings = ctx.connection.contacts
    await filters.check_hubspot(ctx, settings.hubspot_to_qbo, contact)
    if settings.hubspot_to_qbo.require_hubspot_invoice:
        await _require_hubspot_invoice(ctx, contact.id)


async def match_contact(
    ctx: SyncContext, contact: HubSpotObject, link: Link | None
) -> tuple[match.Match, dict[str, QboEntity]]:
    """What matching by email makes of a contact with no linked customer, and the customers it found (by id)."""
    email = lower_text(contact.properties.get("email"))
    customers = await _customers_by_email(ctx, email) if email else []
    qbo = Provider.QUICKBOOKS
    candidates = [await match.found(ctx, Kind.CONTACT, str(c["Id"]), _label(c), on=qbo) for c in customers]
    chosen = match.decide(
        contact.id, email or "", candidates, other_side="QuickBooks customers",
        under_review=match.awaiting_review(link),
    )  # fmt: skip
    return chosen, {str(c["Id"]): c for c in customers}


async def screen_customer(ctx: SyncContext, customer: QboEntity) -> None:
    """The filters an active customer with no linked contact passes before it is matched; raises `Excluded`."""
    await filters.check_qbo(ctx, ctx.connection.contacts.qbo_to_hubspot, customer)


async def match_customer(
    ctx: SyncContext, customer: QboEntity, link: Link | None
) -> tuple[match.Match, HubSpotObject | None]:
    """What matching by email makes of a customer with no linked contact, and the contact with its email, if any."""
    properties = hubspot_properties(_fields.active_maps(SPEC.fields, ctx.connection.contacts))
    email = lower_text(_fields.get_path(customer, "PrimaryEmailAddr.Address"))
    contact = await _contact_by_email(ctx, customer, properties)
    found = (
        []
        if contact is None
        else [await match.found(ctx, Kind.CONTACT, contact.id, _contact_label(contact), on=Provider.HUBSPOT)]
    )
    sharing = await _sharing_email(ctx, email, contact) if email else []
    chosen = match.decide(
        str(customer["Id"]), email or "", found, sharing=sharing, other_side="HubSpot contacts",
        under_review=match.awaiting_review(link),
    )  # fmt: skip
    return chosen, contact


# --- shared by both directions ---------------------------------------------------------------------------------------


async def _link(
    ctx: SyncContext,
    settings: ContactSettings,
    link: Link | None,
    origin: Provider,
    contact: HubSpotObject,
    customer: QboEntity,
    *,
    hubspot_hash: str | None = None,
) -> Outcome:
    """A record with no link (on `origin`; `link`: its link as read) joined to the record it matched on the other
    side (`claim`), then the fields synced (`hubspot_hash`: an intent to keep, see `adopted_intent`). A live contact
    matching an inactive customer reactivates it (the live side wins)."""
    claimed = await claim(ctx, Kind.CONTACT, link, origin, contact.id, str(customer["Id"]), category="duplicate_email")
    pair = match.cleared(claimed.link)
    if hubspot_hash is not None:
        pair = dataclasses.replace(pair, hubspot_hash=hubspot_hash)
    restore = {"Active": True} if not customer.get("Active", True) else None
    return await _sync(
        ctx, settings, pair, contact, customer, action=Action.LINKED, qbo_extra=restore, first=claimed.steps
    )


async def _contact_by_email(ctx: SyncContext, customer: QboEntity, properties: list[str]) -> HubSpotObject | None:
    """The contact with the customer's email (HubSpot emails are unique), if any."""
    email = lower_text(_fields.get_path(customer, "PrimaryEmailAddr.Address"))
    if email:
        with contextlib.suppress(NotFound):
            return await ctx.hubspot.get("contacts", email, properties=properties, id_property="email")
    return None


async def _merged_away(ctx: SyncContext, contact_id: str, survivor_id: str) -> Outcome:
    """HubSpot answers a merged-away contact's id with the contact it was merged into: the merge's webhook was lost
    or comes later. Its link goes to the survivor (or retires), as the merge event's would; syncing the survivor here
    would write its values onto the merged-away contact's customer. The survivor syncs on its own change (its webhook
    or the poller), under its own lease."""
    await repoint_merged(ctx, Kind.CONTACT, Provider.HUBSPOT, survivor_id, {"merged_ids": {contact_id: True}})
    return Outcome(Action.MERGED, detail=f"HubSpot contact {contact_id} was merged into {survivor_id}")


async def _sync(
    ctx: SyncContext,
    settings: ContactSettings,
    link: Link,
    contact: HubSpotObject,
    customer: QboEntity,
    *,
    action: Action,
    qbo_extra: dict[str, Any] | None = None,
    first: Sequence[Step] = (),
    hubspot_read: bool = True,
) -> Outcome:
    """`sync_fields` (after the steps `first`), comparing the customer as `_customer_view` presents it."""
    view = _customer_view(customer)
    return await sync_fields(
        ctx, SPEC, settings, link, contact, view, action=action, qbo_extra=qbo_extra, first=first,
        hubspot_read=hubspot_read,
    )  # fmt: skip


def _unblank(body: dict[str, Any]) -> dict[str, Any]:
    """A create's body without its empty values, nested ones included: QBO refuses an empty email address (a
    contact with no email is made with none)."""
    kept = {key: _unblank(value) if isinstance(value, dict) else value for key, value in body.items()}
    return {key: value for key, value in kept.items() if value not in ("", {})}


def _customer_view(customer: QboEntity) -> QboEntity:
    """A company-only customer (no GivenName, FamilyName or email) as the contact compares it: its DisplayName as
    the family name, its CompanyName (else DisplayName) as the company; HubSpot needs a name or an email on a
    contact. Other customers as they are."""
    email = _fields.get_path(customer, "PrimaryEmailAddr.Address")
    names = (customer.get("GivenName"), customer.get("FamilyName"), email)
    display = _fields.text(customer.get("DisplayName"))
    if any(_fields.text(value) for value in names) or display is None:
        return customer
    return {**customer, "FamilyName": display, "CompanyName": _fields.text(customer.get("CompanyName")) or display}


async def _customers_by_email(ctx: SyncContext, email: str) -> list[QboEntity]:
    """Every customer with this email, inactive ones too (the lookups of concurrent applies in one query)."""
    return await ctx.qbo.find("Customer", "PrimaryEmailAddr", email)


async def _sharing_email(ctx: SyncContext, email: str, contact: HubSpotObject | None) -> list[str]:
    """The customers with this email that could be the contact's (linked to no other contact)."""
    sharing = []
    for customer in await _customers_by_email(ctx, email):
        linked_to = await match.linked_to(ctx, Kind.CONTACT, qbo_id=str(customer["Id"]))
        if linked_to is None or (contact is not None and linked_to == contact.id):
            sharing.append(str(customer["Id"]))
    return sharing


def _label(customer: QboEntity) -> str:
    email = _fields.get_path(customer, "PrimaryEmailAddr.Address")
    label = f"{customer.get('DisplayName')} <{email}>" if email else str(customer.get("DisplayName"))
    return label[:120] + ("" if customer.get("Active", True) else ", inactive")


def _contact_label(contact: HubSpotObject) -> str:
    properties = contact.properties
    name = " ".join(filter(None, (_fields.text(properties.get("firstname")), _fields.text(properties.get("lastname")))))
    email = _fields.text(properties.get("email"))
    return (f"{name} <{email}>" if name and email else name or email or f"contact {contact.id}")[:120]


async def _customer_by_display_name(ctx: SyncContext, name: str) -> QboEntity | None:
    where = f"{match.ACTIVE_OR_NOT} AND DisplayName = {qbo_quote(name)}"
    found = await ctx.qbo.query(f"SELECT * FROM Customer WHERE {where}")
    return found[0] if found else None


async def _display_name(ctx: SyncContext, settings: ContactSettings, contact: HubSpotObject) -> str:
    if settings.display_name_from_company:
        associations = await ctx.hubspot.list_associations("contacts", contact.id, "companies")
        primary = next(
            (a for a in associations if any(t.type_id == PRIMARY_COMPANY for t in a.types)),
            associations[0] if associations else None,
        )
        if primary is not None:
            company = await ctx.hubspot.get("companies", primary.to_id, properties=["name"])
            if name := _fields.text(company.properties.get("name")):
                return name
    properties: dict[str, Any] = contact.properties
    person = " ".join(
        filter(None, (_fields.text(properties.get("firstname")), _fields.text(properties.get("lastname"))))
    )
    return person or _fields.text(properties.get("email")) or f"HubSpot contact {contact.id}"


async def _require_hubspot_invoice(ctx: SyncContext, contact_id: str) -> None:
    """The incumbent's default filter: only contacts with a non-draft invoice made in HubSpot (not synced from QBO)."""
    invoices = await ctx.hubspot.list_associations("contacts", contact_id, "invoices")
    if invoices:
        batch = await ctx.hubspot.batch_read(
            "invoices", [a.to_id for a in invoices], properties=["hs_invoice_status", "hs_invoice_billable"]
        )
        for invoice in batch.results:
            made_in_hubspot = invoice.properties.get("hs_invoice_billable") != "false"
            if made_in_hubspot and invoice.properties.get("hs_invoice_status") in NON_DRAFT:
                return
    raise Excluded("no non-draft invoice from HubSpot (filter require_hubspot_invoice)")

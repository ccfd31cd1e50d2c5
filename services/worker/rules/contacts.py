"""HubSpot contact ↔ QBO Customer.

Matching: the id map first, then email. A customer created from HubSpot is named (DisplayName) after the contact's
primary company, else first + last name. QBO requires DisplayName to be unique; when the second contact of a company
collides with the first, the `display_name_strategy` decides:

    fail          the incumbent's behaviour: the contact is failing (category duplicate_display_name)
    link          the existing customer has the same email: link to it; otherwise fail
    disambiguate  (default) a deterministic suffix: "Acme (Jane Doe)", then "Acme (jane@acme.com)", then
                  "Acme (HubSpot 512)", so every contact becomes a customer and no data is lost
"""

from __future__ import annotations

import dataclasses
from typing import Any

from services.worker import _fields
from services.worker._fields import FieldMap, lower_text
from services.worker.rules import Excluded, Failing, Hints, Outcome
from services.worker.rules import _filters as filters
from services.worker.rules._pair import (
    PairSpec,
    archive_in_hubspot,
    claim,
    deactivate_in_qbo,
    hubspot_properties,
    intend_qbo_create,
    repoint_merged,
    sync_fields,
)
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.connections import SyncContext
from shared.envelope import Provider
from shared.errors import Conflict, DuplicateName, NotFound
from shared.store import Kind, Link
from shared.syncconfig import ConnectionSettings, ContactSettings

SPEC = PairSpec(
    hubspot_type="contacts",
    qbo_entity="Customer",
    fields=(
        FieldMap("email", "email", "PrimaryEmailAddr.Address", lower_text),
        FieldMap("first_name", "firstname", "GivenName"),
        FieldMap("last_name", "lastname", "FamilyName"),
        FieldMap("phone", "phone", "PrimaryPhone.FreeFormNumber"),
        FieldMap("company", "company", "CompanyName"),
        FieldMap("address", "address", "BillAddr.Line1"),
        FieldMap("city", "city", "BillAddr.City"),
        FieldMap("state", "state", "BillAddr.CountrySubDivisionCode"),
        FieldMap("zip", "zip", "BillAddr.PostalCode"),
        FieldMap("country", "country", "BillAddr.Country"),
    ),
)
PRIMARY_COMPANY = 1  # contact -> company association type id of the primary company
DISPLAY_NAME_MAX = 100
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
            return await deactivate_in_qbo(ctx, SPEC, Kind.CONTACT, settings, contact_id)
        if link is not None and link.qbo_id is not None:
            customer = await ctx.qbo.read("Customer", link.qbo_id)
            restore = {"Active": True} if not customer.get("Active", True) else None
            action = "restored" if restore else "merged" if merged else "updated"
            return await sync_fields(ctx, SPEC, settings, link, contact, customer, action=action, qbo_extra=restore)

        await filters.check_hubspot(ctx, settings.hubspot_to_qbo, contact)
        if settings.hubspot_to_qbo.require_hubspot_invoice:
            await _require_hubspot_invoice(ctx, contact_id)
        email = lower_text(contact.properties.get("email"))
        match = await _customer_by_email(ctx, email) if email else None
        if match is not None:
            link = await claim(
                ctx, Kind.CONTACT, link, Provider.HUBSPOT, contact_id, str(match["Id"]), category="duplicate_email"
            )
            return await sync_fields(ctx, SPEC, settings, link, contact, match, action="linked")
        link, created = await self._create_customer(ctx, settings, contact, maps, link)
        link = await claim(
            ctx, Kind.CONTACT, link, Provider.HUBSPOT, contact_id, str(created["Id"]), category="duplicate_email"
        )
        link = dataclasses.replace(link, qbo_written_sync_token=str(created["SyncToken"]))  # its webhook is our echo
        return await sync_fields(ctx, SPEC, settings, link, contact, created, action="created")

    async def _create_customer(
        self,
        ctx: SyncContext,
        settings: ContactSettings,
        contact: HubSpotObject,
        maps: list[FieldMap],
        link: Link | None,
    ) -> tuple[Link, QboEntity]:
        """The customer made (or, under the `link` strategy, found), and the link holding its intent."""
        values = _fields.from_hubspot(maps, contact.properties)
        body = {key: value for key, value in _fields.to_qbo(maps, values).items() if value not in ("", {})}
        base = await _display_name(ctx, settings, contact)
        candidates = [base]
        if settings.display_name_strategy == "disambiguate":
            person = " ".join(filter(None, (values.get("first_name"), values.get("last_name"))))
            candidates += [f"{base} ({extra})" for extra in (person, values.get("email")) if extra and extra != base]
            candidates.append(f"{base} (HubSpot {contact.id})")
        intent = await intend_qbo_create(ctx, Kind.CONTACT, link, contact.id, _fields.from_qbo(maps, body))
        for name in candidates:
            name = name[:DISPLAY_NAME_MAX]
            request_id = ctx.request_id("Customer", "create", contact.id, name, link=intent)
            try:
                return intent, await ctx.qbo.create("Customer", {**body, "DisplayName": name}, request_id=request_id)
            except DuplicateName:
                if settings.display_name_strategy == "link":
                    existing = await _customer_by_display_name(ctx, name)
                    email = values.get("email")
                    if (
                        existing is not None
                        and email
                        and lower_text(_fields.get_path(existing, "PrimaryEmailAddr.Address")) == email
                    ):
                        return intent, existing
        raise Failing(
            f"QuickBooks already has a customer named {base!r} (DisplayName must be unique)",
            category="duplicate_display_name",
        )

    # --- QBO -> HubSpot ----------------------------------------------------------------------------------------------

    async def from_qbo(self, ctx: SyncContext, customer_id: str, hints: Hints) -> Outcome:
        settings = ctx.connection.contacts
        maps = _fields.active_maps(SPEC.fields, settings)
        merged = await repoint_merged(ctx, Kind.CONTACT, Provider.QUICKBOOKS, customer_id, hints)
        # The link first, then the records (see rules/__init__.py).
        link = await ctx.store.get_link(ctx.name, Kind.CONTACT, qbo_id=customer_id)
        customer = await ctx.qbo.read("Customer", customer_id)
        if link is not None and link.qbo_written_sync_token == str(customer.get("SyncToken")) and not merged:
            return Outcome("echo", link=link, detail="our own write")
        if not customer.get("Active", True):
            return await archive_in_hubspot(ctx, SPEC, settings, link)
        properties = hubspot_properties(maps)
        if link is not None and link.hubspot_id is not None:
            try:
                linked = await ctx.hubspot.get("contacts", link.hubspot_id, properties=properties)
            except NotFound:
                return Outcome("skipped", link=link, detail="the linked HubSpot contact was deleted")
            action = "merged" if merged else "updated"
            return await sync_fields(ctx, SPEC, settings, link, linked, customer, action=action)

        await filters.check_qbo(ctx, settings.qbo_to_hubspot, customer)
        email = lower_text(_fields.get_path(customer, "PrimaryEmailAddr.Address"))
        contact: HubSpotObject | None = None
        if email:
            try:
                contact = await ctx.hubspot.get("contacts", email, properties=properties, id_property="email")
            except NotFound:
                contact = None
        action = "linked"
        if contact is None:
            values = _fields.from_qbo(maps, customer)
            # What the new contact will hold, recorded first (see sync_fields): a retry after a crash that lost the
            # link finds the contact by email and takes its values as our write, not as HubSpot-side edits.
            intent = link or Link(
                connection=ctx.name, kind=Kind.CONTACT, origin=Provider.QUICKBOOKS, qbo_id=customer_id
            )
            link = await ctx.store.save_link(dataclasses.replace(intent, hubspot_hash=_fields.content_hash(values)))
            try:
                contact = await ctx.hubspot.create("contacts", _fields.to_hubspot(maps, values))
                action = "created"
            except Conflict as exc:  # created meanwhile (or by a crashed attempt of ours): link to it
                if exc.existing_id is None:
                    raise
                contact = await ctx.hubspot.get("contacts", exc.existing_id, properties=properties)
                earlier = intent.hubspot_hash
                holds = _fields.content_hash(_fields.from_hubspot(maps, contact.properties))
                if earlier is not None and earlier == holds:
                    # It holds what a crashed attempt meant to write (its intent, replaced just above): our write,
                    # not HubSpot-side edits that would win a conflict against the user's newer QBO edits.
                    link = await ctx.store.save_link(dataclasses.replace(link, hubspot_hash=earlier))
        link = await claim(
            ctx, Kind.CONTACT, link, Provider.QUICKBOOKS, contact.id, customer_id, category="duplicate_email"
        )
        return await sync_fields(ctx, SPEC, settings, link, contact, customer, action=action)


# --- shared by both directions ---------------------------------------------------------------------------------------


async def _customer_by_email(ctx: SyncContext, email: str) -> QboEntity | None:
    found = await ctx.qbo.query(f"SELECT * FROM Customer WHERE PrimaryEmailAddr = {qbo_quote(email)}")
    return found[0] if found else None


async def _customer_by_display_name(ctx: SyncContext, name: str) -> QboEntity | None:
    found = await ctx.qbo.query(f"SELECT * FROM Customer WHERE DisplayName = {qbo_quote(name)}")
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

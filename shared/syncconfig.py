"""Sync rules: the TOML file named by HSQBO_CONFIG. One `[[connection]]` per HubSpot portal ↔ QBO realm, each with a
table per object (`contacts`, `products`, `invoices`, `payments`). Every key has a default; the defaults are the
recommended filters of HubSpot's own integration:

    [[connection]]
    name = "acme"
    hubspot_portal_id = "62515"
    qbo_realm_id = "9130357992"
    setup_date = 2026-11-22          # "created after the setup date": from 00:00 of this day in each account's zone
    # hubspot_currency = "USD"       # optional: read from HubSpot; if set, it must be the portal's company currency
    # qbo_timezone = "America/Los_Angeles"   # the QBO company's zone (else QBO's report, else its clock offset)
    # qbo_monthly_read_budget = 500000     # QBO reads (CorePlus calls) per month; alert at 80 %, degraded near it

    [connection.contacts]            # contact <-> customer
    direction = "two_way"            # two_way | hubspot_to_qbo | qbo_to_hubspot | off
    conflict_winner = "hubspot"      # per field, when both sides changed it since the last sync
    display_name_strategy = "disambiguate"   # fail | link | disambiguate
    mappings = { phone = false }     # switch a default mapping off
    custom_mappings = [{ name = "notes", hubspot_property = "notes", qbo_field = "Notes" }]
"""

from __future__ import annotations

import datetime as dt
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import ConfigError

SyncDirection = Literal["two_way", "hubspot_to_qbo", "qbo_to_hubspot", "off"]
Winner = Literal["hubspot", "quickbooks"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMapping(_Strict):
    """A custom mapping: a HubSpot property and a QBO field (dotted path, e.g. `BillAddr.Line2`), both strings."""

    name: str
    hubspot_property: str
    qbo_field: str


class Filters(_Strict):
    """Which source records sync. A record left out is marked excluded with the reason."""

    created_after: dt.date | Literal["setup_date"] | None = None
    hubspot_properties: dict[str, str] = {}  # HubSpot source records: property must equal value
    qbo_fields: dict[str, str] = {}  # QBO source records: dotted field must equal value
    require_hubspot_invoice: bool = False  # contacts: only with a non-draft HubSpot invoice (the incumbent's rule)


class ObjectSettings(_Strict):
    direction: SyncDirection
    conflict_winner: Winner = "hubspot"
    mappings: dict[str, bool] = {}  # default mapping name -> on/off
    custom_mappings: list[FieldMapping] = []
    hubspot_to_qbo: Filters = Filters()
    qbo_to_hubspot: Filters = Filters()
    on_delete: Literal["propagate", "ignore"] = "propagate"  # propagate = inactivate / archive / void, never purge

    def syncs_from(self, side: str) -> bool:
        """Whether changes made on `side` ("hubspot" or "quickbooks") flow to the other side."""
        wanted = "hubspot_to_qbo" if side == "hubspot" else "qbo_to_hubspot"
        return self.direction in ("two_way", wanted)


class ContactSettings(ObjectSettings):
    direction: SyncDirection = "two_way"
    hubspot_to_qbo: Filters = Filters(created_after="setup_date", require_hubspot_invoice=True)
    display_name_from_company: bool = True  # the primary company's name, else first + last name
    # fail: the incumbent's behaviour; link: same email -> that customer; disambiguate: a deterministic suffix, so
    # every contact becomes a customer and nothing is lost (the default).
    display_name_strategy: Literal["fail", "link", "disambiguate"] = "disambiguate"


class ProductSettings(ObjectSettings):
    direction: SyncDirection = "qbo_to_hubspot"
    require_sku: bool = True  # the incumbent's duplicate guard: only items with a SKU sync
    income_account: str | None = None  # id or name of the income account for items created in QBO


class InvoiceSettings(ObjectSettings):
    direction: SyncDirection = "qbo_to_hubspot"
    qbo_to_hubspot: Filters = Filters(created_after="setup_date")
    hubspot_to_qbo: Filters = Filters(created_after="setup_date")
    custom_line_item_name: str = "Custom line item"
    income_account: str | None = None  # id or name of the custom line item's income account (None: the first one)
    tax_code: str | None = None  # QBO TaxCode id or name put on every line synced from HubSpot (non-US companies)
    # QBO invoice custom string field, by its DefinitionId ("1" to "3": the order of the company's custom sales
    # fields; only those three are visible through the API) -> the HubSpot invoice property it is filled from
    custom_fields: Annotated[dict[Literal["1", "2", "3"], str], Field(max_length=3)] = {}


class PaymentSettings(ObjectSettings):
    direction: SyncDirection = "qbo_to_hubspot"
    allocate_multi_invoice: bool = False  # a QBO payment applied to several invoices is excluded unless on


class ConnectionSettings(_Strict):
    name: str
    hubspot_portal_id: str
    qbo_realm_id: str
    setup_date: dt.date
    # The portal's company currency is read from HubSpot; set this only to assert it (a different one is a config
    # error on every record, never a silent default).
    hubspot_currency: str | None = None
    # The QBO company's IANA time zone (e.g. "America/Los_Angeles"): QBO's API documents no zone (CompanyInfo's
    # DefaultTimeZone is in Intuit's XSD only), so it is needed unless the company reports one.
    qbo_timezone: str | None = None
    # QBO reads (Intuit's metered CorePlus calls) this company may spend per calendar month (UTC): the Builder tier's
    # 500,000 by default. An alert fires at 80 %; near it reads are batched and the poller polls QBO seldom.
    qbo_monthly_read_budget: Annotated[int, Field(gt=0)] = 500_000
    contacts: ContactSettings = ContactSettings()
    products: ProductSettings = ProductSettings()
    invoices: InvoiceSettings = InvoiceSettings()
    payments: PaymentSettings = PaymentSettings()

    def objects(self, kind: str) -> ObjectSettings:
        """The settings of one synced object pair, by its kind ("contact", "product", "invoice", "payment")."""
        by_kind: dict[str, ObjectSettings] = {
            "contact": self.contacts, "product": self.products, "invoice": self.invoices, "payment": self.payments
        }  # fmt: skip
        return by_kind[kind]

    @field_validator("hubspot_currency")
    @classmethod
    def _currency_code(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 3 or not value.isalpha()):
            raise ValueError("must be an ISO 4217 code such as USD")
        return value.upper() if value is not None else None

    @field_validator("qbo_timezone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone such as America/Los_Angeles") from None
        return value

    def created_after(self, filters: Filters) -> dt.date | None:
        """The day a source record must be created on or after, if the filter has one: a day, counted from its
        00:00 in the zone of the account the record lives in (`rules/_filters.py`)."""
        if filters.created_after == "setup_date":
            return self.setup_date
        return filters.created_after


class SyncSettings(_Strict):
    connection: list[ConnectionSettings] = []

    @model_validator(mode="after")
    def _unique_names(self) -> SyncSettings:
        names = [c.name for c in self.connection]
        if len(names) != len(set(names)):
            raise ValueError("connection names must be unique")
        return self

    def for_account(self, provider: str, account_id: str) -> list[ConnectionSettings]:
        """The connections a webhook from this HubSpot portal / QBO realm concerns."""
        field = "hubspot_portal_id" if provider == "hubspot" else "qbo_realm_id"
        return [c for c in self.connection if getattr(c, field) == account_id]

    def named(self, name: str) -> ConnectionSettings | None:
        return next((c for c in self.connection if c.name == name), None)


def load_sync_settings(path: Path | None) -> SyncSettings:
    """Read and validate the TOML file; a problem stops the process with one line naming the key."""
    if path is None:
        return SyncSettings()
    try:
        document = tomllib.loads(path.read_text())
        return SyncSettings.model_validate(document)
    except OSError as exc:
        raise ConfigError(f"HSQBO_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"HSQBO_CONFIG: {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"HSQBO_CONFIG: {path}: {where}: {first['msg']}") from None

"""What each error category means to the person who has to fix it: what happened, why, and what to change where.

One table for the record page, the records CSV and the dead letters. A category is one of: the name of an error of
`shared/errors.py` (`shared.deadletters.error_category`: `DuplicateName` → `duplicate_name`), a rule's `Failing` or
`Excluded` category (`services/worker/rules/`), the engine's `config`, or the reason RabbitMQ dead-lettered a
message (`x-death`: rejected, delivery_limit, expired, maxlen) and `unparseable`. Tests check every one has an entry."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    what: str  # what happened
    why: str  # why it happens
    fix: str  # what to change, where

    def line(self) -> str:
        """The three as one line (CSV)."""
        return f"{self.what} Why: {self.why} Fix: {self.fix}"


E = Explanation
_RESYNC = "then press Sync now on the record (or `hsqbo dlq replay`)."
_RETRY = "hsqbo retries it with backoff by itself; once it gave up (a dead letter), replay it when this is over."
_RECONNECT = "Reconnect the account (Connect on the status page, or `hsqbo connect`): the connection resumes at once."

EXPLANATIONS: dict[str, Explanation] = {
    # --- errors (shared/errors.py) ------------------------------------------------------------------------------------
    "hsqbo_error": E(
        "hsqbo gave up on this change.",
        "An error hsqbo raises on purpose; the message says which.",
        "Read the message, fix its cause, " + _RESYNC,
    ),
    "config_error": E(
        "A setting is missing or invalid.",
        "hsqbo checks its settings when a process starts.",
        "Fix the setting the message names (environment, hsqbo.env or the sync rules TOML); run `hsqbo config check`.",
    ),
    "webhook_error": E(
        "An incoming webhook was refused.",
        "Its body or headers are not what the provider sends.",
        "Check the app's webhook settings in HubSpot's or Intuit's developer portal.",
    ),
    "signature_error": E(
        "A webhook's signature did not verify.",
        "The app secret or verifier token differs, the clock is off, or the request is forged.",
        "Set HSQBO_HUBSPOT_CLIENT_SECRET / HSQBO_INTUIT_VERIFIER_TOKEN to the developer portal's "
        "values; check HSQBO_PUBLIC_URL behind a proxy.",
    ),
    "payload_error": E(
        "A webhook body was not the documented JSON.",
        "A malformed or foreign request.",
        "Nothing, unless it repeats: then check which app sends to this URL.",
    ),
    "payload_too_large": E(
        "A webhook body was too large.",
        "It is over HSQBO_MAX_BODY_BYTES.",
        "Raise HSQBO_MAX_BODY_BYTES if the provider really sends batches that big.",
    ),
    "unsupported_media_type": E(
        "A webhook came with a content type the provider never sends.",
        "A foreign or misconfigured sender.",
        "Check which app sends to this URL.",
    ),
    "bus_error": E(
        "RabbitMQ did not take a message durably.",
        "The broker is down, full or slow to confirm.",
        "Check RabbitMQ (`deploy/rabbitmq/node status`, its disk and memory alarms). " + _RETRY,
    ),
    "broker_unavailable": E(
        "hsqbo could not reach RabbitMQ.",
        "The broker is down or HSQBO_RABBITMQ_URL is wrong.",
        "Start the broker or fix HSQBO_RABBITMQ_URL. " + _RETRY,
    ),
    "publish_not_confirmed": E(
        "RabbitMQ did not confirm a message in time.",
        "The broker is overloaded or under a resource alarm.",
        "Check RabbitMQ's disk and memory alarms. " + _RETRY,
    ),
    "api_error": E(
        "A HubSpot or QuickBooks call failed.",
        "The provider refused it; the message says why.",
        "Fix what the message names in that product, " + _RESYNC,
    ),
    "unauthorized": E(
        "The provider refused hsqbo's token (401) even after a refresh.",
        "The token was revoked, or the app's credentials changed.",
        _RECONNECT,
    ),
    "auth_revoked": E(
        "The account's authorization was withdrawn.",
        "Someone disconnected the app, or the refresh token expired (QuickBooks: 100 days unused).",
        _RECONNECT,
    ),
    "forbidden": E(
        "The provider forbade the call (403).",
        "The app is not authorized for this account, or the QuickBooks subscription ended.",
        "Check the app's installation and the QuickBooks subscription; " + _RECONNECT,
    ),
    "missing_scopes": E(
        "HubSpot refused a call its token has no scope for.",
        "The app was installed before hsqbo needed that scope, or a scope was removed.",
        "Reconnect HubSpot to grant the scopes the message names: the connection resumes.",
    ),
    "not_found": E(
        "A record hsqbo reads or refers to does not exist.",
        "It was deleted or merged, or a record it refers to (customer, item) is inactive.",
        "Restore or reactivate the record the message names in its product, " + _RESYNC,
    ),
    "conflict": E(
        "The provider refused a value another record already holds (409).",
        "A unique property (email, SKU, hsqbo's id property) is taken by another record.",
        "Merge or correct the other record the message names, " + _RESYNC,
    ),
    "validation_failed": E(
        "The provider refused the record's data.",
        "A value breaks one of the product's rules (length, format, a required field).",
        "Correct the field the message names on the record's own side, " + _RESYNC,
    ),
    "stale_object": E(
        "QuickBooks refused a write made on an older version (SyncToken).",
        "Someone edited the record at the same moment.",
        _RETRY,
    ),
    "duplicate_name": E(
        "QuickBooks already has a name-list record with that name.",
        "Customers, vendors and employees share one list of unique display names; items too.",
        "Rename one of them in QuickBooks (or HubSpot), or set display_name_strategy, " + _RESYNC,
    ),
    "duplicate_doc_number": E(
        "QuickBooks already has a transaction with that number.",
        "The company's preference forbids duplicate document numbers.",
        "Renumber the invoice on one side, " + _RESYNC,
    ),
    "rate_limited": E(
        "The provider asked hsqbo to slow down (429).",
        "Too many calls per minute for the account, often during an import.",
        _RETRY,
    ),
    "server_error": E(
        "The provider failed to answer (5xx or timeout).", "An outage or a slow moment on its side.", _RETRY
    ),
    "transport_error": E(
        "The call did not complete (timeout or connection failure).",
        "The network or the provider; the write may or may not have happened.",
        "Nothing: the retry re-reads first, so nothing is written twice. " + _RETRY,
    ),
    # --- rules (services/worker/rules/) -------------------------------------------------------------------------------
    "config": E(
        "The connection's settings do not fit the account.",
        "A currency, time zone or account setting hsqbo needs is missing or contradicts the sync rules.",
        "Fix the setting the message names (sync rules TOML or the product's company settings), "
        "run `hsqbo config check`, " + _RESYNC,
    ),
    "configuration": E(
        "A property hsqbo relies on is set up wrongly.",
        "The HubSpot property the message names exists but is not unique.",
        "Make it unique in HubSpot's property settings (or delete it: hsqbo creates it), " + _RESYNC,
    ),
    "filtered": E(
        "A filter of the sync rules leaves this record out.",
        "It does not meet created_after, hubspot_properties, qbo_fields or require_hubspot_invoice.",
        "Nothing, if that is intended; else change the filter in the sync rules TOML, " + _RESYNC,
    ),
    "operator": E(
        "An operator excluded this record.",
        "`hsqbo review resolve --exclude` chose so.",
        "Nothing; to sync it after all, resolve it again with `hsqbo review`.",
    ),
    "needs_review": E(
        "It matches several records on the other side; hsqbo never guesses.",
        "Two or more records share its email, SKU or number.",
        "Pick the right one, create new or exclude: `hsqbo review resolve`.",
    ),
    "merged": E(
        "The record was merged into another.",
        "Someone merged two records in HubSpot or QuickBooks.",
        "Nothing: the surviving record carries the link.",
    ),
    "duplicate_email": E(
        "Another record already holds this one's match.",
        "The record on the other side with its email is linked to a different record.",
        "Merge the duplicates in HubSpot (or correct the email), " + _RESYNC,
    ),
    "duplicate_display_name": E(
        "QuickBooks already has a customer with this display name.",
        "Display names are unique across customers, vendors and employees; the display_name_strategy is `fail`.",
        "Rename one of them in QuickBooks, or choose another display_name_strategy, " + _RESYNC,
    ),
    "duplicate_sku": E(
        "Another product already holds this SKU's match.",
        "The item with its SKU is linked to a different product.",
        "Give each product its own SKU in HubSpot (or QuickBooks), " + _RESYNC,
    ),
    "ambiguous_sku": E(
        "Several items or products share this SKU.",
        "A SKU must name one record to match on.",
        "Make the SKU unique on both sides, " + _RESYNC,
    ),
    "no_sku": E(
        "The product has no SKU.",
        "require_sku: hsqbo matches products and items by SKU only.",
        "Give it a SKU (HubSpot hs_sku, QuickBooks Sku), or turn require_sku off.",
    ),
    "item_type": E(
        "This QuickBooks item type does not sync.",
        "Only Inventory, NonInventory and Service items map to HubSpot products.",
        "Nothing, if that is intended (bundles and categories stay in QuickBooks).",
    ),
    "inactive": E(
        "The QuickBooks record is inactive.",
        "Someone made it inactive (QuickBooks' delete).",
        "Make it active in QuickBooks if it should sync.",
    ),
    "income_account": E(
        "QuickBooks has no active income account for the item.",
        "The income_account of the sync rules is missing, inactive or misspelt.",
        "Set products.income_account to an active income account's name, " + _RESYNC,
    ),
    "account": E(
        "QuickBooks has no income account for the custom line item.",
        "The income_account setting names no active account.",
        "Set invoices.income_account to an active income account, " + _RESYNC,
    ),
    "tax_code": E(
        "QuickBooks has no tax code by that name.",
        "The tax_code of the sync rules is not in the company.",
        "Set invoices.tax_code to a code QuickBooks lists (Taxes > Tax codes), " + _RESYNC,
    ),
    "custom_line_item": E(
        "The invoice's custom line item cannot be made.",
        "The item for lines without a product is missing or not usable.",
        "Check custom_line_item_name and income_account in the sync rules, " + _RESYNC,
    ),
    "customer_not_synced": E(
        "The invoice's customer is not synced yet.",
        "An invoice needs its contact/customer on the other side first (or has no contact).",
        "Sync the customer it waits for (linked below; `hsqbo review` if its match is "
        "ambiguous): the invoice follows by itself.",
    ),
    "invoice_not_synced": E(
        "The payment's invoice is not synced yet.",
        "A payment is applied to an invoice that has to exist on the other side first.",
        "Sync the invoice it waits for (linked below): the payment follows by itself.",
    ),
    "no_line_items": E(
        "The HubSpot invoice has no line items.",
        "QuickBooks needs at least one line.",
        "Add a line item to the invoice in HubSpot.",
    ),
    "not_representable": E(
        "The invoice cannot be written the same on the other side.",
        "A line, discount, fee or tax the other product cannot hold at the same amount.",
        "Change the line the message names (e.g. a negative line, too many decimals), " + _RESYNC,
    ),
    "total_mismatch": E(
        "The totals would differ between the two products.",
        "Tax or rounding computed on one side does not give the other side's total to the cent.",
        "Check the tax settings (invoices.tax_code) and the lines the message names, " + _RESYNC,
    ),
    "other_currency": E(
        "The record is in a currency the other side lacks.",
        "HubSpot's portal or QuickBooks' company does not have that currency.",
        "Add the currency (HubSpot: Account defaults > Currencies; QuickBooks: multicurrency), " + _RESYNC,
    ),
    "draft": E(
        "Draft invoices do not sync.",
        "Only an invoice that was sent or finalized is a transaction.",
        "Nothing: it syncs once it leaves draft.",
    ),
    "voided": E(
        "The invoice was voided before it synced.", "A void before the first sync has nothing to carry.", "Nothing."
    ),
    "unapplied": E(
        "The payment is not applied to an invoice.",
        "An unapplied payment is a credit; HubSpot payments belong to invoices.",
        "Apply it to an invoice in QuickBooks if it should sync.",
    ),
    "payment_not_completed": E(
        "The HubSpot payment did not complete.", "It failed, was refunded or canceled.", "Nothing."
    ),
    "payment_processing": E(
        "The HubSpot payment is still processing (ACH).",
        "Bank transfers take days to settle.",
        "Nothing: it syncs once it completes.",
    ),
    "no_invoice": E(
        "The HubSpot payment is associated with no invoice.",
        "hsqbo applies a payment to the QuickBooks invoice of its HubSpot invoice.",
        "Associate the payment with its invoice in HubSpot.",
    ),
    "multi_invoice": E(
        "The payment is associated with several invoices.",
        "HubSpot does not say how much of it went to each.",
        "Record it in QuickBooks, applied to each invoice, instead.",
    ),
    # --- the broker's own dead-lettering (x-death reasons) -----------------------------------------------------------
    "rejected": E(
        "A consumer rejected the message.",
        "It could not be read or handled at all.",
        "Read the letter; replay it once the cause is fixed, else purge it.",
    ),
    "delivery_limit": E(
        "The message was delivered too many times without success.",
        "A worker kept failing or crashing on it (RabbitMQ's delivery limit).",
        "Check the workers' logs for the record, fix the cause, then replay it.",
    ),
    "expired": E(
        "The message expired in a queue.",
        "Its time to live ran out before a worker took it.",
        "Replay it; check that workers run.",
    ),
    "maxlen": E(
        "A queue was full and dropped the message.",
        "A queue length limit.",
        "Replay it; check the queue's length policy.",
    ),
    "unparseable": E(
        "The message is neither a change nor an apply command.",
        "It was published by something other than hsqbo, or by an incompatible version.",
        "Nothing to replay: read it, then purge it.",
    ),
}

UNKNOWN = E("hsqbo has no explanation for this category yet.", "See the message.",
            "Fix what the message names, " + _RESYNC)  # fmt: skip


def explain(category: str | None) -> Explanation | None:
    """The explanation of `category`; None for none (a synced record)."""
    if not category:
        return None
    return EXPLANATIONS.get(category, UNKNOWN)

"""Reconciliation: the proof that both books agree. Webhooks get lost and polling has gaps (HubSpot search finds
live records only, QBO CDC looks back 30 days); a value changed behind hsqbo's back would stay apart for ever. So
once every `reconcile_seconds` per connection (when is kept in the store, so restarts and other pollers agree), and
on `hsqbo poller --reconcile`, every synced link's pair is read back, both sides in batches (HubSpot batch reads of
100, QBO `SELECT * FROM <Entity> WHERE Id IN (...)` of 100, inactive name-list records included), and compared as the
rules compare them:

    contacts, products  the rule's mapped fields (`SPEC`, the connection's mappings and custom mappings), in the
                        canonical form its three-way merge uses; a product's type only when it flows
    invoices            the header fields (`HEADER`; a HubSpot invoice's empty due date is QBO's to fill), HubSpot's
                        `hs_amount_billed` vs QBO's `TotalAmt` to the cent; while payments sync, `hs_balance_due` vs
                        `Balance` and the status (paid, open); a voided invoice only its status
    payments            the amount (to the cent), date, currency and reference the rule writes, per applied invoice

A pair is in agreement, drifted (the fields that differ, each with both values) or missing (a side gone, or inactive
or voided while its link says synced). A drifted or missing record is queued again, as its lost webhook would have
been: from the side whose value moved away from the last agreement (contacts, products), else the record's master
(invoices, payments: its origin), on a side the object syncs from; its envelope's operation `drifted` tells the
worker to compare both sides whatever the link's versions say. The worker then repairs it with the rule's own merge:
a field changed on one side takes that value; changed on both since the last agreement, the conflict winner's. A
HubSpot record gone is queued as a deletion (its QBO record is made inactive or voided, as for a delivered webhook).

Each run's report is kept in the store (counts per object, the drifted records with values cut short, the last
`KEEP_REPORTS` per connection), printed by `hsqbo poller --reconcile [--last]`, and counted in the gauge
`hsqbo_reconcile_drift_records`. A run also keeps on each link what its two records are known by (names, numbers,
amounts: the status page's lists, `services/worker/_summary.py`). A dry run reports and queues nothing, and names
nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from services.poller._source import Poll, Publish
from services.worker import _fields
from services.worker import _summary as summaries
from services.worker._fields import Values
from services.worker.rules import _dates as dates
from services.worker.rules import contacts, invoices, payments, products
from services.worker.rules._pair import hubspot_properties
from shared import money
from shared.clients import HubSpotObject, QboEntity, qbo_quote
from shared.company import Company, CompanySettingsError
from shared.connections import SyncContext
from shared.domain import Kind, Provider
from shared.envelope import ChangeEnvelope, Operation
from shared.logging import get_logger
from shared.metrics import RECONCILE_DRIFT
from shared.store import Link, LinkStatus, Reconciliation
from shared.syncconfig import ConnectionSettings

log = get_logger("hsqbo.poller")

LINKS_PER_READ = 100  # HubSpot's batch read limit; QBO ids per `Id IN (...)` query (a URL stays short)
RECONCILED_AT = "hubspot:reconciled_at"  # the store cursor: when this connection was last reconciled
KEEP_REPORTS = 30  # reports kept per connection (a month of daily runs)
KEEP_DRIFTED = 500  # drifted records kept in one report (the counts stay exact)
VALUE_CHARS = 60  # a value in a report is cut to this many characters
PAYMENT_FIELDS = {"hs_initial_amount": "amount", "hs_initiated_date": "date", "hs_currency_code": "currency",
                  "hs_reference_number": "reference"}  # fmt: skip


# --- comparing (pure) ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Difference:
    field: str
    hubspot: str | None
    qbo: str | None


def compare(hubspot: Values, qbo: Values) -> list[Difference]:
    """The fields whose canonical values differ between two mapped records, in the order of `hubspot`'s fields (then
    those only `qbo` has)."""
    names = [*hubspot, *(name for name in qbo if name not in hubspot)]
    return [Difference(name, hubspot.get(name), qbo.get(name)) for name in names if hubspot.get(name) != qbo.get(name)]


def cut(value: str | None) -> str | None:
    """A value as a report keeps it: at most VALUE_CHARS characters."""
    if value is None or len(value) <= VALUE_CHARS:
        return value
    return value[: VALUE_CHARS - 1] + "…"


def cents(value: Any, currency: str | None = None) -> str | None:
    """An amount rounded to its currency's minor unit, as text ("100.00"). A float (from a client that does not parse
    Decimals yet) goes through its shortest text, which is exact for any amount to the cent; text that is no number
    is kept as it is, so it shows as a difference."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = money.decimal(value)
    except ValueError:
        return _fields.text(value)
    return None if amount is None else money.plain(money.round_money(amount, currency))


def instant(value: Any) -> str | None:
    """A date or datetime ("2026-01-05", "2026-01-05T00:00:00.000Z") in one canonical form."""
    cleaned = _fields.text(value)
    if cleaned is None:
        return None
    try:
        return dt.datetime.fromisoformat(cleaned.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return cleaned


def contact_values(
    connection: ConnectionSettings,
    company: Company,
    link: Link,
    records: Mapping[str, HubSpotObject],
    customer: QboEntity,
) -> tuple[Values, Values]:
    maps = _fields.active_maps(contacts.SPEC.fields, connection.contacts)
    record = records[str(link.hubspot_id)]
    return _fields.from_hubspot(maps, record.properties), _fields.from_qbo(maps, customer)


def product_values(
    connection: ConnectionSettings, company: Company, link: Link, records: Mapping[str, HubSpotObject], item: QboEntity
) -> tuple[Values, Values]:
    record = records[str(link.hubspot_id)]
    priced = products.priced_settings(connection.products, company)  # prices compare in the home currency only
    settings, item = products._compared(priced, record, item)  # what the rule's merge compares
    maps = _fields.active_maps(products.SPEC.fields, settings)
    return _fields.from_hubspot(maps, record.properties), _fields.from_qbo(maps, item)


def invoice_values(
    connection: ConnectionSettings,
    company: Company,
    link: Link,
    records: Mapping[str, HubSpotObject],
    invoice: QboEntity,
) -> tuple[Values, Values]:
    properties = records[str(link.hubspot_id)].properties
    maps = _fields.active_maps(invoices._header(company.hubspot_zone), connection.invoices)  # dates as the rule reads
    if link.origin == Provider.HUBSPOT and not _fields.text(properties.get("hs_due_date")):
        maps = [m for m in maps if m.name != "due_date"]  # QBO fills a missing due date from the terms
    hubspot, qbo = _fields.from_hubspot(maps, properties), _fields.from_qbo(maps, invoice)
    status = invoices._qbo_status(invoice, {}, link)
    hubspot_status = _fields.text(properties.get("hs_invoice_status"))
    if invoices.VOIDED in (status, hubspot_status):  # a void zeroes QBO's total; HubSpot keeps what was billed
        return {**hubspot, "status": hubspot_status}, {**qbo, "status": status}
    currency = _fields.text(_fields.get_path(invoice, "CurrencyRef.value")) or properties.get("hs_currency")
    hubspot["amount_billed"] = cents(properties.get("hs_amount_billed"), currency)
    qbo["amount_billed"] = cents(invoice.get("TotalAmt"), currency)
    if connection.payments.direction != "off":  # without payments HubSpot never learns what was paid
        hubspot["balance_due"] = cents(properties.get("hs_balance_due"), currency)
        qbo["balance_due"] = cents(invoice.get("Balance"), currency)
        hubspot["status"], qbo["status"] = hubspot_status, status
    return hubspot, qbo


def payment_values(
    connection: ConnectionSettings,
    company: Company,
    link: Link,
    records: Mapping[str, HubSpotObject],
    payment: QboEntity,
) -> tuple[Values, Values]:
    currency = payments.currency_of(payment, company.home_currency)
    try:
        zone = company.qbo_zone
    except CompanySettingsError:  # the rule cannot date payments either (failing, config): compare the amounts
        zone = None
    if link.origin == Provider.HUBSPOT:  # one QBO payment made from one HubSpot payment
        record = records[str(link.hubspot_id)]
        try:
            wanted = payments.qbo_payment_fields(record, zone or dates.UTC, currency)
        except (KeyError, ValueError):  # no date or amount in HubSpot: nothing the rule could write
            wanted = {}
        hubspot = {"amount": cents(wanted.get("TotalAmt"), currency), "date": _fields.text(wanted.get("TxnDate"))}
        qbo = {"amount": cents(payment.get("TotalAmt"), currency), "date": _fields.text(payment.get("TxnDate"))}
        if zone is None:
            del hubspot["date"], qbo["date"]
        return hubspot, qbo
    # Made from QBO: one HubSpot payment per applied invoice (link.synced: QBO invoice id -> HubSpot payment id).
    hubspot, qbo = {}, {}
    parts = payments.applied_invoices(payment)
    for invoice_id, amount in sorted(parts.items(), key=lambda part: part[0]):
        part = records.get(str(link.synced.get(invoice_id)))
        suffix = f" (invoice {invoice_id})" if len(parts) > 1 else ""
        wanted_part = payments.hubspot_payment_properties(payment, amount, company.home_currency, zone or dates.UTC)
        for name, value in wanted_part.items():
            if zone is None and name == "hs_initiated_date":
                continue
            field = PAYMENT_FIELDS.get(name, name) + suffix
            current = part.properties.get(name) if part is not None else None
            hubspot[field], qbo[field] = _payment_value(name, current, currency), _payment_value(name, value, currency)
    return hubspot, qbo


def _payment_value(name: str, value: Any, currency: str) -> str | None:
    """A HubSpot payment property's value as compared: the amount to the cent, the date as an instant."""
    if name == "hs_initial_amount":
        return cents(value, currency)
    return instant(value) if name == "hs_initiated_date" else _fields.text(value)


# --- what is read, per object ----------------------------------------------------------------------------------------

ValuesOf = Callable[[ConnectionSettings, Company, Link, Mapping[str, HubSpotObject], QboEntity], tuple[Values, Values]]


@dataclasses.dataclass(frozen=True, slots=True)
class PairKind:
    kind: Kind
    hubspot_type: str  # in the API path
    hubspot_envelope: str  # envelope object types, as webhooks name them
    qbo_entity: str
    values: ValuesOf
    name_list: bool = False  # QBO makes these inactive instead of deleting them

    def properties(self, connection: ConnectionSettings) -> list[str]:
        """The HubSpot properties the comparison reads."""
        if self.kind == Kind.CONTACT:
            return hubspot_properties(_fields.active_maps(contacts.SPEC.fields, connection.contacts))
        if self.kind == Kind.PRODUCT:
            maps = _fields.active_maps(products.SPEC.fields, connection.products)
            return hubspot_properties(maps, "name", "hs_sku")
        if self.kind == Kind.INVOICE:
            maps = _fields.active_maps(invoices.HEADER, connection.invoices)
            amounts = ("hs_amount_billed", "hs_balance_due", "hs_invoice_status", "hs_currency")
            return hubspot_properties(maps, *amounts)
        return sorted(payments.READ_PROPERTIES)

    def hubspot_ids(self, link: Link) -> list[str]:
        """The HubSpot records of one pair: a payment made from QBO has one per applied invoice."""
        ids = [str(link.hubspot_id)]
        if self.kind == Kind.PAYMENT and link.origin == Provider.QUICKBOOKS:
            ids += [str(i) for i in link.synced.values() if i and str(i) not in ids]
        return ids


PAIRS = (
    PairKind(Kind.CONTACT, "contacts", "contact", "Customer", contact_values, name_list=True),
    PairKind(Kind.PRODUCT, "products", "product", "Item", product_values, name_list=True),
    PairKind(Kind.INVOICE, "invoices", "invoice", "Invoice", invoice_values),
    PairKind(Kind.PAYMENT, "commerce_payments", "commerce_payment", "Payment", payment_values),
)


# --- judging one pair (pure) -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """What the reconciliation found of one linked pair, and what to queue for it ((side, operation) pairs)."""

    kind: Kind
    hubspot_id: str
    qbo_id: str
    differences: tuple[Difference, ...] = ()
    missing: tuple[Provider, ...] = ()  # the sides gone (or inactive, voided)
    queue: tuple[tuple[Provider, Operation], ...] = ()

    @property
    def agreed(self) -> bool:
        return not self.differences and not self.missing

    def as_json(self) -> dict[str, Any]:
        """The finding as a report keeps it: ids, the sides missing, each differing field with both values cut."""
        found: dict[str, Any] = {"kind": str(self.kind), "hubspot_id": self.hubspot_id, "qbo_id": self.qbo_id}
        if self.missing:
            found["missing"] = [str(side) for side in self.missing]
        found["fields"] = [{"field": d.field, "hubspot": cut(d.hubspot), "qbo": cut(d.qbo)} for d in self.differences]
        return found


def judge(
    pair: PairKind,
    connection: ConnectionSettings,
    link: Link,
    records: Mapping[str, HubSpotObject],
    entity: QboEntity | None,
    *,
    company: Company,
) -> Finding:
    """Compare one linked pair (`records`: the HubSpot records read, by id; `entity`: the QBO record, None when gone;
    `company`: both accounts' currencies and zones) and say what to queue."""
    settings = connection.objects(pair.kind)
    hubspot_id, qbo_id = str(link.hubspot_id), str(link.qbo_id)
    missing: list[Provider] = []
    queue: list[tuple[Provider, Operation]] = []
    if hubspot_id not in records:
        missing.append(Provider.HUBSPOT)
        if settings.syncs_from(Provider.HUBSPOT):
            queue.append((Provider.HUBSPOT, Operation.DELETED))
    if entity is None or _inactive(pair, entity):
        missing.append(Provider.QUICKBOOKS)
        if settings.syncs_from(Provider.QUICKBOOKS):  # the rule re-reads it: gone, inactive or voided
            queue.append((Provider.QUICKBOOKS, Operation.DELETED if entity is None else Operation.DRIFTED))
    if missing:
        return Finding(pair.kind, hubspot_id, qbo_id, missing=tuple(missing), queue=tuple(queue))
    assert entity is not None
    hubspot, qbo = pair.values(connection, company, link, records, entity)
    differences = compare(hubspot, qbo)
    if not differences:
        return Finding(pair.kind, hubspot_id, qbo_id)
    side = requeue_side(pair.kind, connection, link, hubspot, qbo, differences)
    queued = ((side, Operation.DRIFTED),) if side is not None else ()
    return Finding(pair.kind, hubspot_id, qbo_id, tuple(differences), queue=queued)


def requeue_side(
    kind: Kind,
    connection: ConnectionSettings,
    link: Link,
    hubspot: Values,
    qbo: Values,
    differences: Sequence[Difference],
) -> Provider | None:
    """Where a drifted record is queued from: the side whose value moved away from the last agreement (a flat pair
    keeps it in `link.synced`), else the record's master (its origin), among the sides the object syncs from (None:
    neither)."""
    settings = connection.objects(kind)
    flowing = [side for side in (link.origin, _other(link.origin)) if settings.syncs_from(side)]
    if kind in (Kind.CONTACT, Kind.PRODUCT) and link.synced:
        moved = {
            side
            for d in differences
            if d.field in link.synced
            for side, values in ((Provider.HUBSPOT, hubspot), (Provider.QUICKBOOKS, qbo))
            if values.get(d.field) != link.synced[d.field]
        }
        flowing.sort(key=lambda side: side not in moved)  # a moved side first, stably
    return flowing[0] if flowing else None


def _other(side: Provider) -> Provider:
    return Provider.QUICKBOOKS if side == Provider.HUBSPOT else Provider.HUBSPOT


def _inactive(pair: PairKind, entity: QboEntity) -> bool:
    if pair.name_list:
        return not entity.get("Active", True)
    return pair.kind == Kind.PAYMENT and payments.is_voided(entity)


def envelope(
    connection: ConnectionSettings, pair: PairKind, finding: Finding, side: Provider, operation: Operation, now: float
) -> ChangeEnvelope:
    """The change to queue for a finding: as a webhook from `side` would say it (the worker re-reads the record)."""
    on_hubspot = side == Provider.HUBSPOT
    account = connection.hubspot_portal_id if on_hubspot else connection.qbo_realm_id
    object_type = pair.hubspot_envelope if on_hubspot else pair.qbo_entity.lower()
    object_id = finding.hubspot_id if on_hubspot else finding.qbo_id
    return ChangeEnvelope(
        provider=side,
        account_id=account,
        object_type=object_type,
        object_id=object_id,
        operation=operation,
        occurred_at_ms=int(now * 1000),
        event_id=f"reconcile:{side}:{account}:{object_type}:{object_id}:{int(now)}",
    )


# --- a run -----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Counts:
    """One object's tally in a run."""

    checked: int = 0
    agreed: int = 0
    drifted: int = 0
    missing: int = 0

    def add(self, finding: Finding) -> None:
        self.checked += 1
        if finding.missing:
            self.missing += 1
        elif finding.differences:
            self.drifted += 1
        else:
            self.agreed += 1


Progress = Callable[[Kind, Counts], None]  # after each batch, for a progress line


async def reconcile(
    ctx: SyncContext, publish: Publish | None, *, now: float, progress: Progress = lambda kind, counts: None
) -> Reconciliation:
    """Compare every synced pair of the connection's synced objects, queue (with `publish` None: only report) each
    drifted or missing one, keep the report and return it."""
    connection = ctx.connection
    started = time.time()
    objects: dict[str, dict[str, int]] = {}
    drifted: list[dict[str, Any]] = []
    for pair in PAIRS:
        if connection.objects(pair.kind).direction == "off":
            continue
        counts = Counts()
        offset = 0
        while links := await ctx.store.list_links(
            ctx.name, pair.kind, LinkStatus.SYNCED, limit=LINKS_PER_READ, offset=offset
        ):
            offset += len(links)
            both = [link for link in links if link.hubspot_id and link.qbo_id]
            findings = await _check(ctx, pair, both, keep_names=publish is not None)
            envelopes = []
            for finding in findings:
                counts.add(finding)
                if not finding.agreed and len(drifted) < KEEP_DRIFTED:
                    drifted.append(finding.as_json())
                envelopes += [envelope(connection, pair, finding, side, op, now) for side, op in finding.queue]
            if envelopes and publish is not None:
                await publish(envelopes)
            progress(pair.kind, counts)
        objects[str(pair.kind)] = dataclasses.asdict(counts)
    report = Reconciliation(
        connection=ctx.name, started_at=started, finished_at=time.time(), dry_run=publish is None, objects=objects,
        drifted=drifted,
    )  # fmt: skip
    show(report)
    return await ctx.store.save_reconciliation(report, keep=KEEP_REPORTS)


def show(report: Reconciliation) -> None:
    """Set the drift gauge of each object of the report's connection."""
    for kind, counts in report.objects.items():
        RECONCILE_DRIFT.labels(report.connection, kind).set(counts.get("drifted", 0) + counts.get("missing", 0))


async def _check(ctx: SyncContext, pair: PairKind, links: Sequence[Link], *, keep_names: bool) -> list[Finding]:
    """Read both sides of up to LINKS_PER_READ pairs (one HubSpot batch read, one QBO query) and judge each; with
    `keep_names`, keep what each pair is known by on its link."""
    if not links:
        return []
    hubspot_ids = list(dict.fromkeys(i for link in links for i in pair.hubspot_ids(link)))
    batch = await ctx.hubspot.batch_read(pair.hubspot_type, hubspot_ids, properties=pair.properties(ctx.connection))
    records = {record.id: record for record in batch.results}
    rows = await ctx.qbo.query(qbo_select(pair, [str(link.qbo_id) for link in links]))
    entities = {str(row["Id"]): row for row in rows}
    company = await ctx.company()
    if keep_names:
        await _keep_names(ctx, pair, links, records, entities)
    return [
        judge(pair, ctx.connection, link, records, entities.get(str(link.qbo_id)), company=company) for link in links
    ]


async def _keep_names(
    ctx: SyncContext,
    pair: PairKind,
    links: Sequence[Link],
    records: Mapping[str, HubSpotObject],
    entities: Mapping[str, QboEntity],
) -> None:
    """Both records were just read: keep on each link what a person knows them by (the status page's names), when
    that changed (`services/worker/_summary.py`)."""
    for link in links:
        label, summary = summaries.named(
            link.summary, pair.kind, records.get(str(link.hubspot_id)), entities.get(str(link.qbo_id)), now=time.time()
        )
        if link.id is not None and (label, summary) != (link.label, link.summary):
            await ctx.store.set_summary(link.id, label, summary)


def qbo_select(pair: PairKind, ids: Iterable[str]) -> str:
    """The query reading these records of `pair`'s entity, inactive name-list records included."""
    wanted = list(ids)
    where = f"Id IN ({', '.join(qbo_quote(i) for i in wanted)})"
    if pair.name_list:
        where += " AND Active IN (true, false)"
    return f"SELECT * FROM {pair.qbo_entity} WHERE {where} MAXRESULTS {max(len(wanted), 1)}"


# --- the report as text ----------------------------------------------------------------------------------------------


def format_report(report: Reconciliation) -> str:
    """A table of counts per object, then each drifted or missing record with its differing fields."""
    when = dt.datetime.fromtimestamp(report.started_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    seconds = report.finished_at - report.started_at
    lines = [f"reconciled {when} in {seconds:.1f} s" + (" (dry run: nothing queued)" if report.dry_run else "")]
    lines.append(f"{'object':<12}{'checked':>9}{'agreed':>9}{'drifted':>9}{'missing':>9}")
    for kind, counts in report.objects.items():
        lines.append(f"{kind:<12}" + "".join(f"{counts.get(n, 0):>9}" for n in ("checked", "agreed", "drifted",
                                                                                 "missing")))  # fmt: skip
    total = sum(counts.get("drifted", 0) + counts.get("missing", 0) for counts in report.objects.values())
    if not total:
        lines.append("every pair agrees")
        return "\n".join(lines)
    lines.append(f"drifted or missing: {total}" + (f" (the first {len(report.drifted)} listed)"
                                                  if len(report.drifted) < total else ""))  # fmt: skip
    for found in report.drifted:
        lines.append(f"{found['kind']} HubSpot {found['hubspot_id']} / QuickBooks {found['qbo_id']}")
        for side in found.get("missing", ()):
            where = "HubSpot" if side == "hubspot" else "QuickBooks"
            lines.append(f"    missing in {where} (gone, inactive or voided)")
        for field in found.get("fields", ()):
            hubspot, qbo = _shown(field["hubspot"]), _shown(field["qbo"])
            lines.append(f"    {field['field']:<22} HubSpot {hubspot}  QuickBooks {qbo}")
    return "\n".join(lines)


def _shown(value: str | None) -> str:
    return "(empty)" if value is None else repr(value)


class Reconciler:
    """The poller's reconciliation: due once every `reconcile_seconds` per connection."""

    provider = Provider.HUBSPOT  # its polls are counted with HubSpot's (the reads start there)

    def __init__(self) -> None:
        self._shown: set[str] = set()  # connections whose drift gauge this process has set

    async def poll(self, poll: Poll) -> float | None:
        last = await poll.cursor(RECONCILED_AT)
        if last is not None and poll.now - float(last) < poll.reconcile_seconds:
            if poll.ctx.name not in self._shown:  # a restarted poller shows the last kept report until the next run
                self._shown.add(poll.ctx.name)
                for kept in await poll.ctx.store.reconciliations(poll.ctx.name):
                    show(kept)
            return None
        self._shown.add(poll.ctx.name)
        report = await reconcile(poll.ctx, poll.publish, now=poll.now)
        await poll.advance(RECONCILED_AT, str(poll.now))
        counts = report.objects.values()
        log.info("reconciled", connection=poll.ctx.name, checked=sum(c["checked"] for c in counts),
                 drifted=sum(c["drifted"] for c in counts), missing=sum(c["missing"] for c in counts))  # fmt: skip
        return None

"""The sandbox under 1,000 requests/s of mixed traffic, and its memory for the seeded data set (issue 3).

`hsqbo-sandbox --seed` runs in its own process (default demo data: a QBO realm and a HubSpot portal). Throttles are
lifted through the control surface (QBO `PUT /_sandbox/limits`, HubSpot `PATCH /_sandbox/accounts/{portal_id}`),
OAuth tokens issued there too; then the seeded ids are listed through the APIs and an open loop starts `RATE`
requests/s for 2 s of warm-up and 20 s measured: reads, queries/searches, creates and sparse updates across both
emulators (`MIX`), on the paths and with the bodies the sync clients send. QBO sparse updates carry the record's
current SyncToken (each customer is updated by one request at a time), so every answer should be 2xx; a 5xx
would be the sandbox's own error (no faults are injected). RSS (VmRSS) is read after seeding and after the run.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import random
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from benchmarks._load import Call, Send, open_loop, run_load
from benchmarks._processes import free_ports, python_module, rss_kib, running
from benchmarks._report import BenchmarkResult
from shared.clients import qbo_quote

RATE = 1000.0
WARMUP_SECONDS = 2.0
DURATION_SECONDS = 20.0
MAX_CONNECTIONS = 256
QBO_MINOR_VERSION = "75"
UNLIMITED = 1_000_000_000
# Share of each kind of request, in percent. Searches are few: HubSpot allows a portal 5 searches/s (the limit is
# lifted here), so 3% of 1,000/s already stands for several busy portals.
MIX: dict[str, int] = {
    "hubspot.contact.read": 18,
    "hubspot.company.read": 6,
    "hubspot.invoice.read": 6,
    "hubspot.contact.search": 2,
    "hubspot.company.search": 1,
    "hubspot.contact.create": 5,
    "hubspot.contact.update": 12,
    "qbo.customer.read": 15,
    "qbo.invoice.read": 6,
    "qbo.item.read": 5,
    "qbo.customer.query": 6,
    "qbo.invoice.query": 4,
    "qbo.customer.create": 4,
    "qbo.customer.update": 10,
}


@dataclasses.dataclass(slots=True)
class SeededData:
    """What the traffic reads and updates: ids (and QBO names and SyncTokens) listed before the run."""

    portal_id: int
    contacts: list[tuple[str, str]]  # (id, email)
    companies: list[tuple[str, str]]  # (id, name)
    hubspot_invoices: list[str]
    realm_id: str
    customers: list[tuple[str, str]]  # (id, DisplayName)
    sync_tokens: dict[str, str]  # customer id -> SyncToken
    invoices: list[tuple[str, str]]  # (id, DocNumber)
    items: list[str]
    qbo_counts: dict[str, int]  # every entity of the realm, as the control surface counts them


async def _read(response: aiohttp.ClientResponse) -> int:
    await response.read()
    return response.status


class Traffic:
    """Builds the next request of the mix; deterministic for a given seed (the run id only makes created
    records' names unique)."""

    def __init__(
        self, data: SeededData, hubspot_url: str, qbo_url: str, hubspot_token: str, qbo_token: str, *, seed: int = 1
    ) -> None:
        self.data = data
        self.rng = random.Random(seed)
        self.run_id = secrets.token_hex(4)
        self.numbers = itertools.count(1)
        self.hubspot = f"{hubspot_url}/crm/v3/objects"
        self.qbo = f"{qbo_url}/v3/company/{data.realm_id}"
        self.hubspot_headers = {"Authorization": f"Bearer {hubspot_token}"}
        self.qbo_headers = {"Authorization": f"Bearer {qbo_token}", "Accept": "application/json"}
        # Customers not being updated right now, with their current SyncToken: one update per customer at a time.
        self.idle_customers = collections.deque(data.sync_tokens.items())
        self.kinds = list(MIX)
        self.weights = list(MIX.values())
        self.builders: dict[str, Callable[[], Send]] = {kind: getattr(self, kind.replace(".", "_")) for kind in MIX}

    def next_call(self) -> Call:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        return Call(kind, self.builders[kind]())

    # requests

    def _request(
        self, method: str, url: str, headers: dict[str, str], *, params: dict[str, str] | None = None, body: Any = None
    ) -> Send:
        data = None if body is None else orjson.dumps(body)
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}

        async def send(session: aiohttp.ClientSession) -> int:
            async with session.request(method, url, headers=headers, params=params, data=data) as response:
                return await _read(response)

        return send

    def _hubspot(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Send:
        return self._request(method, f"{self.hubspot}/{path}", self.hubspot_headers, params=params, body=body)

    def _qbo(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Send:
        params = {**(params or {}), "minorversion": QBO_MINOR_VERSION}
        return self._request(method, f"{self.qbo}/{path}", self.qbo_headers, params=params, body=body)

    def hubspot_contact_read(self) -> Send:
        contact_id, _ = self.rng.choice(self.data.contacts)
        return self._hubspot("GET", f"contacts/{contact_id}", params={"properties": "email,firstname,lastname,company"})

    def hubspot_company_read(self) -> Send:
        company_id, _ = self.rng.choice(self.data.companies)
        return self._hubspot("GET", f"companies/{company_id}", params={"associations": "contacts"})

    def hubspot_invoice_read(self) -> Send:
        invoice_id = self.rng.choice(self.data.hubspot_invoices)
        params = {"properties": "hs_invoice_status,hs_balance_due,hs_amount_billed", "associations": "line_items"}
        return self._hubspot("GET", f"invoices/{invoice_id}", params=params)

    def hubspot_contact_search(self) -> Send:
        _, email = self.rng.choice(self.data.contacts)
        filters = [{"propertyName": "email", "operator": "EQ", "value": email}]
        body = {"filterGroups": [{"filters": filters}], "properties": ["email", "firstname", "lastname"], "limit": 10}
        return self._hubspot("POST", "contacts/search", body=body)

    def hubspot_company_search(self) -> Send:
        _, name = self.rng.choice(self.data.companies)
        filters = [{"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": name.split()[0]}]
        body = {"filterGroups": [{"filters": filters}], "properties": ["name", "domain"], "limit": 100}
        return self._hubspot("POST", "companies/search", body=body)

    def hubspot_contact_create(self) -> Send:
        number = next(self.numbers)
        properties = {
            "email": f"bench-{self.run_id}-{number}@example.com",
            "firstname": "Bench",
            "lastname": f"Contact {number}",
            "company": "Benchmark Ltd",
        }
        return self._hubspot("POST", "contacts", body={"properties": properties})

    def hubspot_contact_update(self) -> Send:
        contact_id, _ = self.rng.choice(self.data.contacts)
        properties = {"jobtitle": f"Title {next(self.numbers)}", "phone": f"+1 555 {self.rng.randint(1000, 9999)}"}
        return self._hubspot("PATCH", f"contacts/{contact_id}", body={"properties": properties})

    def qbo_customer_read(self) -> Send:
        customer_id, _ = self.rng.choice(self.data.customers)
        return self._qbo("GET", f"customer/{customer_id}")

    def qbo_invoice_read(self) -> Send:
        invoice_id, _ = self.rng.choice(self.data.invoices)
        return self._qbo("GET", f"invoice/{invoice_id}")

    def qbo_item_read(self) -> Send:
        return self._qbo("GET", f"item/{self.rng.choice(self.data.items)}")

    def qbo_customer_query(self) -> Send:
        _, name = self.rng.choice(self.data.customers)
        return self._qbo(
            "GET", "query", params={"query": f"select * from Customer where DisplayName = {qbo_quote(name)}"}
        )

    def qbo_invoice_query(self) -> Send:
        _, doc_number = self.rng.choice(self.data.invoices)
        return self._qbo(
            "GET", "query", params={"query": f"select * from Invoice where DocNumber = {qbo_quote(doc_number)}"}
        )

    def qbo_customer_create(self) -> Send:
        number = next(self.numbers)
        customer = {
            "DisplayName": f"Bench Customer {self.run_id}-{number}",
            "GivenName": "Bench",
            "FamilyName": f"Customer {number}",
            "PrimaryEmailAddr": {"Address": f"bench-{self.run_id}-{number}@example.com"},
        }
        return self._qbo("POST", "customer", body=customer)

    def qbo_customer_update(self) -> Send:
        if not self.idle_customers:  # every customer has an update in flight: read one instead
            return self.qbo_customer_read()
        customer_id, sync_token = self.idle_customers.popleft()
        url = f"{self.qbo}/customer"
        params = {"minorversion": QBO_MINOR_VERSION}
        headers = {**self.qbo_headers, "Content-Type": "application/json"}
        idle = self.idle_customers
        number = next(self.numbers)

        async def send(session: aiohttp.ClientSession) -> int:
            body = {"Id": customer_id, "SyncToken": sync_token, "sparse": True, "Notes": f"benchmark edit {number}"}
            current = sync_token
            try:
                async with session.post(url, params=params, headers=headers, data=orjson.dumps(body)) as response:
                    answer = await response.read()
                    if response.status == 200:
                        current = orjson.loads(answer)["Customer"]["SyncToken"]
                    return response.status
            finally:
                idle.append((customer_id, current))

        return send


# setup, through the control surface and the APIs themselves


async def _json(session: aiohttp.ClientSession, method: str, url: str, **options: Any) -> Any:
    async with session.request(method, url, **options) as response:
        if response.status >= 300:
            raise RuntimeError(f"{method} {url} answered {response.status}: {(await response.text())[:300]}")
        return await response.json()


async def _hubspot_records(
    session: aiohttp.ClientSession, url: str, token: str, object_type: str, field: str
) -> list[tuple[str, str]]:
    """Every live record of a type as (id, value of `field`), paging as a client does."""
    records: list[tuple[str, str]] = []
    params = {"limit": "100", "properties": field}
    while True:
        page = await _json(
            session,
            "GET",
            f"{url}/crm/v3/objects/{object_type}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )
        records += [(record["id"], record["properties"].get(field) or "") for record in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            return records
        params = {**params, "after": after}


async def _qbo_query(session: aiohttp.ClientSession, url: str, token: str, entity: str, fields: str) -> list[Any]:
    params = {"query": f"select {fields} from {entity} maxresults 1000", "minorversion": QBO_MINOR_VERSION}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    answer = await _json(session, "GET", f"{url}/query", params=params, headers=headers)
    rows: list[Any] = answer["QueryResponse"].get(entity, [])
    return rows


async def _prepare(session: aiohttp.ClientSession, hubspot_url: str, qbo_url: str) -> tuple[SeededData, str, str]:
    """Lift every throttle, issue tokens, list the seeded records. Returns (data, HubSpot token, QBO token)."""
    portals = await _json(session, "GET", f"{hubspot_url}/_sandbox/accounts")
    portal_id = int(portals["accounts"][0]["portal_id"])
    hubspot_limits = {"burst_limit": UNLIMITED, "daily_limit": UNLIMITED, "search_per_second": UNLIMITED}
    await _json(session, "PATCH", f"{hubspot_url}/_sandbox/accounts/{portal_id}", json=hubspot_limits)
    grant = {"portal_id": portal_id, "kind": "oauth"}
    hubspot_token = (await _json(session, "POST", f"{hubspot_url}/_sandbox/tokens", json=grant))["access_token"]
    realm = (await _json(session, "GET", f"{qbo_url}/_sandbox/accounts"))["accounts"][0]
    realm_id = str(realm["realm_id"])
    qbo_limits = {"requests_per_minute": UNLIMITED, "max_concurrent": UNLIMITED, "batch_per_minute": UNLIMITED}
    await _json(session, "PUT", f"{qbo_url}/_sandbox/limits", json=qbo_limits)
    qbo_token = (await _json(session, "POST", f"{qbo_url}/_sandbox/tokens", json={"realm_id": realm_id}))[
        "access_token"
    ]
    company = f"{qbo_url}/v3/company/{realm_id}"
    customers = await _qbo_query(session, company, qbo_token, "Customer", "Id, SyncToken, DisplayName")
    invoices = await _qbo_query(session, company, qbo_token, "Invoice", "Id, DocNumber")
    items = await _qbo_query(session, company, qbo_token, "Item", "Id")
    hubspot_invoices = await _hubspot_records(session, hubspot_url, hubspot_token, "invoices", "hs_invoice_status")
    data = SeededData(
        portal_id=portal_id,
        contacts=await _hubspot_records(session, hubspot_url, hubspot_token, "contacts", "email"),
        companies=await _hubspot_records(session, hubspot_url, hubspot_token, "companies", "name"),
        hubspot_invoices=[invoice_id for invoice_id, _ in hubspot_invoices],
        realm_id=realm_id,
        customers=[(row["Id"], row["DisplayName"]) for row in customers],
        sync_tokens={row["Id"]: row["SyncToken"] for row in customers},
        invoices=[(row["Id"], row["DocNumber"]) for row in invoices],
        items=[row["Id"] for row in items],
        qbo_counts={entity: int(count) for entity, count in realm["counts"].items() if count},
    )
    return data, hubspot_token, qbo_token


def _data_set(data: SeededData) -> dict[str, Any]:
    """The seeded data set the memory figures are for."""
    return {
        "hubspot": {
            "contacts": len(data.contacts),
            "companies": len(data.companies),
            "invoices": len(data.hubspot_invoices),
        },
        "qbo": data.qbo_counts,
    }


async def _run() -> BenchmarkResult:
    hubspot_port, qbo_port = free_ports(2)
    hubspot_url, qbo_url = f"http://127.0.0.1:{hubspot_port}", f"http://127.0.0.1:{qbo_port}"
    argv = python_module("hsqbo_sandbox", "--seed", "--hubspot-port", str(hubspot_port), "--qbo-port", str(qbo_port))
    async with running(argv, {}, [f"{qbo_url}/_sandbox/accounts", f"{hubspot_url}/_sandbox/accounts"]) as server:
        async with aiohttp.ClientSession() as session:
            rss_seeded = rss_kib(server.pid)
            data, hubspot_token, qbo_token = await _prepare(session, hubspot_url, qbo_url)
        traffic = Traffic(data, hubspot_url, qbo_url, hubspot_token, qbo_token)
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            result = await open_loop(
                session, traffic.next_call, rate=RATE, warmup=WARMUP_SECONDS, duration=DURATION_SECONDS
            )
        rss_after = rss_kib(server.pid)
    summary = result.summary
    server_errors = sum(count for status, count in summary.statuses.items() if status.startswith("5"))
    rss_mib = {"after_seeding": round(rss_seeded / 1024, 1), "after_run": round(rss_after / 1024, 1)}
    details = {
        "settings": {
            "target_rate": RATE,
            "warmup_seconds": WARMUP_SECONDS,
            "duration_seconds": DURATION_SECONDS,
            "max_connections": MAX_CONNECTIONS,
            "mix_percent": MIX,
        },
        "data_set": _data_set(data),
        "run": summary.to_dict(),
        "server_errors_5xx": server_errors,
        "by_kind": {kind: figures.to_dict() for kind, figures in result.by_label.items()},
        "rss_mib": rss_mib,
    }
    row = {
        "target req/s": RATE,
        "achieved req/s": round(summary.requests_per_second, 1),
        "p50 ms": round(summary.p50_ms, 2),
        "p99 ms": round(summary.p99_ms, 2),
        "5xx": server_errors,
        "non-2xx": summary.non_2xx,
        "RSS seeded MiB": rss_mib["after_seeding"],
        "RSS after MiB": rss_mib["after_run"],
    }
    return BenchmarkResult("sandbox", [row], details)


def run() -> BenchmarkResult:
    return run_load(_run())

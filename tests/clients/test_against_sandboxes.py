"""The clients over real loopback HTTP against the sandbox emulators: the same code paths the worker uses against the
real hosts (aiohttp transport, OAuth refresh, error mapping). Skipped when the emulators are not importable."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from shared.asgi import serving
from shared.clients import (
    REQUESTED_SCOPES,
    AiohttpTransport,
    BatchOperation,
    Coalescer,
    HubSpotClient,
    HubSpotOAuth,
    MemoryTokenStore,
    NewAssociation,
    QboClient,
    QboOAuth,
    StaticToken,
    TokenSet,
    qbo_quote,
)
from shared.errors import (
    ApiError,
    Conflict,
    DuplicateName,
    MissingScopes,
    NotFound,
    StaleObject,
    ValidationFailed,
)

qbo_sandbox = pytest.importorskip("hsqbo_sandbox.qbo", reason="QBO sandbox not importable")
hubspot_sandbox = pytest.importorskip("hsqbo_sandbox.hubspot", reason="HubSpot sandbox not importable")
EVERY_SCOPE = pytest.importorskip("hsqbo_sandbox.hubspot._scopes").EVERY_SCOPE

CLIENT_ID, CLIENT_SECRET = "hsqbo-test-client", "hsqbo-test-secret"


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    async with AiohttpTransport(timeout_seconds=10, connect_timeout_seconds=5, max_connections=10) as transport:
        yield transport


@dataclass
class QboSetup:
    client: QboClient
    store: MemoryTokenStore
    key: str
    token_url: str


@pytest.fixture
async def qbo(transport: AiohttpTransport) -> AsyncIterator[QboSetup]:
    sandbox = qbo_sandbox.QboSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    realm_id = sandbox.create_realm().realm_id
    issued = sandbox.issue_token(realm_id)
    key = f"quickbooks:{realm_id}"
    store = MemoryTokenStore(
        {key: TokenSet(issued["access_token"], issued["refresh_token"], time.time() + issued["expires_in"])}
    )
    async with serving(sandbox.app) as server:
        token_url = f"{server.url}/oauth2/v1/tokens/bearer"
        auth = QboOAuth(
            key, store=store, transport=transport, token_url=token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        yield QboSetup(QboClient(server.url, realm_id, auth, transport), store, key, token_url)


def _request_id() -> str:
    return str(uuid.uuid4())


async def test_qbo_customer_round_trip_with_a_quote_in_the_name(qbo: QboSetup) -> None:
    name = f"O'Brien's Bikes {uuid.uuid4().hex[:6]}"
    created = await qbo.client.create("Customer", {"DisplayName": name}, request_id=_request_id())
    found = await qbo.client.query(f"SELECT * FROM Customer WHERE DisplayName = {qbo_quote(name)}")
    assert [row["Id"] for row in found] == [created["Id"]]
    updated = await qbo.client.update(
        "Customer",
        {"Id": created["Id"], "SyncToken": created["SyncToken"], "Notes": "synced"},
        request_id=_request_id(),
    )
    assert updated["Notes"] == "synced"
    assert (await qbo.client.read("Customer", created["Id"]))["SyncToken"] == updated["SyncToken"]


async def test_qbo_stale_sync_token_and_duplicate_name_are_typed(qbo: QboSetup) -> None:
    created = await qbo.client.create("Customer", {"DisplayName": "Acme Ltd"}, request_id=_request_id())
    await qbo.client.update("Customer", {**_ids(created), "Notes": "a"}, request_id=_request_id())
    with pytest.raises(StaleObject):
        await qbo.client.update("Customer", {**_ids(created), "Notes": "b"}, request_id=_request_id())
    with pytest.raises(DuplicateName):
        await qbo.client.create("Customer", {"DisplayName": "Acme Ltd"}, request_id=_request_id())


async def test_qbo_repeated_request_id_does_not_write_twice(qbo: QboSetup) -> None:
    request_id = _request_id()
    first = await qbo.client.create("Customer", {"DisplayName": "Replay Co"}, request_id=request_id)
    second = await qbo.client.create("Customer", {"DisplayName": "Replay Co"}, request_id=request_id)
    assert first["Id"] == second["Id"]
    assert await qbo.client.count("Customer", where=f"DisplayName = {qbo_quote('Replay Co')}") == 1


async def test_qbo_query_all_pages_cdc_and_batch(qbo: QboSetup) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    names = [f"Paged {n:02d}" for n in range(5)]
    for name in names:
        await qbo.client.create("Customer", {"DisplayName": name}, request_id=_request_id())
    paged = [
        row["DisplayName"]
        async for row in qbo.client.query_all("Customer", where="DisplayName LIKE 'Paged%'", order_by="Id", page_size=2)
    ]
    assert sorted(paged) == names
    changes = await qbo.client.cdc(["Customer"], since)
    assert set(names) <= {row.get("DisplayName") for row in changes.entities["Customer"]}
    assert changes.time is not None
    results = await qbo.client.batch(
        [
            BatchOperation.create("ok", "Customer", {"DisplayName": "Batch New"}),
            BatchOperation.create("dup", "Customer", {"DisplayName": names[0]}),
            BatchOperation.query("q", f"SELECT * FROM Customer WHERE DisplayName = {qbo_quote(names[1])}"),
        ],
        request_id=_request_id(),
    )
    assert isinstance(results["ok"], dict)
    assert results["ok"]["DisplayName"] == "Batch New"
    assert isinstance(results["dup"], DuplicateName)
    assert isinstance(results["q"], list)
    assert [row["DisplayName"] for row in results["q"]] == [names[1]]


async def test_qbo_missing_record_is_not_found(qbo: QboSetup) -> None:
    with pytest.raises(NotFound):
        await qbo.client.read("Customer", "999999")


async def test_qbo_expired_access_token_is_refreshed_and_the_rotation_stored(qbo: QboSetup) -> None:
    old = qbo.store.tokens[qbo.key]
    qbo.store.tokens[qbo.key] = TokenSet(old.access_token, old.refresh_token, expires_at=time.time() - 1)
    await qbo.client.query("SELECT * FROM Customer MAXRESULTS 1")
    new = qbo.store.tokens[qbo.key]
    assert new.access_token != old.access_token
    assert new.expires_at > time.time()


async def test_qbo_revoked_access_token_is_refreshed_after_the_401(qbo: QboSetup) -> None:
    old = qbo.store.tokens[qbo.key]
    qbo.store.tokens[qbo.key] = TokenSet("not-a-live-token", old.refresh_token, old.expires_at)
    assert isinstance(await qbo.client.query("SELECT * FROM Customer MAXRESULTS 1"), list)
    assert qbo.store.tokens[qbo.key].access_token not in ("not-a-live-token", old.access_token)


# --- HubSpot --------------------------------------------------------------------------------------------------------


@pytest.fixture
async def hubspot(transport: AiohttpTransport) -> AsyncIterator[HubSpotClient]:
    sandbox = hubspot_sandbox.HubSpotSandbox()
    portal_id = sandbox.create_portal()
    token = sandbox.private_app_token(portal_id, scopes=EVERY_SCOPE)  # the client's whole surface, not only hsqbo's
    async with serving(sandbox.app) as server:
        yield HubSpotClient(server.url, StaticToken(token), transport)


async def test_hubspot_unique_property_upsert_and_read_by_it(hubspot: HubSpotClient) -> None:
    prop = await hubspot.ensure_property(
        "contacts", "qbo_customer_id", label="QuickBooks customer id", group_name="contactinformation", unique=True
    )
    assert prop.unique
    again = await hubspot.ensure_property(
        "contacts", "qbo_customer_id", label="QuickBooks customer id", group_name="contactinformation", unique=True
    )
    assert again == prop
    batch = await hubspot.batch_upsert("contacts", "qbo_customer_id", {"58": {"email": "jane@example.com"}})
    assert batch.errors == []
    assert batch.results[0].new is True
    record = await hubspot.get("contacts", "58", properties=["email"], id_property="qbo_customer_id")
    assert record.properties["email"] == "jane@example.com"
    updated = await hubspot.update("contacts", "58", {"firstname": "Jane"}, id_property="qbo_customer_id")
    assert updated.id == record.id


async def test_hubspot_duplicate_email_is_a_conflict_naming_the_existing_contact(hubspot: HubSpotClient) -> None:
    first = await hubspot.create("contacts", {"email": "dup@example.com"})
    with pytest.raises(Conflict) as caught:
        await hubspot.create("contacts", {"email": "dup@example.com"})
    assert caught.value.existing_id == first.id


async def test_hubspot_search_all_and_batch_read(hubspot: HubSpotClient) -> None:
    created = [await hubspot.create("companies", {"name": f"Search Co {n}"}) for n in range(5)]
    found = [
        record.id
        async for record in hubspot.search_all(
            "companies",
            filter_groups=[{"filters": [{"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": "Search"}]}],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            page_size=2,
        )
    ]
    assert sorted(found) == sorted(record.id for record in created)
    batch = await hubspot.batch_read("companies", [created[0].id, "999999999"], properties=["name"])
    assert [record.id for record in batch.results] == [created[0].id]


async def test_hubspot_associations_create_list_remove(hubspot: HubSpotClient) -> None:
    company = await hubspot.create("companies", {"name": "Assoc Co"})
    contact = await hubspot.create(
        "contacts", {"email": "assoc@example.com"}, associations=[NewAssociation(company.id, 279)]
    )
    listed = await hubspot.list_associations("contacts", contact.id, "companies")
    assert [association.to_id for association in listed] == [company.id]
    await hubspot.remove_association("contacts", contact.id, "companies", company.id)
    assert await hubspot.list_associations("contacts", contact.id, "companies") == []
    await hubspot.associate("contacts", contact.id, "companies", company.id)
    record = await hubspot.get("contacts", contact.id, associations=["companies"])
    assert record.associations.get("companies") == [company.id]
    await hubspot.archive("contacts", contact.id)
    with pytest.raises(NotFound):
        await hubspot.get("contacts", contact.id)


async def test_hubspot_oauth_refresh_against_the_token_endpoint(transport: AiohttpTransport) -> None:
    sandbox = hubspot_sandbox.HubSpotSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    portal_id = sandbox.create_portal()
    issued = sandbox.issue_token(portal_id)
    key = f"hubspot:{portal_id}"
    store = MemoryTokenStore({key: TokenSet(issued.access_token, str(issued.refresh_token), expires_at=0.0)})
    async with serving(sandbox.app) as server:
        auth = HubSpotOAuth(
            key,
            store=store,
            transport=transport,
            token_url=f"{server.url}/oauth/v1/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        client = HubSpotClient(server.url, auth, transport)
        created = await client.create("contacts", {"email": "oauth@example.com"})
    assert created.properties["email"] == "oauth@example.com"
    assert store.tokens[key].access_token != issued.access_token


def _ids(record: dict[str, object]) -> dict[str, object]:
    return {"Id": record["Id"], "SyncToken": record["SyncToken"]}


async def test_hubspot_call_outside_the_token_scopes_is_missing_scopes_naming_them(
    transport: AiohttpTransport,
) -> None:
    sandbox = hubspot_sandbox.HubSpotSandbox()
    portal_id = sandbox.create_portal()
    full = sandbox.private_app_token(portal_id)
    without_deals = sandbox.private_app_token(
        portal_id, scopes=[s for s in REQUESTED_SCOPES if not s.startswith("crm.objects.deals.")]
    )
    async with serving(sandbox.app) as server:
        invoice = await HubSpotClient(server.url, StaticToken(full), transport).create(
            "invoices", {"hs_currency": "USD"}
        )
        client = HubSpotClient(server.url, StaticToken(without_deals), transport)
        assert await client.list_associations("invoices", invoice.id, "contacts") == []  # granted: answered
        with pytest.raises(MissingScopes) as caught:
            await client.list_associations("invoices", invoice.id, "deals")
    assert caught.value.status == 403
    assert caught.value.code == "MISSING_SCOPES"
    assert caught.value.scopes == ("crm.objects.deals.read",)
    assert "reconnect to grant crm.objects.deals.read" in str(caught.value)


async def test_hubspot_concurrent_single_calls_meet_in_batch_calls(transport: AiohttpTransport) -> None:
    sandbox = hubspot_sandbox.HubSpotSandbox()
    token = sandbox.private_app_token(sandbox.create_portal(), scopes=EVERY_SCOPE)
    async with serving(sandbox.app) as server:
        plain = HubSpotClient(server.url, StaticToken(token), transport)
        batched = HubSpotClient(server.url, StaticToken(token), transport, coalescer=Coalescer())
        a, b, c = [await plain.create("contacts", {"email": f"{n}@example.com"}) for n in "abc"]
        company = await plain.create("companies", {"name": "Acme"})
        await plain.associate("contacts", a.id, "companies", company.id)
        sandbox.requests.clear()

        read = await asyncio.gather(
            *(batched.get("contacts", i, properties=["email"]) for i in (a.id, b.id, "999")), return_exceptions=True
        )
        assert [getattr(r, "id", None) for r in read[:2]] == [a.id, b.id]
        assert isinstance(read[2], NotFound)
        listed = await asyncio.gather(*(batched.list_associations("contacts", i, "companies") for i in (a.id, b.id)))
        assert [[association.to_id for association in found] for found in listed] == [[company.id], []]
        updated = await asyncio.gather(
            batched.update("contacts", a.id, {"firstname": "A"}),
            batched.update("contacts", b.id, {"email": "c@example.com"}),  # c's: refused alone
            batched.update("contacts", c.id, {"firstname": "C"}),
            return_exceptions=True,
        )
        assert [getattr(u, "properties", {}).get("firstname") for u in updated] == ["A", None, "C"]
        assert isinstance(updated[1], ApiError)
        assert [(r.method, r.path) for r in sandbox.requests.list()] == [
            ("POST", "/crm/v3/objects/contacts/batch/read"),
            ("POST", "/crm/v4/associations/contacts/companies/batch/read"),
            ("POST", "/crm/v3/objects/contacts/batch/update"),
        ]


async def test_hubspot_concurrent_creates_and_lookups_meet_in_batch_calls_each_answered_alone(
    transport: AiohttpTransport,
) -> None:
    sandbox = hubspot_sandbox.HubSpotSandbox()
    token = sandbox.private_app_token(sandbox.create_portal(), scopes=EVERY_SCOPE)
    async with serving(sandbox.app) as server:
        plain = HubSpotClient(server.url, StaticToken(token), transport)
        batched = HubSpotClient(server.url, StaticToken(token), transport, coalescer=Coalescer())
        taken = await plain.create("contacts", {"email": "taken@example.com"})
        sandbox.requests.clear()

        made = await asyncio.gather(
            batched.create("contacts", {"email": "new@example.com"}),
            batched.create("contacts", {"email": "taken@example.com"}),  # refused: HubSpot emails are unique
            batched.create("contacts", {"email": "bad@"}),  # refused: not an email
            return_exceptions=True,
        )
        assert getattr(made[0], "id", None) is not None
        assert isinstance(made[1], Conflict)
        assert made[1].existing_id == taken.id  # as the single create names it
        assert isinstance(made[2], ValidationFailed)
        assert [(r.method, r.path) for r in sandbox.requests.list()] == [
            ("POST", "/crm/v3/objects/contacts/batch/create"),
            ("POST", "/crm/v3/objects/contacts"),  # the 207 named no holder: the single create does
            ("POST", "/crm/v3/objects/contacts"),
        ]
        sandbox.requests.clear()

        found = await asyncio.gather(
            *(batched.get("contacts", email, id_property="email") for email in ("TAKEN@example.com", "no@example.com")),
            return_exceptions=True,
        )
        assert getattr(found[0], "id", None) == taken.id
        assert isinstance(found[1], NotFound)
        products = [await plain.create("products", {"name": f"P{n}", "hs_sku": f"SKU-{n}"}) for n in range(2)]
        sandbox.requests.clear()
        skus = await asyncio.gather(*(batched.search_by("products", "hs_sku", sku) for sku in ("sku-0", "SKU-1", "X")))
        assert [[p.id for p in found] for found in skus] == [[products[0].id], [products[1].id], []]
        assert [(r.method, r.path) for r in sandbox.requests.list()] == [("POST", "/crm/v3/objects/products/search")]


async def test_qbo_concurrent_reads_and_updates_meet_in_one_query_and_one_batch(transport: AiohttpTransport) -> None:
    sandbox = qbo_sandbox.QboSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    realm_id = sandbox.create_realm().realm_id
    token = StaticToken(sandbox.issue_token(realm_id)["access_token"])
    async with serving(sandbox.app) as server:
        plain = QboClient(server.url, realm_id, token, transport)
        batched = QboClient(server.url, realm_id, token, transport, coalescer=Coalescer())
        created = [
            await plain.create("Customer", {"DisplayName": f"Batch {n}"}, request_id=_request_id()) for n in range(3)
        ]
        sandbox.requests.clear()
        read = await asyncio.gather(*(batched.read("Customer", str(c["Id"])) for c in created))
        assert [r["DisplayName"] for r in read] == ["Batch 0", "Batch 1", "Batch 2"]
        tokens = (read[0]["SyncToken"], "99", read[2]["SyncToken"])  # the second is stale
        updated = await asyncio.gather(
            *(
                batched.update("Customer", {"Id": r["Id"], "SyncToken": t, "Notes": "new"}, request_id=_request_id())
                for r, t in zip(read, tokens, strict=True)
            ),
            return_exceptions=True,
        )
        assert [u.get("Notes") if isinstance(u, dict) else None for u in updated] == ["new", None, "new"]
        assert isinstance(updated[1], StaleObject)  # its own item's fault (5010)
        assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in sandbox.requests.list()] == [
            ("GET", "query"),
            ("POST", "batch"),
        ]

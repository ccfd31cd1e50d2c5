"""The control surface: accounts, seed, request log, state round trip, tokens, clock."""

from __future__ import annotations

from hsqbo_sandbox.qbo import QboSandbox
from tests.sandbox.qbo.conftest import REALM_ID, QboHttp


async def test_accounts_can_be_created_and_listed(qbo: QboHttp) -> None:
    created = await qbo.control("POST", "accounts", {"realm_id": "555", "company_name": "Second Co"})
    assert created["counts"]["Account"] > 0
    listed = await qbo.control("GET", "accounts")
    assert [a["realm_id"] for a in listed["accounts"]] == [REALM_ID, "555"]


async def test_seed_builds_a_book_with_multi_invoice_payments_and_items_with_and_without_sku(qbo: QboHttp) -> None:
    seeded = await qbo.control("POST", "seed", {"realm_id": REALM_ID, "customers": 50, "items": 12, "invoices": 200})
    assert (seeded["customers"], seeded["items"], seeded["invoices"]) == (50, 12, 200)
    realm = qbo.sandbox.realms[REALM_ID]
    items = [r.data for r in realm.records["Item"].values()]
    assert any("Sku" in item for item in items)
    assert any("Sku" not in item for item in items)
    assert any(len(r.data["Line"]) > 1 for r in realm.records["Payment"].values())


async def test_request_log_counts_api_calls_per_realm_and_clears(qbo: QboHttp) -> None:
    await qbo.customer("Acme Ltd")
    await qbo.get("customer/1")
    log = await qbo.control("GET", f"requests?account={REALM_ID}")
    assert [(r["method"], r["status"], r["client"]) for r in log["requests"]] == [
        ("POST", 200, "test-client"),
        ("GET", 200, "test-client"),
    ]
    await qbo.control("DELETE", "requests")
    assert (await qbo.control("GET", "requests"))["count"] == 0


async def test_state_dump_and_load_round_trip(qbo: QboHttp) -> None:
    await qbo.customer("Acme Ltd")
    state = await qbo.control("GET", "state")
    restored = QboSandbox()
    restored.load(state)
    realm = restored.realms[REALM_ID]
    assert realm.records["Customer"]["1"].data["DisplayName"] == "Acme Ltd"
    assert realm.display_names == {"acme ltd": "1"}
    assert restored.tokens.validate(qbo.token) == REALM_ID


async def test_tokens_faults_limits_and_clock_are_controllable(qbo: QboHttp) -> None:
    token = await qbo.control("POST", "tokens", {"realm_id": REALM_ID})
    assert (await qbo.request("GET", "customer/1", token=token["access_token"]))[0] == 400
    assert (await qbo.control("PUT", "faults", {"error_rate": 0.5}))["error_rate"] == 0.5
    assert (await qbo.control("PUT", "limits", {"requests_per_minute": 9000}))["requests_per_minute"] == 9000
    before = (await qbo.control("GET", "clock"))["offset"]
    assert (await qbo.control("POST", "clock/advance", {"seconds": 30}))["offset"] == before + 30
    assert (await qbo.control("POST", "webhooks/drain", {"timeout": 1}))["drained"] is True

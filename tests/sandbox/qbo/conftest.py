"""A served QboSandbox with one realm, a valid token and a recording webhook sink; `QboHttp` speaks to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from hsqbo_sandbox.qbo import QboSandbox, RealmLimits
from tests.sandbox.conftest import WebhookSink, serving_with_sink

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
VERIFIER_TOKEN = "test-verifier-token"
REALM_ID = "4620816365000001"
RETRY_SCALE = 0.001  # Intuit's 10 s first retry becomes 10 ms


class QboHttp:
    def __init__(self, sandbox: QboSandbox, base_url: str, http: aiohttp.ClientSession, token: str) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        self.http = http
        self.token = token

    def api(self, path: str) -> str:
        return f"{self.base_url}/v3/company/{REALM_ID}/{path.lstrip('/')}"

    async def request(
        self, method: str, path: str, *, body: Any = None, token: str | None = None, **params: str
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {token or self.token}"}
        async with self.http.request(method, self.api(path), json=body, params=params, headers=headers) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: Any, **params: str) -> tuple[int, dict[str, Any]]:
        return await self.request("POST", path, body=body, **params)

    async def get(self, path: str, **params: str) -> tuple[int, dict[str, Any]]:
        return await self.request("GET", path, **params)

    async def ok(self, method: str, path: str, body: Any = None, **params: str) -> dict[str, Any]:
        status, answer = await self.request(method, path, body=body, **params)
        assert status == 200, answer
        return answer

    async def query(self, text: str) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.ok("GET", "query", query=text))["QueryResponse"]
        return answer

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.base_url}/_sandbox/{path}", json=body) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()

    # fixtures for entities

    async def customer(self, name: str, **fields: Any) -> dict[str, Any]:
        return (await self.ok("POST", "customer", {"DisplayName": name, **fields}))["Customer"]  # type: ignore[no-any-return]

    async def item(self, name: str, price: float = 10.0, **fields: Any) -> dict[str, Any]:
        body = {"Name": name, "Type": "Service", "IncomeAccountRef": {"value": "1"}, "UnitPrice": price, **fields}
        return (await self.ok("POST", "item", body))["Item"]  # type: ignore[no-any-return]

    async def invoice(self, customer_id: str, *lines: tuple[str, float, float, str], **fields: Any) -> dict[str, Any]:
        body = {"CustomerRef": {"value": customer_id}, "Line": [sales_line(*line) for line in lines], **fields}
        return (await self.ok("POST", "invoice", body))["Invoice"]  # type: ignore[no-any-return]


def sales_line(item_id: str, qty: float, unit_price: float, tax_code: str = "NON") -> dict[str, Any]:
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": round(qty * unit_price, 2),
        "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": unit_price,
                                "TaxCodeRef": {"value": tax_code}},
    }  # fmt: skip


def payment_body(customer_id: str, total: float, *applied: tuple[str, float]) -> dict[str, Any]:
    """A Payment of `total` applying (invoice id, amount) pairs, one Line each."""
    lines = [
        {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]} for invoice_id, amount in applied
    ]
    return {"CustomerRef": {"value": customer_id}, "TotalAmt": total, "Line": lines}


def make_sandbox(webhook_url: str | None = None, **options: Any) -> QboSandbox:
    sandbox = QboSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, verifier_token=VERIFIER_TOKEN,
                         webhook_url=webhook_url, retry_scale=RETRY_SCALE, **options)  # fmt: skip
    sandbox.create_realm(REALM_ID, "Test Company")
    return sandbox


@pytest.fixture
def limits() -> RealmLimits:
    return RealmLimits()


@pytest.fixture
def webhook_format() -> str:
    return "cloudevents"


@pytest.fixture
def webhook_sink() -> WebhookSink:
    """Served by the `qbo` fixture together with the sandbox (one shutdown for both)."""
    return WebhookSink()


@pytest.fixture
async def qbo(webhook_sink: WebhookSink, limits: RealmLimits, webhook_format: str) -> AsyncIterator[QboHttp]:
    sandbox = make_sandbox(None, limits=limits, webhook_format=webhook_format)
    token = sandbox.issue_token(REALM_ID)["access_token"]
    async with serving_with_sink(webhook_sink, sandbox.app) as (server,), aiohttp.ClientSession() as http:
        sandbox.webhooks.set_url(webhook_sink.url)
        yield QboHttp(sandbox, server.url, http, token)

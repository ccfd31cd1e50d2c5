"""Every call: bearer token, encoding, exactly one retry after a 401 when the token source has a new token, transport
failures as TransportError, and a metric per attempt."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from shared.clients import MemoryTokenStore, MockTransport, QboOAuth, Request, Response, StaticToken, TokenSet
from shared.clients._errors import hubspot_error
from shared.clients._session import ApiSession
from shared.errors import ApiError, AuthRevoked, Forbidden, TransportError, Unauthorized
from tests.clients.answers import json_answer, json_of, query_of

API = "https://api.example"
TOKEN_URL = "https://oauth.example/token"


def _classify(response: Response) -> ApiError | None:
    return None if response.status < 300 else hubspot_error(response)


def _oauth(transport: MockTransport) -> QboOAuth:
    store = MemoryTokenStore({"k": TokenSet("old", "r1", 4_000_000_000.0)})
    return QboOAuth("k", store=store, transport=transport, token_url=TOKEN_URL, client_id="i", client_secret="s")


class ScriptedApi:
    """API answers in order, and the token endpoint always granting "new"."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.api_calls: list[Request] = []
        self.grants = 0

    def __call__(self, request: Request) -> Response:
        if request.url == TOKEN_URL:
            self.grants += 1
            return json_answer(200, {"access_token": "new", "refresh_token": "r2", "expires_in": 3600})
        self.api_calls.append(request)
        return self.answers.pop(0)


async def test_request_carries_bearer_token_encoded_query_and_json_body() -> None:
    transport = MockTransport(lambda request: json_answer(200, {}))
    session = ApiSession("hubspot", API + "/", StaticToken("tok"), transport, _classify)
    await session.call("op", "POST", "/x", params=[("q", "a b'c"), ("k", "1")], json={"n": 1})
    (request,) = transport.requests
    assert request.url == f"{API}/x?q=a%20b%27c&k=1"
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert json_of(request) == {"n": 1}
    assert query_of(request) == [("q", "a b'c"), ("k", "1")]


async def test_json_body_writes_decimals_as_the_exact_numbers_they_hold() -> None:
    transport = MockTransport(lambda request: json_answer(200, {}))
    body = {"Amount": Decimal("2.50"), "UnitPrice": Decimal("3.33333"), "Qty": 3, "Big": Decimal("1E+2")}
    await ApiSession("qbo", API, StaticToken("tok"), transport, _classify).call("op", "POST", "/x", json=body)
    assert transport.requests[0].body == b'{"Amount":2.50,"UnitPrice":3.33333,"Qty":3,"Big":100}'


async def test_get_without_body_sends_no_content_type() -> None:
    transport = MockTransport(lambda request: json_answer(200, {}))
    await ApiSession("hubspot", API, StaticToken("tok"), transport, _classify).call("op", "GET", "/x")
    assert "Content-Type" not in transport.requests[0].headers
    assert transport.requests[0].body == b""


async def test_401_refreshes_and_retries_exactly_once_with_the_new_token() -> None:
    provider = ScriptedApi(json_answer(401, {"category": "INVALID_AUTHENTICATION"}), json_answer(200, {"ok": True}))
    transport = MockTransport(provider)
    session = ApiSession("quickbooks", API, _oauth(transport), transport, _classify)
    response = await session.call("op", "GET", "/x")
    assert response.json() == {"ok": True}
    assert [call.headers["Authorization"] for call in provider.api_calls] == ["Bearer old", "Bearer new"]
    assert provider.grants == 1


async def test_second_401_after_refresh_is_raised_without_another_retry() -> None:
    provider = ScriptedApi(json_answer(401, {}), json_answer(401, {}))
    transport = MockTransport(provider)
    session = ApiSession("quickbooks", API, _oauth(transport), transport, _classify)
    with pytest.raises(Unauthorized) as refused:
        await session.call("op", "GET", "/x")
    assert not isinstance(refused.value, AuthRevoked)  # a fresh token was refused: not known to be revoked
    assert len(provider.api_calls) == 2
    assert provider.grants == 1


async def test_401_with_a_static_token_is_not_retried_and_says_the_authorization_is_revoked() -> None:
    transport = MockTransport(lambda request: json_answer(401, {}))
    session = ApiSession("hubspot", API, StaticToken("tok"), transport, _classify)
    with pytest.raises(AuthRevoked):
        await session.call("op", "GET", "/x")
    assert len(transport.requests) == 1


async def test_403_is_not_retried() -> None:
    provider = ScriptedApi(json_answer(403, {"category": "MISSING_SCOPES"}))
    transport = MockTransport(provider)
    with pytest.raises(Forbidden):
        await ApiSession("quickbooks", API, _oauth(transport), transport, _classify).call("op", "GET", "/x")
    assert provider.grants == 0


@pytest.mark.parametrize("failure", [ConnectionError("reset by peer"), TimeoutError("slow")])
async def test_no_answer_is_a_transient_transport_error(failure: OSError) -> None:
    def handler(request: Request) -> Response:
        raise failure

    session = ApiSession("hubspot", API, StaticToken("tok"), MockTransport(handler), _classify)
    with pytest.raises(TransportError) as caught:
        await session.call("op", "POST", "/x", json={})
    assert caught.value.transient
    assert caught.value.provider == "hubspot"


def _count(operation: str, outcome: str) -> float:
    labels = {"provider": "hubspot", "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("hsqbo_api_requests_total", labels) or 0.0


async def test_each_attempt_is_counted_by_operation_and_outcome() -> None:
    answers = [json_answer(200, {}), json_answer(429, {"errorType": "RATE_LIMIT"})]
    session = ApiSession("hubspot", API, StaticToken("t"), MockTransport(lambda request: answers.pop(0)), _classify)
    ok_before, limited_before = _count("metric_probe", "ok"), _count("metric_probe", "rate_limited")
    await session.call("metric_probe", "GET", "/x")
    with pytest.raises(ApiError):
        await session.call("metric_probe", "GET", "/x")
    assert _count("metric_probe", "ok") == ok_before + 1
    assert _count("metric_probe", "rate_limited") == limited_before + 1
    latency = REGISTRY.get_sample_value(
        "hsqbo_api_request_seconds_count", {"provider": "hubspot", "operation": "metric_probe"}
    )
    assert latency is not None
    assert latency >= 2

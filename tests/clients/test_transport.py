"""Transports: the mock hands requests to a function; the aiohttp one talks real HTTP without re-encoding URLs and
turns network failures into ConnectionError / TimeoutError."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from shared.asgi import serving
from shared.clients import AiohttpTransport, MockTransport, Request, Response
from shared.config import Settings


def test_response_json_reads_every_non_integer_number_as_an_exact_decimal() -> None:
    answer = Response(200, {}, b'{"TotalAmt": 0.30, "Qty": 3, "Line": [{"Amount": 2.4999999999}]}').json()
    assert answer == {"TotalAmt": Decimal("0.30"), "Qty": 3, "Line": [{"Amount": Decimal("2.4999999999")}]}
    assert isinstance(answer["TotalAmt"], Decimal)
    assert isinstance(answer["Qty"], int)


def test_response_headers_are_case_insensitive() -> None:
    response = Response(200, {"Retry-After": "3", "X-HubSpot-RateLimit-Max": "190"})
    assert response.header("retry-after") == "3"
    assert response.header("X-HUBSPOT-RATELIMIT-MAX") == "190"
    assert response.header("missing") is None


async def test_mock_transport_accepts_sync_and_async_handlers_and_records_requests() -> None:
    async def async_handler(request: Request) -> Response:
        return Response(201, {}, b"async")

    sync = MockTransport(lambda request: Response(200, {}, b"sync"))
    asynchronous = MockTransport(async_handler)
    request = Request("GET", "http://api.example/x")
    assert (await sync.send(request)).body == b"sync"
    assert (await asynchronous.send(request)).status == 201
    assert sync.requests == [request]


async def _echo(request: StarletteRequest) -> StarletteResponse:
    return JSONResponse(
        {
            "method": request.method,
            "raw_query": request.scope["query_string"].decode(),
            "authorization": request.headers.get("authorization"),
            "body": (await request.body()).decode(),
        },
        headers={"X-Echo": "yes"},
    )


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    release = asyncio.Event()

    async def stall(request: StarletteRequest) -> StarletteResponse:
        await release.wait()  # until the test is over: the client must give up first
        return StarletteResponse()

    app = Starlette(routes=[Route("/echo", _echo, methods=["GET", "POST"]), Route("/stall", stall)])
    async with serving(app) as server:
        yield server.url
        release.set()  # let a stalled request finish so the server can stop


async def test_aiohttp_transport_sends_method_headers_body_and_keeps_the_encoded_query(echo_url: str) -> None:
    query = "query=SELECT%20%2A%20FROM%20Customer%20WHERE%20DisplayName%20%3D%20%27O%5C%27Brien%27"
    async with AiohttpTransport(timeout_seconds=5, connect_timeout_seconds=5, max_connections=4) as transport:
        response = await transport.send(
            Request("POST", f"{echo_url}/echo?{query}", {"Authorization": "Bearer t"}, b'{"a":1}')
        )
    assert response.status == 200
    assert response.header("x-echo") == "yes"
    assert response.json() == {"method": "POST", "raw_query": query, "authorization": "Bearer t", "body": '{"a":1}'}


async def test_aiohttp_transport_times_out_as_timeout_error(echo_url: str) -> None:
    async with AiohttpTransport(timeout_seconds=0.2, connect_timeout_seconds=5, max_connections=4) as transport:
        with pytest.raises(TimeoutError):
            await transport.send(Request("GET", f"{echo_url}/stall"))


async def test_aiohttp_transport_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    transport = AiohttpTransport.from_settings(Settings())
    try:
        with pytest.raises(ConnectionError):
            await transport.send(Request("GET", f"http://127.0.0.1:{port}/"))
    finally:
        await transport.aclose()


def test_request_repr_shows_no_token_or_body() -> None:
    request = Request(
        "POST", "https://oauth.example/token", {"Authorization": "Bearer secret"}, b"refresh_token=secret"
    )
    assert "secret" not in repr(request)
    assert "https://oauth.example/token" in repr(request)

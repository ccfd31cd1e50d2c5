from __future__ import annotations

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from hsqbo_sandbox import RecordedRequest, RequestLog, SandboxClock
from shared.asgi import serving


def _identify(scope: Scope) -> tuple[str | None, str | None]:
    parts = scope["path"].split("/")
    return (parts[2] if len(parts) > 2 else None), "client-1"


def _app(log: RequestLog) -> Starlette:
    async def answer(request: Request) -> Response:
        return PlainTextResponse("x", status_code=int(request.query_params.get("status", "200")))

    return Starlette(
        routes=[Route("/acct/{account}/thing", answer, methods=["GET", "POST"]), Route("/_sandbox/requests", answer)],
        middleware=[log.middleware(_identify)],
    )


async def test_every_api_request_is_recorded_with_status_account_and_client_but_control_calls_are_not() -> None:
    clock = SandboxClock()
    log = RequestLog(clock)
    async with serving(_app(log)) as server, aiohttp.ClientSession() as http:
        await (await http.get(f"{server.url}/acct/a1/thing?x=1")).read()
        await (await http.post(f"{server.url}/acct/a2/thing?status=400")).read()
        await (await http.get(f"{server.url}/_sandbox/requests")).read()
    entries = log.list()
    assert [(e.method, e.path, e.query, e.status, e.account, e.client) for e in entries] == [
        ("GET", "/acct/a1/thing", "x=1", 200, "a1", "client-1"),
        ("POST", "/acct/a2/thing", "status=400", 400, "a2", "client-1"),
    ]


def test_list_and_count_filter_by_account_time_method_and_status() -> None:
    clock = SandboxClock(wall=lambda: 100.0)
    log = RequestLog(clock)
    log.add(RecordedRequest(100.0, "GET", "/v3/company/1/query", "", 200, "1", None))
    log.add(RecordedRequest(200.0, "POST", "/v3/company/2/customer", "", 400, "2", None))
    assert log.count() == 2
    assert log.count(account="1") == 1
    assert [e.account for e in log.list(since=150.0)] == ["2"]
    assert log.count(method="post", status=400) == 1
    assert log.count(path_contains="query") == 1
    log.clear()
    assert log.count() == 0


def _reading_app(log: RequestLog) -> Starlette:
    async def answer(request: Request) -> Response:
        await request.body()
        return PlainTextResponse("x")

    return Starlette(routes=[Route("/acct/{account}/thing", answer, methods=["POST"])],
                     middleware=[log.middleware(_identify)])  # fmt: skip


async def test_json_request_bodies_are_kept_bounded_and_form_bodies_never() -> None:
    log = RequestLog(SandboxClock(), max_bodies=2, max_body_bytes=100)
    async with serving(_reading_app(log)) as server, aiohttp.ClientSession() as http:
        url = f"{server.url}/acct/a1/thing"
        await (await http.post(url, data=b'{"Amount": 2.50}', headers={"Content-Type": "application/json"})).read()
        await (
            await http.post(
                url, data=b"refresh_token=secret", headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
        ).read()
        await (
            await http.post(url, data=b'{"big": "' + b"x" * 200 + b'"}', headers={"Content-Type": "application/json"})
        ).read()
        assert [e.body for e in log.list()] == ['{"Amount": 2.50}', None, None]
        assert "body" not in log.list()[0].to_dict()
        assert log.list()[0].to_dict(with_body=True)["body"] == '{"Amount": 2.50}'
        for n in (1, 2):
            await (await http.post(url, data=b'{"n": %d}' % n, headers={"Content-Type": "application/json"})).read()
    assert [e.body for e in log.list()] == [None, None, None, '{"n": 1}', '{"n": 2}']  # only the last 2 kept

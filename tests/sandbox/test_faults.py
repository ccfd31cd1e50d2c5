from __future__ import annotations

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hsqbo_sandbox import FaultConfig, Faults, SandboxClock
from shared.asgi import serving


def _app(faults: Faults) -> Starlette:
    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/api", ok), Route("/api/customer/{id}", ok), Route("/_sandbox/faults", ok)],
        middleware=[
            faults.middleware(
                throttled_response=lambda: JSONResponse({"throttled": True}, status_code=429),
                error_response=lambda: JSONResponse({"error": True}, status_code=503),
            )
        ],
    )


def test_faults_are_all_off_by_default() -> None:
    config = FaultConfig()
    assert (config.error_rate, config.throttle_until, config.latency_ms) == (0, 0, (0, 0))
    assert (config.webhook_drop_rate, config.webhook_duplicate_rate, config.webhook_reorder) == (0, 0, False)


def test_update_rejects_unknown_fields_and_invalid_values_without_changing_anything() -> None:
    faults = Faults(SandboxClock())
    with pytest.raises(TypeError):
        faults.update(no_such_fault=1)
    with pytest.raises(ValueError, match="error_rate"):
        faults.update(error_rate=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        faults.update(latency_ms=[20, 10])
    assert faults.config == FaultConfig()


async def test_throttle_storm_answers_429_until_the_clock_passes_it_and_spares_the_control_surface() -> None:
    clock = SandboxClock()
    faults = Faults(clock)
    faults.update(throttle_until=clock.now() + 60)
    async with serving(_app(faults)) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api") as resp:
            assert resp.status == 429
            assert await resp.json() == {"throttled": True}
        async with http.get(f"{server.url}/_sandbox/faults") as resp:
            assert resp.status == 200
        clock.advance(61)
        async with http.get(f"{server.url}/api") as resp:
            assert resp.status == 200


async def test_error_rate_one_answers_every_api_request_with_the_providers_5xx() -> None:
    faults = Faults(SandboxClock())
    faults.update(error_rate=1.0)
    async with serving(_app(faults)) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api") as resp:
            assert resp.status == 503
            assert await resp.json() == {"error": True}
        faults.reset()
        async with http.get(f"{server.url}/api") as resp:
            assert resp.status == 200


async def test_a_lost_answer_carries_the_request_out_and_answers_a_5xx_as_many_times_as_asked() -> None:
    faults = Faults(SandboxClock())
    carried_out: list[str] = []

    async def write(request: Request) -> Response:
        carried_out.append(request.url.path)
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/api/batch/create", write, methods=["POST"])],
        middleware=[
            faults.middleware(
                throttled_response=lambda: JSONResponse({"throttled": True}, status_code=429),
                error_response=lambda: JSONResponse({"error": True}, status_code=503),
            )
        ],
    )
    faults.update(lost_answers=1, lost_answer_path="/batch/create")
    async with serving(app) as server, aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(2):
            async with http.post(f"{server.url}/api/batch/create") as resp:
                statuses.append(resp.status)
    assert statuses == [503, 200]
    assert carried_out == ["/api/batch/create"] * 2
    assert faults.config.lost_answers == 0


async def test_a_broken_record_is_answered_with_the_providers_5xx_every_time_until_it_is_mended() -> None:
    faults = Faults(SandboxClock())
    faults.update(broken_paths=["/customer/42"])
    async with serving(_app(faults)) as server, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.get(f"{server.url}/api/customer/42") as resp:
                assert resp.status == 503
        for other in ("142", "421"):
            async with http.get(f"{server.url}/api/customer/{other}") as resp:
                assert resp.status == 200
        faults.update(broken_paths=[])
        async with http.get(f"{server.url}/api/customer/42") as resp:
            assert resp.status == 200

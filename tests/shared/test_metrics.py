"""The metrics registry: a worker or poller serves its metrics over HTTP when given a port, and not otherwise, with
/healthz (the process answers) and /readyz (every readiness check holds) beside them."""

from __future__ import annotations

import asyncio

import aiohttp

from shared.health import Probe, Readiness
from shared.health import serve_metrics as serve_with
from shared.metrics import BUILD_INFO, POLLS, serve_metrics


def test_no_port_no_server() -> None:
    assert serve_metrics("127.0.0.1", None) is None


async def test_a_process_serves_its_metrics_on_the_configured_port() -> None:
    POLLS.labels("quickbooks", "ok").inc()
    server = serve_metrics("127.0.0.1", 0)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            body = await response.text()
        assert response.status == 200
        assert 'hsqbo_poller_polls_total{outcome="ok",provider="quickbooks"}' in body
    finally:
        server.shutdown()
        server.server_close()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_healthz_answers_and_readyz_says_which_check_fails() -> None:
    readiness = Readiness()
    broker = {"up": False}
    store = Probe()
    server = serve_with("127.0.0.1", 0, readiness)
    assert server is not None
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert await get(base + "/healthz") == (200, "ok\n")
        assert (await get(base + "/readyz"))[0] == 503  # nothing registered: still starting
        readiness.add("broker", lambda: broker["up"])
        readiness.add("store", store)
        assert await get(base + "/readyz") == (503, '{"broker":false,"store":false}')
        broker["up"] = True

        async def reachable() -> None:
            return None

        probing = asyncio.create_task(store.forever(reachable, every=0.01))
        await asyncio.sleep(0.05)
        assert await get(base + "/readyz") == (200, '{"broker":true,"store":true}')
        probing.cancel()
        assert (await get(base + "/metrics"))[0] == 200
    finally:
        server.shutdown()
        server.server_close()


async def test_a_failing_store_probe_makes_the_process_unready() -> None:
    store = Probe()
    store.ok = True

    async def unreachable() -> None:
        raise OSError("connection refused")

    probing = asyncio.create_task(store.forever(unreachable, every=0.01))
    await asyncio.sleep(0.05)
    probing.cancel()
    assert not store()


def test_build_info_names_the_version_and_python() -> None:
    ((labels, value),) = [(s.labels, s.value) for m in BUILD_INFO.collect() for s in m.samples]
    assert value == 1
    assert set(labels) == {"version", "python"}
    assert labels["python"].count(".") == 2

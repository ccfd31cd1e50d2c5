"""The metrics registry: a worker or poller serves its metrics over HTTP when given a port, and not otherwise."""

from __future__ import annotations

import aiohttp

from shared.metrics import POLLS, serve_metrics


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

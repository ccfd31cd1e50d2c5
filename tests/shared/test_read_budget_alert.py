"""The QBO read-budget alert fires for a connection with a small budget once its reads pass 80 %: the worker's calls
set the gauges, and `promtool test rules` evaluates the real rule on the values they hold."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from services.run import local_connection
from shared.clients import MockTransport, Request, Response
from shared.config import Settings
from shared.connections import ContextFactory
from shared.store import Store
from tests.clients.answers import json_answer
from tests.shared.test_alerts import RULES

CONNECTION = local_connection("small", 101, "4242").model_copy(update={"qbo_monthly_read_budget": 10})


def customer(request: Request) -> Response:
    return json_answer(200, {"Customer": {"Id": "58", "SyncToken": "0"}})


@pytest.fixture
def connection_name() -> str:
    return "small"


def gauges() -> dict[str, float]:
    """The series the alert reads, as this process exports them."""
    reads = {"connection": "small", "provider": "quickbooks", "kind": "read"}
    used = REGISTRY.get_sample_value("hsqbo_api_calls_this_month", reads)
    budget = REGISTRY.get_sample_value("hsqbo_qbo_read_budget", {"connection": "small"})
    return {
        'hsqbo_api_calls_this_month{connection="small", provider="quickbooks", kind="read"}': used or 0.0,
        'hsqbo_qbo_read_budget{connection="small"}': budget or 0.0,
    }


def fires(series: dict[str, float], tmp_path: Path) -> bool:
    """Whether HsqboQboReadBudget fires after 10 minutes of these values: promtool fails a case expecting none."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("HSQBO_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is not installed (Debian's prometheus package: `make test` installs it)")
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    case = {
        "rule_files": [str(RULES)],
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": name, "values": f"{value:g}x10"} for name, value in series.items()],
            "alert_rule_test": [{"eval_time": "10m", "alertname": "HsqboQboReadBudget", "exp_alerts": []}],
        }],
    }  # fmt: skip
    path = tmp_path / "case.yml"
    path.write_text(yaml.safe_dump(case))
    run = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    output = run.stdout + run.stderr
    assert run.returncode == 0 or 'connection="small"' in output, output  # failed for the alert, nothing else
    return run.returncode != 0


async def test_the_read_budget_alert_fires_once_a_small_budget_is_80_percent_spent(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    contexts = ContextFactory(settings, store, MockTransport(customer))
    ctx = await contexts.get(CONNECTION)
    for _ in range(7):
        await ctx.qbo.read("Customer", "58")
    await contexts.usage.flush()
    assert gauges() == {
        'hsqbo_api_calls_this_month{connection="small", provider="quickbooks", kind="read"}': 7.0,
        'hsqbo_qbo_read_budget{connection="small"}': 10.0,
    }
    assert not fires(gauges(), tmp_path)

    await ctx.qbo.read("Customer", "58")
    await contexts.usage.flush()
    assert fires(gauges(), tmp_path)

"""The alert rules tell the truth: each has a `for`, a severity, a summary and a runbook that exists, and each is
unit-tested by `promtool test rules` with a case that fires and one that does not (deploy/prometheus/*-tests.yml).

promtool comes with Debian's `prometheus` package, which `make test` installs; elsewhere the promtool test skips."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "hsqbo-alerts.yml"
RUNBOOKS = REPO / "docs" / "runbooks"
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_SECTIONS = ("## What it means", "## How to check", "## How to fix")


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_every_alert_has_a_for_a_severity_a_summary_and_a_runbook() -> None:
    assert rules()
    for rule in rules():
        name = rule["alert"]
        assert rule.get("for"), f"{name}: no `for`: it would fire on one evaluation (and at every restart)"
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"] == f"docs/runbooks/{name}.md", name
        runbook = (REPO / rule["annotations"]["runbook_url"]).read_text()
        assert runbook.startswith(f"# {name}\n"), name
        for section in RUNBOOK_SECTIONS:
            assert section in runbook, f"{name}'s runbook lacks {section!r}"


def test_a_target_down_and_a_target_absent_are_alerts() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    assert re.search(r"\bup\{[^}]*\} == 0", exprs)
    for job in ("hsqbo-receiver", "hsqbo-worker", "hsqbo-poller"):
        assert f'absent(up{{job="{job}"}})' in exprs


def test_every_alert_has_a_unit_test_that_fires_and_one_that_does_not() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for tests_file in PROMETHEUS.glob("*-tests.yml"):
        for test in yaml.safe_load(tests_file.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - firing == set(), "no case where these fire"
    assert names - quiet == set(), "no case where these stay quiet"


def test_promtool_passes_the_alert_rules_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("HSQBO_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is not installed (Debian's prometheus package: `make test` installs it)")
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    tests_files = sorted(PROMETHEUS.glob("*-tests.yml"))
    assert tests_files
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, tests_files)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr

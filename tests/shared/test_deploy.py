"""What deploy/ ships for ops (Prometheus alert rules, the Grafana dashboard) names only metrics, and labels, that
shared/metrics.py defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from shared import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "hsqbo-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "hsqbo-dashboard.json"
_METRIC = re.compile(r"\bhsqbo_[a-z_]+\b")
_LABEL_MATCH = re.compile(r"\b([a-z_]+)=\"")
_BY = re.compile(r"\bby \(([^)]*)\)")
_SUFFIXES = {Counter: ("_total",), Gauge: ("",), Histogram: ("_bucket", "_sum", "_count")}


def defined() -> dict[str, set[str]]:
    """Every series name the registry module defines, with its label names."""
    names: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        for kind, suffixes in _SUFFIXES.items():
            if isinstance(collector, kind):
                for suffix in suffixes:
                    names[collector._name + suffix] = set(collector._labelnames)
    return names


def check(expr: str, series: dict[str, set[str]]) -> None:
    named = _METRIC.findall(expr)
    assert named, expr
    assert set(named) <= set(series), set(named) - set(series)
    used = set(_LABEL_MATCH.findall(expr)) | {label.strip() for by in _BY.findall(expr) for label in by.split(",")}
    assert used - {"le"} <= set().union(*(series[name] for name in named)), expr


def test_every_alert_names_metrics_and_labels_the_registry_defines() -> None:
    series = defined()
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert rules
    for rule in rules:
        check(rule["expr"], series)
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]


def test_every_dashboard_panel_names_metrics_and_labels_the_registry_defines() -> None:
    series = defined()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert panels
    for panel in panels:
        for target in panel["targets"]:
            check(target["expr"], series)

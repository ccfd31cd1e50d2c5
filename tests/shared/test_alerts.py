"""The Prometheus alert rules in deploy/prometheus name only metrics, and labels, that shared/metrics.py defines."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Gauge, Histogram

from shared import metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "hsqbo-alerts.yml"
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


def test_every_alert_names_metrics_and_labels_the_registry_defines() -> None:
    series = defined()
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert rules
    for rule in rules:
        expr = rule["expr"]
        named = _METRIC.findall(expr)
        assert named, rule["alert"]
        assert set(named) <= set(series), (rule["alert"], set(named) - set(series))
        used = set(_LABEL_MATCH.findall(expr)) | {label.strip() for by in _BY.findall(expr) for label in by.split(",")}
        assert used <= set().union(*(series[name] for name in named)), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]

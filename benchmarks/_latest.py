"""`benchmarks/results/latest.json`: the headline figures of the last `make bench`, under the names issue 13 gives
them. Each benchmark adds its own keys to the one file, so one run fills it: `receiver` (requests/s of single events,
events/s of deliveries of 20, the bare Starlette endpoint's requests/s measured in the same run and the ratio) and
`sync` (`e2e_lag_ms`, `e2e_floor_ms`, `api_calls_per_change`, `qbo_reads_per_change`, `throughput`, `backfill`,
`live_lag_during_backfill_ms`), `rss_mb` (per process: each benchmark adds the processes it ran), and `machine` and
`measured_at` of the last write. A key a benchmark did not run keeps the figure of the run that last wrote it.

`publish` writes the figures into `benchmarks/README.md`'s table (between its `latest.json` markers) and into the
project README's comparison with the incumbent's "within 10 minutes", so both always quote the file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from benchmarks._report import RESULTS_DIR, machine

LATEST = RESULTS_DIR / "latest.json"
BENCH_README = RESULTS_DIR.parent / "README.md"
PROJECT_README = RESULTS_DIR.parent.parent / "README.md"
MERGED_KEYS = frozenset({"rss_mb"})  # one entry per process, from several benchmarks
# Every key issue 13 asks for, with the fields each holds (None: a number or a mapping of any keys).
FIELDS: dict[str, tuple[str, ...] | None] = {
    "e2e_lag_ms": ("to_qbo", "to_hubspot"),
    "e2e_floor_ms": ("to_qbo", "to_hubspot"),
    "api_calls_per_change": ("single", "burst", "minimum"),
    "qbo_reads_per_change": ("single", "burst"),
    "throughput": ("to_qbo_records_per_min", "to_hubspot_records_per_min", "qbo_batch_ceiling_per_min", "http_429"),
    "backfill": ("records", "records_per_min"),
    "live_lag_during_backfill_ms": ("p95",),
    "receiver": ("rps", "batch20_events_per_s", "baseline_rps", "ratio"),
    "rss_mb": None,
    "machine": None,
    "measured_at": None,
}
TABLE_START, TABLE_END = "<!-- latest.json table -->", "<!-- /latest.json table -->"
INCUMBENT_ROW = '| syncs "within 10 minutes" |'


def update_latest(figures: dict[str, Any], path: Path = LATEST) -> Path:
    document: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for key, value in figures.items():
        if key in MERGED_KEYS:
            document[key] = {**document.get(key, {}), **value}
        else:
            document[key] = value
    document["machine"] = machine()
    document["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def missing_fields(document: dict[str, Any]) -> list[str]:
    """Issue 13's fields the document lacks (`key` or `key.field`); lag percentiles as `e2e_lag_ms.to_qbo.p95`."""
    missing = []
    for key, fields in FIELDS.items():
        if key not in document:
            missing.append(key)
            continue
        missing += [f"{key}.{field}" for field in fields or () if field not in document[key]]
    for direction in ("to_qbo", "to_hubspot"):
        lags = document.get("e2e_lag_ms", {}).get(direction, {})
        missing += [f"e2e_lag_ms.{direction}.{q}" for q in ("p50", "p95", "p99") if q not in lags]
    return missing


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        value = f"{value:,.1f}".removesuffix(".0") if value >= 100 else f"{value:g}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def table(document: dict[str, Any]) -> str:
    """The figures as a Markdown table, beside issue 13's targets."""
    lag, floor = document["e2e_lag_ms"], document["e2e_floor_ms"]
    calls, reads = document["api_calls_per_change"], document["qbo_reads_per_change"]
    tput, back, receiver = document["throughput"], document["backfill"], document["receiver"]
    live = document["live_lag_during_backfill_ms"]["p95"]
    rows = [
        ("figure", "measured", "target"),
        ("---", "---:", "---"),
    ]
    for direction, name in (("to_qbo", "HubSpot → QBO"), ("to_hubspot", "QBO → HubSpot")):
        d = lag[direction]
        rows.append((f"edit lag {name}, p50 / p95 / p99", f"{_n(d['p50'])} / {_n(d['p95'])} / {_n(d['p99'])} ms",
                     f"p95 ≤ floor {_n(floor[direction])} ms + 250 ms"))  # fmt: skip
    rows += [
        ("API calls per change: single / burst (minimum)",
         f"{_n(calls['single'])} / {_n(calls['burst'])} ({_n(calls['minimum'])})", "≤ 2.2 / ≤ 1.2"),
        ("QBO reads per change: single / burst", f"{_n(reads['single'])} / {_n(reads['burst'])}", "≤ 1"),
        ("records/min into QBO (2,000 new contacts)", _n(tput["to_qbo_records_per_min"]),
         f"≥ 1,080 (batch ceiling {_n(tput['qbo_batch_ceiling_per_min'])})"),
        ("records/min into HubSpot (2,000 new customers)", _n(tput["to_hubspot_records_per_min"]), "≥ 5,000"),
        ("HTTP 429 answers", _n(tput["http_429"]), "0"),
        (f"initial sync of {_n(back['records'])} records, records/min", _n(back["records_per_min"]), "≥ 1,000"),
        ("live edit lag during that sync, p95", _n(live, " ms"), "≤ floor + 1 s"),
        ("receiver, single events req/s (bare Starlette; ratio)",
         f"{_n(receiver['rps'])} ({_n(receiver['baseline_rps'])}; {_n(receiver['ratio'])})", "ratio ≥ 0.5"),
        ("receiver, deliveries of 20, events/s", _n(receiver["batch20_events_per_s"]), "≥ 10 x single req/s"),
        ("RSS per process", ", ".join(f"{name} {_n(mb)} MiB" for name, mb in document["rss_mb"].items()), ""),
    ]  # fmt: skip
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    cpu = document["machine"]
    lines.append(f"\nMeasured {document['measured_at']}: {cpu['nproc']} CPUs ({cpu['cpu_model']}).")
    return "\n".join(lines)


def incumbent_cell(document: dict[str, Any]) -> str:
    """The project README's answer to the incumbent's "within 10 minutes", from the measured figures."""
    lag, tput, back = document["e2e_lag_ms"], document["throughput"], document["backfill"]
    return (
        f"event-driven: p95 {_n(lag['to_qbo']['p95'])} ms HubSpot → QBO and {_n(lag['to_hubspot']['p95'])} ms QBO →"
        f" HubSpot from an edit to the other side, with the sandboxes answering each API call in 120 ± 40 ms;"
        f" {_n(tput['to_qbo_records_per_min'])} new records/min into QBO, {_n(tput['to_hubspot_records_per_min'])}"
        f" into HubSpot; an initial sync at {_n(back['records_per_min'])} records/min"
        f" ([benchmarks](benchmarks/README.md), `make bench`)"
    )


def publish(path: Path = LATEST, bench_readme: Path = BENCH_README, project_readme: Path = PROJECT_README) -> None:
    """Write latest.json's figures into both READMEs (nothing when it lacks a field: a partial run)."""
    document = json.loads(path.read_text())
    if missing_fields(document):
        return
    text = bench_readme.read_text()
    pattern = re.compile(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), re.DOTALL)
    bench_readme.write_text(pattern.sub(lambda _: f"{TABLE_START}\n{table(document)}\n{TABLE_END}", text))
    lines = project_readme.read_text().splitlines(keepends=True)
    project_readme.write_text("".join(
        f"{INCUMBENT_ROW} {incumbent_cell(document)} |\n" if line.startswith(INCUMBENT_ROW) else line
        for line in lines
    ))  # fmt: skip

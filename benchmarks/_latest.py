"""`benchmarks/results/latest.json`: the headline figures of the last `make bench`, under the names issue 13 gives
them. Each benchmark adds its own keys to the one file, so one run fills it: `receiver` (requests/s of single events,
events/s of deliveries of 20, the bare Starlette endpoint's requests/s measured in the same run and the ratio),
`rss_mb` (per process: each benchmark adds the processes it ran), and `machine` and `measured_at` of the last write.
A key a benchmark did not run keeps the figure of the run that last wrote it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from benchmarks._report import RESULTS_DIR, machine

LATEST = RESULTS_DIR / "latest.json"
MERGED_KEYS = frozenset({"rss_mb"})  # one entry per process, from several benchmarks


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

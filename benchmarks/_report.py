"""What every result file carries besides its figures (the machine, when), the console table, the JSON file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks._processes import pinning

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_LIBRARIES = ("uvicorn", "starlette", "aiohttp", "aio-pika", "uvloop", "httptools")


@dataclasses.dataclass(frozen=True, slots=True)
class BenchmarkResult:
    name: str
    table: list[dict[str, Any]]  # one row per measured configuration, for the console
    details: dict[str, Any]  # everything measured, for the JSON file


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {name: metadata.version(name) for name in _LIBRARIES},
        "cpu_pinning": pinning(),
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Columns in first-seen order, right-aligned, numbers as given (benchmarks round them)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def write_result(result: BenchmarkResult, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    document = {
        "benchmark": result.name,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **result.details,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path

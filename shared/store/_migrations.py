"""Versioned schema migrations, one directory per SQL dialect: `migrations/<dialect>/NNNN_<name>.sql`, applied in
version order, each exactly once. Every version exists in both dialects and means the same tables on either backend,
so a schema version compares across backends."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: Dialect) -> list[Migration]:
    """Every migration shipped with the package for `dialect`, by version; two files with one version is a
    packaging bug."""
    found: dict[int, Migration] = {}
    for entry in (Path(__file__).with_name("migrations") / dialect).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two migrations with version {version}: {found[version].name}, {match.group(2)}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[version] for version in sorted(found)]

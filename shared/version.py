"""hsqbo's own version, as installed: `hsqbo --version` and the `hsqbo_build_info` metric say the same."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    try:
        return metadata.version("hsqbo")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"

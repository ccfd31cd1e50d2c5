from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that configure logging: the root logger and structlog as they were before."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configured = structlog.get_config()
    yield
    root.handlers[:], root.level = handlers, level
    structlog.configure(**configured)

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from services.run import with_local_app
from shared.config import Settings
from shared.domain import Provider
from shared.store import Credentials, Store, open_store


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that configure logging: the root logger and structlog as they were before."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configured = structlog.get_config()
    yield
    root.handlers[:], root.level = handlers, level
    structlog.configure(**configured)


@pytest.fixture
def connection_name() -> str:
    """The connection whose credentials `store` holds (a module names its own by overriding this)."""
    return "acme"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return with_local_app(Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}", api_rate_limits=False))


@pytest.fixture
async def store(settings: Settings, connection_name: str) -> AsyncIterator[Store]:
    """A SQLite store holding active credentials of `connection_name` at both providers."""
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as opened:
        for provider in Provider:
            credentials = Credentials(
                connection=connection_name, provider=provider, access_token="a-1", refresh_token="r-1", expires_at=4e9
            )
            await opened.save_credentials(credentials)
        yield opened

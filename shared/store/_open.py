"""`open_store(url)`: the backend named by the URL, connected and migrated."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from shared.errors import ConfigError
from shared.store._crypto import TokenCipher
from shared.store._postgres import PostgresStore
from shared.store._sqlite import SqliteStore
from shared.store._store import Store

_SQLITE = "sqlite://"
_MEMORY = (":memory:", "/:memory:")
_POSTGRES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/?#@]*:)[^@]*@")  # user:password@ in a URL


def open_store(
    url: str, *, encryption_key: SecretStr | None = None, clock: Callable[[], float] = time.time
) -> StoreOpening:
    """`store = await open_store(url)` or `async with open_store(url) as store:`.

    SQLite, the embedded store of one host: `sqlite:///relative/path.db` (to the working dir),
    `sqlite:////absolute/path.db`, `sqlite://:memory:`. Postgres, one store for processes on several hosts:
    `postgresql://user:password@host:port/database` (or `postgres://`; libpq's URL parameters, e.g. `?sslmode=`).
    `encryption_key` is needed only to store or read credentials; `clock` stamps updated_at and activity times.
    """
    cipher = TokenCipher(None if encryption_key is None else encryption_key.get_secret_value())
    return StoreOpening(lambda: _connect(url, cipher, clock))


class StoreOpening:
    """Awaitable once, or usable as an async context manager that closes the store on exit."""

    def __init__(self, connect: Callable[[], Coroutine[Any, Any, Store]]) -> None:
        self._connect = connect
        self._store: Store | None = None

    def __await__(self) -> Generator[Any, None, Store]:
        return self._connect().__await__()

    async def __aenter__(self) -> Store:
        self._store = await self
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.close()


async def _connect(url: str, cipher: TokenCipher, clock: Callable[[], float]) -> Store:
    store = await connect_backend(url, cipher, clock)
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


async def connect_backend(url: str, cipher: TokenCipher, clock: Callable[[], float]) -> Store:
    """The backend named by `url`, connected but not migrated."""
    if not url.startswith(_POSTGRES):
        return await SqliteStore.connect(_sqlite_path(url), cipher, clock)
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"HSQBO_STORE_URL is invalid: {_reason(exc, url)}") from None
    try:
        return await PostgresStore.connect(url, cipher, clock)
    except psycopg.OperationalError as exc:
        raise ConfigError(f"HSQBO_STORE_URL: cannot connect to the Postgres store: {_reason(exc, url)}") from None


def _sqlite_path(url: str) -> str:
    rest = url.removeprefix(_SQLITE)
    if rest == url or not rest.startswith((*_MEMORY, "/")):
        raise ConfigError(
            "HSQBO_STORE_URL is invalid: expected sqlite:///path/to/file.db or postgresql://user@host/database, "
            f"got {_redacted(repr(url), url)}"
        )
    if rest in _MEMORY:
        return ":memory:"
    path = Path(rest[1:])
    if not path.name:
        raise ConfigError(f"HSQBO_STORE_URL is invalid: no file name in {url!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def _reason(exc: psycopg.Error, url: str) -> str:
    """libpq's message on one line (it spans several), without the password."""
    return " ".join(_redacted(str(exc), url).split())


def _redacted(text: str, url: str) -> str:
    """`text` without the password `url` may carry: an error message never shows a secret."""
    return text.replace(url, _PASSWORD.sub(r"\1***@", url))

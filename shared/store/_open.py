"""`open_store(url)`: the backend named by the URL, connected and migrated."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import SecretStr

from shared.errors import ConfigError
from shared.store._crypto import TokenCipher
from shared.store._sqlite import SqliteStore
from shared.store._store import Store

_SQLITE = "sqlite://"
_MEMORY = (":memory:", "/:memory:")


def open_store(
    url: str, *, encryption_key: SecretStr | None = None, clock: Callable[[], float] = time.time
) -> StoreOpening:
    """`store = await open_store(url)` or `async with open_store(url) as store:`.

    `sqlite:///relative/path.db` (to the working dir), `sqlite:////absolute/path.db`, `sqlite://:memory:`.
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
    store = await SqliteStore.connect(_sqlite_path(url), cipher, clock)
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store


def _sqlite_path(url: str) -> str:
    if url.split(":", 1)[0] in ("postgres", "postgresql"):
        raise ConfigError("HSQBO_STORE_URL: the Postgres store is not implemented yet; use sqlite:///path")
    rest = url.removeprefix(_SQLITE)
    if rest == url or not rest.startswith((*_MEMORY, "/")):
        raise ConfigError(f"HSQBO_STORE_URL is invalid: expected sqlite:///path/to/file.db, got {url!r}")
    if rest in _MEMORY:
        return ":memory:"
    path = Path(rest[1:])
    if not path.name:
        raise ConfigError(f"HSQBO_STORE_URL is invalid: no file name in {url!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)

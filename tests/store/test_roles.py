"""The store's interface is its roles: each method in one role protocol, `Store` adding only its lifetime."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from services.poller._poller import PollerStore
from services.status._app import StatusStore
from services.worker._engine import EngineStore
from services.worker._scheduler import SchedulerStore
from services.worker._worker import WorkerStore
from shared.connections import ContextStore, FactoryStore
from shared.quotas import LimitBackend
from shared.store import (
    ActivityLog,
    CredentialStore,
    Cursors,
    LinkStore,
    Locks,
    PendingWork,
    Reconciliations,
    Store,
)

ROLES = (LinkStore, ActivityLog, PendingWork, CredentialStore, LimitBackend, Locks, Cursors, Reconciliations)


def methods(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")}


def test_each_method_is_in_exactly_one_role_and_the_store_adds_only_its_lifetime() -> None:
    every = [name for role in ROLES for name in methods(role)]

    assert len(every) == len(set(every))
    assert methods(Store) == {"migrate", "close"}


# The parts that use the store, each typed against the roles it uses; only the composition roots (they open the
# store, and own its lifetime) hold the whole `Store`.
NARROWED = ("services/worker", "services/poller", "services/status", "shared/connections.py")
OPENERS = {"services/poller/__init__.py"}


def _imports_whole_store(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.ImportFrom) and node.module == "shared.store" and "Store" in [a.name for a in node.names]
        for node in ast.walk(tree)
    )


def test_the_worker_poller_status_page_and_contexts_type_against_roles_not_the_whole_store() -> None:
    root = Path(__file__).parents[2]
    files = [p for part in NARROWED for p in ((root / part).rglob("*.py") if (root / part).is_dir() else [root / part])]
    whole = {str(p.relative_to(root)) for p in files if _imports_whole_store(p)}

    assert len(files) > 20
    assert whole == OPENERS


INTERSECTIONS = (ContextStore, FactoryStore, EngineStore, SchedulerStore, WorkerStore, PollerStore, StatusStore)


def test_the_intersections_of_roles_add_no_method() -> None:
    for intersection in INTERSECTIONS:
        assert methods(intersection) == set(), intersection

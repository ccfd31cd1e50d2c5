"""The store's interface is its roles: each method in one role protocol, `Store` adding only its lifetime."""

from __future__ import annotations

import inspect

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

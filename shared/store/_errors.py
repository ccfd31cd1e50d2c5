"""Store errors. They extend the tree drawn in `shared.errors`:

HsqboError
└── StoreError            the store refused an operation
    ├── DuplicateLink    another link already holds this (connection, kind, hubspot_id | qbo_id)
    ├── StaleLink        the link changed (or vanished) since it was read: re-read and decide again
    └── SchemaTooNew     the store was migrated by newer code than this process runs
"""

from __future__ import annotations

from shared.errors import HsqboError


class StoreError(HsqboError):
    pass


class DuplicateLink(StoreError):
    pass


class StaleLink(StoreError):
    pass


class SchemaTooNew(StoreError):
    pass

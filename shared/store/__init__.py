"""The store: what the sync remembers between events, shared by every process.

- links: the id map, one row per synced pair of records, with what was last synced on each side;
- activity: an append-only, pruned history per record, for the status page;
- pending work: debounce and a per-record lease, so one process handles a record's changes at a time; what a
  failing record waits for (`shared.domain.Awaited`), so the record it waits for wakes it;
- credentials: OAuth tokens per connection and provider, encrypted at rest (HSQBO_ENCRYPTION_KEY);
- cursors: small per-connection values for the poller;
- reconciliations: the last reports of the poller's reconciliation per connection;
- the console: object on/off switches, worker and poller heartbeats, records synced (the charts), the first sync's
  plan;
- api usage: provider calls per account, provider, kind (read / write) and month (`api_usage`: the status page, the
  QBO read budget).

Each of these is a role protocol (`LinkStore`, `ActivityLog`, `PendingWork`, `CredentialStore`, `Locks`, `Cursors`,
`Reconciliations`, and the status page's `ObjectSwitches`, `Heartbeats`, `RateUses`, `FirstSyncs`; rate limits:
`shared.quotas.LimitBackend`) that callers type against; `Store` is all of them.
`open_store(url)` picks the backend from the URL: SQLite (`sqlite://`), the embedded store of one host, or Postgres
(`postgresql://`), one store for processes on several hosts. The interface, `Store`, is backend-neutral.
Timestamps are epoch seconds (float, UTC) everywhere.
"""

from shared.store._errors import DuplicateLink, SchemaTooNew, StaleLink, StoreError
from shared.store._models import (
    Activity,
    Candidate,
    Credentials,
    CredentialStatus,
    FirstSync,
    Heartbeat,
    Link,
    LinkStatus,
    Pending,
    Reconciliation,
    RepointOutcome,
    RepointResult,
    ReviewDecision,
    SyncedRecord,
)
from shared.store._open import StoreOpening, open_store
from shared.store._store import (
    ActivityLog,
    CredentialStore,
    Cursors,
    FirstSyncs,
    Heartbeats,
    LinkStore,
    Locks,
    ObjectSwitches,
    PendingWork,
    RateUses,
    Reconciliations,
    Store,
)

__all__ = [
    "Activity",
    "ActivityLog",
    "Candidate",
    "CredentialStatus",
    "CredentialStore",
    "Credentials",
    "Cursors",
    "DuplicateLink",
    "FirstSync",
    "FirstSyncs",
    "Heartbeat",
    "Heartbeats",
    "Link",
    "LinkStatus",
    "LinkStore",
    "Locks",
    "ObjectSwitches",
    "Pending",
    "PendingWork",
    "RateUses",
    "Reconciliation",
    "Reconciliations",
    "RepointOutcome",
    "RepointResult",
    "ReviewDecision",
    "SchemaTooNew",
    "StaleLink",
    "Store",
    "StoreError",
    "StoreOpening",
    "SyncedRecord",
    "open_store",
]

-- The status page's console (services/status/_overview.py, _first_sync.py):
-- object_switches: an operator's on/off per connection and object; no row is on. Off: the worker defers the
--   object's work until it is switched back on.
-- heartbeats: one row per worker or poller process, written every few seconds; `detail` (JSON object) holds what the
--   process saw last (a worker: the last webhook per connection and object; a poller: the last poll per connection).
-- synced_records: one row per record a worker wrote to the other side (when, and the end-to-end lag when the change's
--   source time is known), for the page's charts; the worker keeps the last two days.
-- first_syncs: the initial sync's plan of each connection (JSON), reviewed on the page and confirmed once.
CREATE TABLE object_switches (
    connection TEXT NOT NULL,
    kind TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (connection, kind)
) WITHOUT ROWID;

CREATE TABLE heartbeats (
    process TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    started_at REAL NOT NULL,
    beat_at REAL NOT NULL,
    detail TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE synced_records (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    lag_seconds REAL
);
CREATE INDEX synced_records_by_at ON synced_records (connection, at);

CREATE TABLE first_syncs (
    connection TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    planned_at REAL NOT NULL,
    applied_at REAL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;

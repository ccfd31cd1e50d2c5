-- Reconciliation reports (services/poller/_reconcile.py): per run of one connection, when it ran, the counts per
-- object (JSON object: kind -> {"checked", "agreed", "drifted", "missing"}) and the drifted records with the fields
-- that differ (JSON array; values cut short). The store keeps the last few per connection.
CREATE TABLE reconciliations (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    dry_run INTEGER NOT NULL,
    objects TEXT NOT NULL,
    drifted TEXT NOT NULL
);
CREATE INDEX reconciliations_by_connection ON reconciliations (connection, id);

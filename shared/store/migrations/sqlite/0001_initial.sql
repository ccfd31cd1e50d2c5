-- Links, activity, pending work, credentials, cursors. Timestamps are epoch seconds (REAL).
-- Enumerated columns (kind, status, origin...) are validated by the code, not by CHECK constraints, so a new value
-- needs no table rebuild.

CREATE TABLE links (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    kind TEXT NOT NULL,
    hubspot_id TEXT,
    qbo_id TEXT,
    origin TEXT NOT NULL,
    hubspot_version TEXT,
    qbo_version TEXT,
    hubspot_hash TEXT,
    qbo_hash TEXT,
    qbo_written_sync_token TEXT,
    last_synced_at REAL,
    status TEXT NOT NULL,
    error_category TEXT,
    error_message TEXT,
    revision INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
-- NULL ids (record not created yet on that side) do not collide.
CREATE UNIQUE INDEX links_by_hubspot_id ON links (connection, kind, hubspot_id);
CREATE UNIQUE INDEX links_by_qbo_id ON links (connection, kind, qbo_id);
CREATE INDEX links_by_status ON links (connection, kind, status);

CREATE TABLE activity (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    connection TEXT NOT NULL,
    kind TEXT NOT NULL,
    link_id INTEGER REFERENCES links (id) ON DELETE SET NULL,
    hubspot_id TEXT,
    qbo_id TEXT,
    direction TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX activity_by_hubspot_id ON activity (connection, kind, hubspot_id, at);
CREATE INDEX activity_by_qbo_id ON activity (connection, kind, qbo_id, at);
CREATE INDEX activity_by_link ON activity (link_id);
CREATE INDEX activity_by_at ON activity (at);

CREATE TABLE pending (
    connection TEXT NOT NULL,
    kind TEXT NOT NULL,
    side TEXT NOT NULL,
    object_id TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    generation INTEGER NOT NULL,
    hints TEXT NOT NULL,  -- JSON object
    owner TEXT,
    lease_expires_at REAL,
    PRIMARY KEY (connection, kind, side, object_id)
) WITHOUT ROWID;
CREATE INDEX pending_by_last_seen ON pending (last_seen);
CREATE INDEX pending_by_first_seen ON pending (first_seen);

CREATE TABLE credentials (
    connection TEXT NOT NULL,
    provider TEXT NOT NULL,
    access_token TEXT NOT NULL,  -- Fernet ciphertext
    refresh_token TEXT NOT NULL,  -- Fernet ciphertext
    refresh_token_digest TEXT NOT NULL,  -- keyed HMAC, for compare-and-swap
    expires_at REAL,
    refresh_expires_at REAL,
    extra TEXT NOT NULL,  -- JSON object, not secret
    status TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (connection, provider)
) WITHOUT ROWID;

CREATE TABLE cursors (
    connection TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (connection, name)
) WITHOUT ROWID;

-- A pending key names the part that changed (a line item of an invoice...) in a column of its own instead of a prefix
-- of the object id: "line_item:123" becomes part 'line_item', object_id '123'. A record's own key has part '' (a key
-- column is never NULL). SQLite changes a primary key by rebuilding the table.
CREATE TABLE pending_with_part (
    connection TEXT NOT NULL,
    kind TEXT NOT NULL,
    side TEXT NOT NULL,
    part TEXT NOT NULL DEFAULT '',
    object_id TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    generation INTEGER NOT NULL,
    hints TEXT NOT NULL,  -- JSON object
    owner TEXT,
    lease_expires_at REAL,
    PRIMARY KEY (connection, kind, side, part, object_id)
) WITHOUT ROWID;
INSERT INTO pending_with_part (connection, kind, side, part, object_id, first_seen, last_seen, generation, hints,
                               owner, lease_expires_at)
SELECT connection, kind, side, '', object_id, first_seen, last_seen, generation, hints, owner, lease_expires_at
FROM pending;
UPDATE pending_with_part
SET part = substr(object_id, 1, instr(object_id, ':') - 1), object_id = substr(object_id, instr(object_id, ':') + 1)
WHERE side = 'hubspot' AND substr(object_id, 1, instr(object_id, ':') - 1) IN ('line_item', 'discount', 'fee', 'tax',
                                                                                 'invoice');
DROP TABLE pending;
ALTER TABLE pending_with_part RENAME TO pending;
CREATE INDEX pending_by_last_seen ON pending (last_seen);
CREATE INDEX pending_by_first_seen ON pending (first_seen);

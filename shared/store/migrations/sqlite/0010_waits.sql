-- What a failing record waits for (an invoice its customer, a payment its invoice): one row per waiting link, the
-- waiting record's side, and the awaited record by its kind and its id on one side. When the awaited record is
-- created or linked, the worker wakes the links waiting for it, found by the index.
CREATE TABLE waits (
    link_id INTEGER PRIMARY KEY REFERENCES links (id) ON DELETE CASCADE,
    side TEXT NOT NULL,
    connection TEXT NOT NULL,
    awaited_kind TEXT NOT NULL,
    awaited_side TEXT NOT NULL,
    awaited_id TEXT NOT NULL
);
CREATE INDEX waits_by_awaited ON waits (connection, awaited_kind, awaited_side, awaited_id);

-- Records failing for want of another before this version named it only in their message ("QuickBooks customer 58
-- has no HubSpot contact yet", "HubSpot invoice 7's ..."): the record named there is what they wait for.
INSERT INTO waits (link_id, side, connection, awaited_kind, awaited_side, awaited_id)
SELECT id, origin, connection, awaited_kind, awaited_side, substr(rest, 1, instr(replace(rest, '''', ' ') || ' ', ' ') - 1)
FROM (
    SELECT
        id, origin, connection,
        CASE WHEN error_category = 'customer_not_synced' THEN 'contact' ELSE 'invoice' END AS awaited_kind,
        CASE WHEN error_message LIKE 'HubSpot %' THEN 'hubspot' ELSE 'quickbooks' END AS awaited_side,
        CASE
            WHEN error_message LIKE 'QuickBooks customer %' THEN substr(error_message, 21)
            WHEN error_message LIKE 'QuickBooks invoice %' THEN substr(error_message, 20)
            ELSE substr(error_message, 17)
        END AS rest
    FROM links
    WHERE status = 'failing' AND (
        (error_category = 'customer_not_synced'
            AND (error_message LIKE 'QuickBooks customer %' OR error_message LIKE 'HubSpot contact %'))
        OR (error_category = 'invoice_not_synced'
            AND (error_message LIKE 'QuickBooks invoice %' OR error_message LIKE 'HubSpot invoice %'))
    )
) AS named
WHERE substr(rest, 1, instr(replace(rest, '''', ' ') || ' ', ' ') - 1) <> '';

-- The links keeping the intent of a QBO create whose answer may have been lost (no QBO id yet), by the content hash
-- the intent records: a QBO record with no link looks here before it is made in HubSpot (`creates_in_doubt`).
CREATE INDEX links_in_doubt ON links (connection, kind, qbo_hash) WHERE qbo_id IS NULL;

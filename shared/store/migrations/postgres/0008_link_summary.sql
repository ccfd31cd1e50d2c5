-- What a person recognises a record by (services/worker/_summary.py): `label`, one searchable line (a contact's name
-- and email, an item's name and SKU, an invoice's number, customer and total, a payment's amount and date), and
-- `summary`, an object of what each side showed at its last apply, what the last sync changed and what a failing
-- record waits for. Written by the worker after each apply and by the reconciliation (Store.set_summary); the status
-- page lists records by `updated_at`, the last change, and finds them by `label_key` (the label case-folded by the
-- store, since SQLite's LOWER folds ASCII only).
ALTER TABLE links ADD COLUMN label TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN label_key TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';
CREATE INDEX links_recent ON links (connection, updated_at);

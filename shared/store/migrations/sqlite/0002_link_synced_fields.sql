-- The mapped field values both sides agreed on at the last sync (JSON object, canonical strings). The worker merges
-- three ways against it: a field changed on one side only wins; changed on both, the conflict winner decides.
ALTER TABLE links ADD COLUMN synced TEXT NOT NULL DEFAULT '{}';

-- Review (status needs_review): the records on the other side a record could be linked to (JSON array of
-- {"id", "label"}), and the operator's decision once taken (pick, create_new, exclude; review_pick: the id picked).
ALTER TABLE links ADD COLUMN candidates JSONB NOT NULL DEFAULT '[]';
ALTER TABLE links ADD COLUMN review_decision TEXT;
ALTER TABLE links ADD COLUMN review_pick TEXT;

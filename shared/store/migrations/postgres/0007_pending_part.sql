-- A pending key names the part that changed (a line item of an invoice...) in a column of its own instead of a prefix
-- of the object id: "line_item:123" becomes part 'line_item', object_id '123'. A record's own key has part '' (a key
-- column is never NULL).
ALTER TABLE pending ADD COLUMN part TEXT NOT NULL DEFAULT '';
UPDATE pending
SET part = split_part(object_id, ':', 1), object_id = substr(object_id, strpos(object_id, ':') + 1)
WHERE side = 'hubspot' AND strpos(object_id, ':') > 0
  AND split_part(object_id, ':', 1) IN ('line_item', 'discount', 'fee', 'tax', 'invoice');
ALTER TABLE pending DROP CONSTRAINT pending_pkey;
ALTER TABLE pending ADD PRIMARY KEY (connection, kind, side, part, object_id);

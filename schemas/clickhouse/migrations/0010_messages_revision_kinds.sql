-- Revisions are entries of their own: an edit carries the new content, a
-- recall none. Analysts see every version; reads apply them.
ALTER TABLE {database}.messages MODIFY COLUMN kind Enum8('message' = 1, 'created' = 2, 'joined' = 3, 'left' = 4, 'kicked' = 5, 'edit' = 6, 'recall' = 7)

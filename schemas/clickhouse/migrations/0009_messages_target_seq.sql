-- Edits and recalls (kind 'edit' or 'recall') name the seq of the message
-- they revise; 0 for every other entry.
ALTER TABLE {database}.messages ADD COLUMN target_seq UInt64 DEFAULT 0

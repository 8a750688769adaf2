-- The epoch of the conversation's stream each entry belongs to
-- (SequencedRecord.epoch; 0 for entries from before epochs). A stream
-- rebuilt from nothing restarts at seq 1 under a larger epoch: its rows are
-- inserted after the old epoch's, so a merge keeps them at reused seqs, and
-- reads filter to one epoch (the largest) until then.
ALTER TABLE {database}.messages ADD COLUMN epoch UInt64 DEFAULT 0

-- Each user's read position per conversation: the read receipts the
-- sequencer writes (notices, seq 0) when a member's position advances.
-- Positions only grow, so ReplacingMergeTree(read_seq) keeps the highest and
-- reads take max(read_seq), right before and after merges. epoch is the
-- stream's epoch (SequencedRecord.epoch; 0 before epochs): a stream rebuilt
-- under a new epoch starts positions afresh, so it is part of the key.
CREATE TABLE IF NOT EXISTS {database}.read_positions
(
    conversation_id  String,
    user_id          String,
    epoch            UInt64,
    read_seq         UInt64,
    device_id        String,
    sequenced_at_ms  UInt64,
    inserted_at      DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(read_seq)
ORDER BY (conversation_id, user_id, epoch)

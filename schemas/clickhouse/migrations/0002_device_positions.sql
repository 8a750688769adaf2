-- Each device's acknowledged position per conversation: the last seq it
-- confirmed it has shown. A reconnect to any gateway resumes after it (I5).
-- ReplacingMergeTree(seq) keeps the highest; reads take max(seq), which is
-- right before and after merges.
CREATE TABLE IF NOT EXISTS {database}.device_positions
(
    user_id         String,
    device_id       String,
    conversation_id String,
    seq             UInt64,
    updated_at      DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY (user_id, device_id, conversation_id)

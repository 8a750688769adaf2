-- History of every sequenced entry: chat messages and membership events in one
-- table, in the order the sequencer gave them. ReplacingMergeTree on
-- (conversation_id, seq) collapses the duplicate rows a sink writes after a
-- crash (I7); exact reads use FINAL or a dedup-safe form (argMax, LIMIT 1 BY).
-- A given (conversation_id, seq) always carries the same sequenced_at, so its
-- duplicates land in the same partition and merge.
CREATE TABLE IF NOT EXISTS {database}.messages
(
    conversation_id     String,
    seq                 UInt64,
    msg_id              String,
    client_msg_id       String,
    sender_user_id      String,
    sender_device_id    String,
    client_seq          UInt64,
    kind                Enum8('message' = 1, 'created' = 2, 'joined' = 3, 'left' = 4, 'kicked' = 5),
    member_user_ids     Array(String),
    title               String,
    content_type        String,
    body                String,
    predecessor_missing UInt8,
    received_at_ms      UInt64,
    sequenced_at_ms     UInt64,
    sequenced_at        DateTime('UTC') DEFAULT toDateTime(intDiv(sequenced_at_ms, 1000), 'UTC'),
    inserted_at         DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(sequenced_at)
ORDER BY (conversation_id, seq)
SETTINGS index_granularity = 8192

-- Each user's membership events per conversation (created, joined, left,
-- kicked), keyed for the read path: a user's periods in a conversation
-- are a key lookup instead of a pass over every row of the conversation.
-- Filled by the view of 0007, backfilled by 0008. Repeats collapse; reads
-- ignore repeated seqs.
CREATE TABLE IF NOT EXISTS {database}.membership_events
(
    conversation_id String,
    user_id         String,
    seq             UInt64,
    kind            Enum8('message' = 1, 'created' = 2, 'joined' = 3, 'left' = 4, 'kicked' = 5)
)
ENGINE = ReplacingMergeTree()
ORDER BY (conversation_id, user_id, seq)

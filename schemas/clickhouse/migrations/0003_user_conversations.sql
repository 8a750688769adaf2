-- The conversations each user belongs to or belonged to, for the gateways'
-- reconnect path (GET /v1/users/{user}/conversations): a key lookup
-- instead of a scan of every membership row. Filled from messages by the
-- view of 0004 (groups: the users of created and joined events; direct
-- conversations: the two users of "dm:<a>:<b>", at its seq 1) and backfilled
-- by 0005. Repeats collapse; reads use DISTINCT.
CREATE TABLE IF NOT EXISTS {database}.user_conversations
(
    user_id         String,
    conversation_id String
)
ENGINE = ReplacingMergeTree()
ORDER BY (user_id, conversation_id)

-- Backfills membership_events from the messages stored before 0007's view
-- existed (rows the view wrote meanwhile are repeated: harmless).
INSERT INTO {database}.membership_events
SELECT conversation_id, user_id, seq, kind
FROM {database}.messages
ARRAY JOIN member_user_ids AS user_id
WHERE kind != 'message'

-- Keeps membership_events up to date with every insert into messages.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.membership_events_view TO {database}.membership_events AS
SELECT conversation_id, user_id, seq, kind
FROM {database}.messages
ARRAY JOIN member_user_ids AS user_id
WHERE kind != 'message'

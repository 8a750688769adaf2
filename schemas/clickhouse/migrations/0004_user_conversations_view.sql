-- Keeps user_conversations up to date with every insert into messages.
-- User ids never contain ':', so a direct conversation's id splits into
-- "dm", a and b.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.user_conversations_view TO {database}.user_conversations AS
SELECT user_id, conversation_id
FROM {database}.messages
ARRAY JOIN if(kind IN ('created', 'joined'), member_user_ids,
              if(seq = 1 AND substring(conversation_id, 1, 3) = 'dm:',
                 arraySlice(splitByChar(':', conversation_id), 2, 2), emptyArrayString())) AS user_id

-- Backfills user_conversations from the messages stored before 0004's view
-- existed. Rows the view wrote meanwhile are repeated here: harmless, reads
-- use DISTINCT and the engine collapses them.
INSERT INTO {database}.user_conversations
SELECT user_id, conversation_id
FROM {database}.messages
ARRAY JOIN if(kind IN ('created', 'joined'), member_user_ids,
              if(seq = 1 AND substring(conversation_id, 1, 3) = 'dm:',
                 arraySlice(splitByChar(':', conversation_id), 2, 2), emptyArrayString())) AS user_id

-- messages_per_day_per_conversation: chat messages per UTC day per conversation.
--
-- Answers: how many chat messages (kind 'message'; membership events are not
-- counted) each conversation got on each UTC day of a date range. Days and
-- conversations without a message are absent.
--
-- Parameters, in order:
--   1. first day, inclusive: a 'YYYY-MM-DD' string (UTC)
--   2. last day, inclusive: a 'YYYY-MM-DD' string (UTC)
--
-- Columns: day Date, conversation_id String, messages UInt64;
-- ordered by day, then conversation_id.
--
-- Dedup: FINAL, so each (conversation_id, seq) counts once however many
-- copies of it still await a merge.
SELECT
    toDate(sequenced_at) AS day,
    conversation_id,
    count() AS messages
FROM {database}.messages AS m FINAL
WHERE kind = 'message'
    AND toDate(sequenced_at) >= toDate(?)
    AND toDate(sequenced_at) <= toDate(?)
GROUP BY day, conversation_id
ORDER BY day, conversation_id

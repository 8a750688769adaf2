-- daily_active_senders: distinct senders of chat messages per UTC day.
--
-- Answers: how many different users sent at least one chat message (kind
-- 'message', in any conversation) on each UTC day of a date range, and how
-- many chat messages were sent that day. Days without a message are absent.
--
-- Parameters, in order:
--   1. first day, inclusive: a 'YYYY-MM-DD' string (UTC)
--   2. last day, inclusive: a 'YYYY-MM-DD' string (UTC)
--
-- Columns: day Date, senders UInt64, messages UInt64; ordered by day.
--
-- Dedup: FINAL, so a message that still has copies awaiting a merge is
-- counted once in messages.
SELECT
    toDate(sequenced_at) AS day,
    uniqExact(sender_user_id) AS senders,
    count() AS messages
FROM {database}.messages AS m FINAL
WHERE kind = 'message'
    AND toDate(sequenced_at) >= toDate(?)
    AND toDate(sequenced_at) <= toDate(?)
GROUP BY day
ORDER BY day

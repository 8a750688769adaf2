-- group_size_over_time: a group's member count after each membership event.
--
-- Answers: for one conversation, how many members it had right after each
-- membership event, in seq order. 'created' and 'joined' add the number of
-- users in member_user_ids, 'left' and 'kicked' subtract it; the running
-- sum is computed with arrayCumSum over the events sorted by seq (ClickHouse
-- 18.16 has no window functions).
--
-- Parameters, in order:
--   1. conversation id: a string such as 'g:team'
--
-- Columns: seq UInt64, sequenced_at DateTime('UTC'), kind Enum8 (created,
-- joined, left, kicked), size Int64 (members after the event); ordered by
-- seq. A conversation without membership events (a direct one) gives no rows.
--
-- Dedup: FINAL, so an event that still has copies awaiting a merge changes
-- the size once.
SELECT
    seq,
    sequenced_at,
    kind,
    size
FROM
(
    SELECT
        arraySort(groupArray((seq, sequenced_at, kind, multiIf(
            kind IN ('created', 'joined'), toInt64(length(member_user_ids)),
            -toInt64(length(member_user_ids)))))) AS events,
        arrayCumSum(arrayMap(e -> tupleElement(e, 4), events)) AS sizes
    FROM {database}.messages AS m FINAL
    WHERE conversation_id = ?
        AND kind != 'message'
)
ARRAY JOIN
    arrayMap(e -> tupleElement(e, 1), events) AS seq,
    arrayMap(e -> tupleElement(e, 2), events) AS sequenced_at,
    arrayMap(e -> tupleElement(e, 3), events) AS kind,
    sizes AS size
ORDER BY seq

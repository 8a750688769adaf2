-- sequencing_latency_by_hour: how long entries waited to be sequenced, per UTC hour.
--
-- Answers: for each UTC hour (of sequencing) in a date range, how many
-- entries (chat messages and membership events) were sequenced and the
-- latency sequenced_at_ms - received_at_ms in milliseconds: median, 99th
-- percentile and maximum. The latency is signed (Int64): received_at_ms comes
-- from the ingest host's clock and sequenced_at_ms from the sequencer's, so
-- clock skew can make it negative. quantileExact(level) is the value at
-- position floor(level * n) (from 0) of the n sorted latencies: for an even
-- n the median is the upper of the two middle values.
--
-- Parameters, in order:
--   1. first day, inclusive: a 'YYYY-MM-DD' string (UTC)
--   2. last day, inclusive: a 'YYYY-MM-DD' string (UTC)
--
-- Columns: hour DateTime('UTC') (start of the hour), entries UInt64,
-- p50_ms Int64, p99_ms Int64, max_ms Int64; ordered by hour.
--
-- Dedup: FINAL, so an entry that still has copies awaiting a merge is one
-- sample, not several.
SELECT
    toStartOfHour(sequenced_at) AS hour,
    count() AS entries,
    quantileExact(0.5)(toInt64(sequenced_at_ms) - toInt64(received_at_ms)) AS p50_ms,
    quantileExact(0.99)(toInt64(sequenced_at_ms) - toInt64(received_at_ms)) AS p99_ms,
    max(toInt64(sequenced_at_ms) - toInt64(received_at_ms)) AS max_ms
FROM {database}.messages AS m FINAL
WHERE toDate(sequenced_at) >= toDate(?)
    AND toDate(sequenced_at) <= toDate(?)
GROUP BY hour
ORDER BY hour

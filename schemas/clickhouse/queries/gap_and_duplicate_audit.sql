-- gap_and_duplicate_audit: contiguity and duplicates of every conversation.
--
-- Answers, per conversation (I1, I7): the highest seq, how many distinct
-- seqs are stored, how many rows (copies awaiting a merge included), how
-- many seqs carry more than one distinct entry, and how many seqs between 1
-- and the highest are missing. A healthy conversation has
-- distinct_seqs = max_seq, conflicting_seqs = 0 and missing_seqs = 0;
-- rows > distinct_seqs alone only means identical copies not merged yet.
--
-- An entry's identity is (msg_id, sender_user_id, sender_device_id,
-- client_msg_id): the sequencer derives msg_id from (conversation, seq), so
-- two different sends given the same seq can share a msg_id; they still
-- differ in sender or client_msg_id. A merge keeps one of two conflicting
-- entries and drops the other, so a conflict shows only until its parts
-- merge. Missing seqs after the highest stored one cannot be seen here.
--
-- Parameters: none.
--
-- Columns: conversation_id String, max_seq UInt64, distinct_seqs UInt64,
-- rows UInt64, conflicting_seqs UInt64, missing_seqs UInt64; ordered by
-- conversation_id.
--
-- Dedup: deliberately without FINAL, since it counts the copies; the counts
-- of seqs are over distinct (conversation_id, seq). Rows with seq 0 are not
-- entries and are left out. analysis/audit lists the missing ranges and the
-- conflicting entries themselves.
SELECT
    conversation_id,
    max(seq) AS max_seq,
    count() AS distinct_seqs,
    sum(seq_rows) AS rows,
    countIf(identities > 1) AS conflicting_seqs,
    toUInt64(max(seq) - count()) AS missing_seqs
FROM
(
    SELECT
        conversation_id,
        seq,
        count() AS seq_rows,
        uniqExact(msg_id, sender_user_id, sender_device_id, client_msg_id) AS identities
    FROM {database}.messages
    WHERE seq > 0
    GROUP BY conversation_id, seq
)
GROUP BY conversation_id
ORDER BY conversation_id

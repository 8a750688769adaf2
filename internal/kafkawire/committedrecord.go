package kafkawire

import (
	"context"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
)

// fetchBytes bounds one fetch of CommittedRecordIn: its answer is
// usually the first batch (the broker returns at least one, however
// large), so it need not be more.
const fetchBytes = 64 << 10

// CommittedRecordIn reports whether topic/p holds, at an offset in
// [from, to), a record a read_committed consumer receives: neither a
// transaction marker nor part of an aborted transaction. A consumer that
// committed from as its position has received everything before to when
// there is none: comparing offsets alone cannot tell, since a partition
// may end in markers and aborted records that no consumer ever receives
// (a sequencer killed mid-transaction leaves them).
func CommittedRecordIn(ctx context.Context, client sarama.Client, topic string, p int32, from, to int64) (bool, error) {
	for from < to {
		var block *sarama.FetchResponseBlock
		err := whileLeaderless(ctx, func() error {
			broker, err := client.Leader(topic, p)
			if err != nil {
				return err
			}
			req := &sarama.FetchRequest{Version: 11, Isolation: sarama.ReadCommitted, MaxBytes: fetchBytes}
			req.AddBlock(topic, p, from, fetchBytes, -1)
			resp, err := broker.Fetch(req)
			if err != nil {
				return err
			}
			if block = resp.GetBlock(topic, p); block == nil {
				return sarama.ErrIncompleteResponse
			}
			if block.Err != sarama.ErrNoError {
				return block.Err
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("read %s/%d at %d: %w", topic, p, from, err)
		}
		next, found := scanCommitted(block, from, to)
		if found {
			return true, nil
		}
		if next <= from {
			return false, fmt.Errorf("read %s/%d: nothing at offset %d before %d", topic, p, from, to)
		}
		from = next
	}
	return false, nil
}

// scanCommitted looks through a read_committed fetch's batches for a
// record a consumer would receive in [from, to), as sarama's consumer
// filters them: a producer's batches are aborted from the first offset of
// one of its aborted transactions until its abort marker. next is the
// offset after the last batch.
func scanCommitted(block *sarama.FetchResponseBlock, from, to int64) (next int64, found bool) {
	aborted := slices.Clone(block.AbortedTransactions)
	slices.SortFunc(aborted, func(a, b *sarama.AbortedTransaction) int { return int(a.FirstOffset - b.FirstOffset) })
	abortedBy := map[int64]bool{}
	next = from
	for _, recs := range block.RecordsSet {
		b := recs.RecordBatch
		if b == nil { // an old message set: not written by this project; count it as data
			return next, true
		}
		last := b.FirstOffset + int64(b.LastOffsetDelta)
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			abortedBy[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		switch {
		case b.Control:
			if len(b.Records) > 0 && isAbortMarker(b.Records[0]) {
				delete(abortedBy, b.ProducerID)
			}
		case b.IsTransactional && abortedBy[b.ProducerID]:
		default:
			for _, r := range b.Records {
				if o := b.FirstOffset + r.OffsetDelta; o >= from && o < to {
					return next, true
				}
			}
		}
		next = max(next, last+1)
	}
	return next, false
}

// isAbortMarker: a control record's key is a version (int16) and a type
// (int16), 0 for abort.
func isAbortMarker(r *sarama.Record) bool {
	return len(r.Key) >= 4 && r.Key[2] == 0 && r.Key[3] == 0
}

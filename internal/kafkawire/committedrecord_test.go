package kafkawire

import (
	"testing"

	"github.com/IBM/sarama"
)

// TestScanCommittedFiltersAsAReadCommittedConsumer: the batches of one
// fetch, as the broker lays them out, with the records sarama's consumer
// would hand over.
func TestScanCommittedFiltersAsAReadCommittedConsumer(t *testing.T) {
	data := func(pid, first int64, n int32) *sarama.Records {
		b := &sarama.RecordBatch{FirstOffset: first, LastOffsetDelta: n - 1, ProducerID: pid, IsTransactional: true}
		for i := range n {
			b.Records = append(b.Records, &sarama.Record{OffsetDelta: int64(i), Key: []byte("g:x")})
		}
		return &sarama.Records{RecordBatch: b}
	}
	marker := func(pid, at int64, typ byte) *sarama.Records {
		return &sarama.Records{RecordBatch: &sarama.RecordBatch{FirstOffset: at, ProducerID: pid, IsTransactional: true, Control: true,
			Records: []*sarama.Record{{Key: []byte{0, 0, 0, typ}}}}}
	}
	const abort, commit = 0, 1
	for _, tc := range []struct {
		name     string
		batches  []*sarama.Records
		aborted  []*sarama.AbortedTransaction
		from, to int64
		found    bool
		next     int64
	}{
		{"markers only", []*sarama.Records{marker(1, 3, commit)}, nil, 3, 4, false, 4},
		{"committed data", []*sarama.Records{data(1, 0, 3), marker(1, 3, commit)}, nil, 0, 4, true, 0},
		{"data before from", []*sarama.Records{data(1, 0, 3), marker(1, 3, commit)}, nil, 3, 4, false, 4},
		{"from inside a batch", []*sarama.Records{data(1, 0, 3), marker(1, 3, commit)}, nil, 2, 4, true, 2},
		{"aborted", []*sarama.Records{data(1, 4, 2), marker(1, 6, abort)},
			[]*sarama.AbortedTransaction{{ProducerID: 1, FirstOffset: 4}}, 4, 7, false, 7},
		{"committed after aborted", []*sarama.Records{data(1, 4, 2), marker(1, 6, abort), data(1, 7, 1), marker(1, 8, commit)},
			[]*sarama.AbortedTransaction{{ProducerID: 1, FirstOffset: 4}}, 4, 9, true, 7},
		{"another producer's data inside an aborted one", []*sarama.Records{data(1, 4, 1), data(2, 5, 1), marker(1, 6, abort), marker(2, 7, commit)},
			[]*sarama.AbortedTransaction{{ProducerID: 1, FirstOffset: 4}}, 4, 8, true, 5},
		{"data at to is not counted", []*sarama.Records{marker(1, 3, commit), data(1, 4, 1)}, nil, 3, 4, false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block := &sarama.FetchResponseBlock{RecordsSet: tc.batches, AbortedTransactions: tc.aborted}
			next, found := scanCommitted(block, tc.from, tc.to)
			if found != tc.found || (!found && next != tc.next) {
				t.Fatalf("scanCommitted = (%d, %v), want (%d, %v)", next, found, tc.next, tc.found)
			}
		})
	}
}

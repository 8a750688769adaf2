package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/seqchat/seqchat/internal/coalesce"
)

// TxnConfig configures a Txns.
type TxnConfig struct {
	Kafka Config
	// TransactionalID of the producer. Required. One per running instance
	// (not per partition): the offsets of every partition the instance owns
	// commit in its transactions, and the group generation in them fences
	// a member that lost its partitions (KIP-447).
	TransactionalID string
	// Linger is how long a transaction, once it has its first unit, waits
	// for more. Zero means it takes only the units already waiting.
	Linger time.Duration
	// MaxRecords caps the records of one transaction (a unit is never
	// split). Zero means 20000.
	MaxRecords int
	// OnCommit, when set, is told of every committed transaction; OnFail,
	// of the failure that stopped them.
	OnCommit func(TxnStats)
	OnFail   func(error)
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// TxnStats describes one committed transaction.
type TxnStats struct {
	Units, Records int
	Took           time.Duration // from its begin to its commit
}

// Unit is one partition's share of a transaction: its output records and,
// unless Offset is negative, the input offset to commit with them.
type Unit struct {
	Messages  []*sarama.ProducerMessage
	Topic     string
	Partition int32
	// Offset is the next input offset to consume; negative: none. Only a
	// unit that nothing of another owner can conflict with (a restore
	// marker) may go without one: the offset commit is what the broker
	// checks against the group's generation, so a transaction without
	// offsets from an instance that lost the partition would still commit.
	Offset int64
	// Committed, when set, is called right after the transaction holding
	// the unit committed (from the committing goroutine).
	Committed func(at time.Time)
}

// Txns writes the units of many partitions in shared transactions of one
// transactional producer: the cost of a transaction (about five round
// trips and the markers) is paid per batch of the whole instance, not per
// partition. Units are committed in the order submitted. After any failure
// the producer is unusable and every unit not yet committed fails: the
// owner rebuilds from committed state with a new Txns (whose producer
// initialisation fences a commit of the old one still on its way).
type Txns struct {
	cfg      TxnConfig
	log      *slog.Logger
	producer sarama.SyncProducer
	batcher  *coalesce.Batcher[Unit]
	timeout  time.Duration   // the transactions' timeout
	given    <-chan struct{} // closed when a commit given up on (commitWithin) returns; Run's, then Close's
}

// NewTxns creates and initialises the transactional producer. The
// initialisation aborts any transaction a previous producer with the same
// id left open, and fences that producer.
func NewTxns(cfg TxnConfig) (*Txns, error) {
	if cfg.TransactionalID == "" {
		return nil, errors.New("kafkawire: transactions need a transactional id")
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = 20000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pcfg := cfg.Kafka.TransactionalProducerConfig(cfg.TransactionalID)
	p, err := sarama.NewSyncProducer(cfg.Kafka.BrokerList(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("transactional producer %s: %w", cfg.TransactionalID, err)
	}
	return &Txns{cfg: cfg, log: cfg.Logger, producer: p, timeout: pcfg.Producer.Transaction.Timeout,
		batcher: coalesce.New(cfg.Linger, cfg.MaxRecords, func(u Unit) int { return len(u.Messages) })}, nil
}

// Submit queues u for the next transaction and returns where its outcome
// comes: nil once committed. It blocks while a transaction is being
// committed (the unit rides the next one), and fails at once when the
// transactions have stopped.
func (t *Txns) Submit(u Unit) <-chan error { return t.batcher.Submit(u) }

// Run commits transactions until ctx ends or one fails; group identifies
// the session whose offsets the transactions commit.
func (t *Txns) Run(ctx context.Context, group *sarama.ConsumerGroupMetadata) error {
	err := t.batcher.Run(ctx, func(units []Unit) error {
		start := time.Now()
		err := t.commitWithin(units, group)
		if err != nil {
			return err
		}
		at := time.Now()
		records := 0
		for _, u := range units {
			records += len(u.Messages)
			if u.Committed != nil {
				u.Committed(at)
			}
		}
		if t.cfg.OnCommit != nil {
			t.cfg.OnCommit(TxnStats{Units: len(units), Records: records, Took: at.Sub(start)})
		}
		return nil
	})
	if err != nil && t.cfg.OnFail != nil {
		t.cfg.OnFail(err)
	}
	return err
}

// commitWithin is commit, given up on once the transaction is older than
// its timeout: the coordinator aborts it by then (and fences this
// producer), but a producer whose broker restarted learned that only
// 2-6.5 s after the broker was back (make chaos), holding every partition
// of the instance meanwhile. Given up on, the session restarts at once and
// the next producer's initialisation fences this one, whose commit may
// still be on its way (as after any failed commit); Close closes it once
// that commit returns.
func (t *Txns) commitWithin(units []Unit, group *sarama.ConsumerGroupMetadata) error {
	done := make(chan error, 1)
	go func() { done <- t.commit(units, group) }()
	timer := time.NewTimer(t.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		given := make(chan struct{})
		go func() {
			<-done
			close(given)
		}()
		t.given = given
		return fmt.Errorf("transaction given up: still open after its %v timeout (the coordinator aborts it)", t.timeout)
	}
}

// commit writes units in one transaction: all of it becomes visible, or
// none. An abortable error is aborted; a failed commit is not (a delayed
// commit may still land; the next producer's initialisation fences it).
func (t *Txns) commit(units []Unit, group *sarama.ConsumerGroupMetadata) error {
	var msgs []*sarama.ProducerMessage
	offsets := map[string]map[int32]int64{}
	for _, u := range units {
		msgs = append(msgs, u.Messages...)
		if u.Offset >= 0 {
			if offsets[u.Topic] == nil {
				offsets[u.Topic] = map[int32]int64{}
			}
			offsets[u.Topic][u.Partition] = max(offsets[u.Topic][u.Partition], u.Offset)
		}
	}
	if err := t.producer.BeginTxn(); err != nil {
		return t.failed("begin", err)
	}
	err := func() error {
		if len(msgs) > 0 {
			if err := t.producer.SendMessages(msgs); err != nil {
				return err
			}
		}
		if len(offsets) == 0 {
			return nil
		}
		req := map[string][]*sarama.PartitionOffsetMetadata{}
		for topic, ps := range offsets {
			for p, o := range ps {
				req[topic] = append(req[topic], &sarama.PartitionOffsetMetadata{Partition: p, Offset: o})
			}
		}
		return t.producer.AddOffsetsToTxnWithGroupMetadata(req, group)
	}()
	if err != nil {
		if t.producer.TxnStatus()&sarama.ProducerTxnFlagAbortableError != 0 {
			if aerr := t.producer.AbortTxn(); aerr != nil {
				t.log.Warn("abort failed", "err", aerr)
			}
		}
		return t.failed("produce", err)
	}
	if err := t.producer.CommitTxn(); err != nil {
		return t.failed("commit", err)
	}
	return nil
}

func (t *Txns) failed(step string, err error) error {
	// SendMessages reports per-record errors; say the first one's cause.
	var perrs sarama.ProducerErrors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		err = fmt.Errorf("%w (first: %w)", err, perrs[0].Err)
	}
	if Fenced(err) {
		return fmt.Errorf("%s transaction: fenced by a newer owner: %w", step, err)
	}
	return fmt.Errorf("%s transaction: %w", step, err)
}

// Close closes the producer; call it after Run returned. A commit given
// up on is left to return first, its producer closed then.
func (t *Txns) Close() error {
	t.batcher.Stop(nil)
	if t.given != nil {
		go func() {
			<-t.given
			if err := t.producer.Close(); err != nil {
				t.log.Warn("closing a transactional producer given up on", "err", err)
			}
		}()
		return nil
	}
	return t.producer.Close()
}

// Fenced is true for the errors that mean a newer owner took over: the
// producer epoch was bumped, or the group generation moved on.
func Fenced(err error) bool {
	for _, e := range []error{sarama.ErrProducerFenced, sarama.ErrInvalidProducerEpoch,
		sarama.ErrIllegalGeneration, sarama.ErrUnknownMemberId, sarama.ErrFencedInstancedId} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

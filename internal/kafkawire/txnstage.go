package kafkawire

import (
	"context"
	"fmt"
	"sync"
)

// TxnPartition is a partition of a transactional stage: it turns each
// batch into the unit its transaction carries.
type TxnPartition interface {
	// Process returns the unit of b (ok false: nothing to write, as for an
	// idle tick with no output). An error ends the session.
	Process(b Batch) (u Unit, ok bool, err error)
	// Close releases the partition once its units are settled.
	Close()
}

// OpenTxnPartition prepares a claimed partition; it may commit through txns
// (a restore marker) before its first batch.
type OpenTxnPartition func(s *Session, partition int32, txns *Txns) (TxnPartition, error)

// maxPendingUnits is how many units a partition may have submitted and not
// yet committed: one in the transaction being committed, one waiting for
// the next, while the partition prepares a third.
const maxPendingUnits = 2

// TxnStage is a Stage whose partitions commit their output and input
// offsets in the shared transactions of one producer (Txns), created anew
// for every session. A partition does not wait for its unit's commit
// before it prepares the next: its state runs ahead of what is committed,
// which is safe because any failed transaction ends the session and every
// partition is rebuilt from committed state.
type TxnStage struct {
	cfg  TxnConfig
	open OpenTxnPartition

	mu      sync.Mutex
	txns    *Txns
	running chan struct{} // closed when the session's Txns.Run returned
}

// NewTxnStage builds the stage; cfg.TransactionalID must be this instance's.
func NewTxnStage(cfg TxnConfig, open OpenTxnPartition) *TxnStage {
	return &TxnStage{cfg: cfg, open: open}
}

// BeforeSession initialises a fresh producer, which aborts whatever the
// previous one (this instance's last session, or its previous incarnation)
// left open.
func (t *TxnStage) BeforeSession(context.Context) error {
	t.closeTxns()
	txns, err := NewTxns(t.cfg)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.txns, t.running = txns, nil
	t.mu.Unlock()
	return nil
}

// Setup starts committing for the session.
func (t *TxnStage) Setup(s *Session) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.txns == nil {
		return fmt.Errorf("kafkawire: session %d started without a producer", s.Generation())
	}
	txns, running := t.txns, make(chan struct{})
	t.running = running
	group := s.GroupMetadata()
	go func() {
		defer close(running)
		if err := txns.Run(s.Context(), group); err != nil {
			s.End(err)
		}
	}()
	return nil
}

// Open opens the partition through the stage's function.
func (t *TxnStage) Open(s *Session, p int32) (Partition, error) {
	t.mu.Lock()
	txns := t.txns
	t.mu.Unlock()
	inner, err := t.open(s, p, txns)
	if err != nil {
		return nil, err
	}
	return &txnPartition{inner: inner, txns: txns}, nil
}

// Cleanup closes the session's producer once its last transaction ended.
func (t *TxnStage) Cleanup(*Session) { t.closeTxns() }

// Close releases the producer when the group has stopped.
func (t *TxnStage) Close() { t.closeTxns() }

func (t *TxnStage) closeTxns() {
	t.mu.Lock()
	txns, running := t.txns, t.running
	t.txns, t.running = nil, nil
	t.mu.Unlock()
	if txns == nil {
		return
	}
	if running != nil {
		<-running
	}
	if err := txns.Close(); err != nil {
		t.cfg.Logger.Warn("closing the transactional producer", "err", err)
	}
}

// txnPartition submits its partition's units and checks their outcomes.
type txnPartition struct {
	inner   TxnPartition
	txns    *Txns
	pending []<-chan error
}

func (p *txnPartition) Process(b Batch) error {
	if err := p.settle(false); err != nil {
		return err
	}
	u, ok, err := p.inner.Process(b)
	if err != nil || !ok {
		return err
	}
	p.pending = append(p.pending, p.txns.Submit(u))
	for len(p.pending) > maxPendingUnits {
		if err := p.settle(true); err != nil {
			return err
		}
	}
	return nil
}

// settle collects the outcomes that are in (wait: at least the oldest).
func (p *txnPartition) settle(wait bool) error {
	for len(p.pending) > 0 {
		var err error
		if wait {
			err = <-p.pending[0]
			wait = false
		} else {
			select {
			case err = <-p.pending[0]:
			default:
				return nil
			}
		}
		p.pending = p.pending[1:]
		if err != nil {
			return err
		}
	}
	return nil
}

// Close waits for the partition's last units: once it returns, nothing
// this partition produced is still on its way.
func (p *txnPartition) Close() {
	for _, c := range p.pending {
		<-c
	}
	p.pending = nil
	p.inner.Close()
}

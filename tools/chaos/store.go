package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// StoreCheck is what ClickHouse holds of the run's conversations compared
// with what the clients were told and shown.
type StoreCheck struct {
	Rows int // distinct (conversation, seq) stored
	// Missing: accepted sends not stored. Duplicated: sends stored at more
	// than one seq. Conflicts: seqs stored with two different messages.
	// Misplaced: sends stored at another seq than the clients got. Gaps:
	// seqs missing below a conversation's highest.
	Missing, Duplicated, Conflicts, Misplaced, Gaps int
	Examples                                        []string
}

func (c *StoreCheck) report(counter *int, format string, a ...any) {
	*counter++
	if len(c.Examples) < 20 {
		c.Examples = append(c.Examples, fmt.Sprintf(format, a...))
	}
}

// checkStore waits (up to the recovery timeout) until ClickHouse holds
// every accepted send of the run, then checks every stored row of the
// run's conversations.
func (h *Harness) checkStore(ctx context.Context, gen *loadgen.Generator) (StoreCheck, error) {
	conn, _, err := chstore.Open(ctx, chstore.Config{Addr: h.cfg.ClickHouseAddr, Database: h.cfg.ClickHouseDatabase})
	if err != nil {
		return StoreCheck{}, err
	}
	defer conn.Close()
	accepted := gen.Accepted()
	convs := map[string]bool{}
	for _, c := range gen.Conversations() {
		convs[c] = true
	}
	type row struct {
		cmids []string // distinct client_msg_ids stored at this seq
	}
	var stored map[string]map[uint64]*row // conversation -> seq -> row
	read := func() error {
		// Every conversation id of the run contains the run id.
		rows, err := conn.Query(ctx, "SELECT conversation_id, seq, groupUniqArray(client_msg_id) FROM "+
			h.cfg.ClickHouseDatabase+".messages WHERE position(conversation_id, ?) > 0 GROUP BY conversation_id, seq",
			gen.RunID())
		if err != nil {
			return fmt.Errorf("chaos: read the run's messages: %w", err)
		}
		defer rows.Close()
		stored = map[string]map[uint64]*row{}
		for rows.Next() {
			var conv string
			var seq uint64
			var cmids []string
			if err := rows.Scan(&conv, &seq, &cmids); err != nil {
				return fmt.Errorf("chaos: scan: %w", err)
			}
			if !convs[conv] {
				continue
			}
			if stored[conv] == nil {
				stored[conv] = map[uint64]*row{}
			}
			stored[conv][seq] = &row{cmids: cmids}
		}
		return rows.Err()
	}
	missing := func() int {
		where := map[string]bool{}
		for _, bySeq := range stored {
			for _, r := range bySeq {
				for _, c := range r.cmids {
					where[c] = true
				}
			}
		}
		n := 0
		for _, m := range accepted {
			if !where[m.ClientMsgID] {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(h.cfg.RecoveryTimeout)
	for {
		if err := read(); err != nil {
			return StoreCheck{}, err
		}
		n := missing()
		if n == 0 || time.Now().After(deadline) {
			break
		}
		h.logf("ClickHouse lacks %d accepted messages so far; waiting for the history sink", n)
		select {
		case <-ctx.Done():
			return StoreCheck{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}

	var c StoreCheck
	seqsOf := map[string][]uint64{} // client_msg_id -> seqs it is stored at
	for conv, bySeq := range stored {
		var top uint64
		for seq, r := range bySeq {
			c.Rows++
			top = max(top, seq)
			if len(r.cmids) > 1 {
				c.report(&c.Conflicts, "%s seq %d stored as %v", conv, seq, r.cmids)
			}
			for _, cm := range r.cmids {
				seqsOf[cm] = append(seqsOf[cm], seq)
			}
		}
		for seq := uint64(1); seq <= top; seq++ {
			if bySeq[seq] == nil {
				c.report(&c.Gaps, "%s: seq %d missing below %d", conv, seq, top)
			}
		}
	}
	for _, m := range accepted {
		seqs := seqsOf[m.ClientMsgID]
		switch {
		case len(seqs) == 0:
			c.report(&c.Missing, "%s (%s) accepted but not stored", m.ClientMsgID, m.Conv)
		case len(seqs) > 1:
			c.report(&c.Duplicated, "%s stored at seqs %v", m.ClientMsgID, seqs)
		case m.Seq != 0 && seqs[0] != m.Seq:
			c.report(&c.Misplaced, "%s stored at seq %d, delivered as seq %d", m.ClientMsgID, seqs[0], m.Seq)
		}
	}
	return c, nil
}

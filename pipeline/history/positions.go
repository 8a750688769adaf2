package history

import (
	"context"
	"fmt"
)

// Positions returns a device's acknowledged position per conversation.
func (s *Store) Positions(ctx context.Context, user, device string) (map[string]uint64, error) {
	rows, err := s.conn.Query(ctx, "SELECT conversation_id, max(seq) FROM "+s.sibling("device_positions")+
		" WHERE user_id = ? AND device_id = ? GROUP BY conversation_id", user, device)
	if err != nil {
		return nil, fmt.Errorf("read positions of %s/%s: %w", user, device, err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var conv string
		var seq uint64
		if err := rows.Scan(&conv, &seq); err != nil {
			return nil, fmt.Errorf("read positions of %s/%s: %w", user, device, err)
		}
		out[conv] = seq
	}
	return out, rows.Err()
}

// SavePositions records a device's acknowledged positions; a lower one than
// already stored changes nothing (reads take the maximum).
func (s *Store) SavePositions(ctx context.Context, user, device string, positions map[string]uint64) error {
	if len(positions) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.sibling("device_positions")+" (user_id, device_id, conversation_id, seq)")
	if err != nil {
		return fmt.Errorf("save positions of %s/%s: %w", user, device, err)
	}
	for conv, seq := range positions {
		if err := batch.Append(user, device, conv, seq); err != nil {
			return fmt.Errorf("save positions of %s/%s: %w", user, device, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("save positions of %s/%s: %w", user, device, err)
	}
	return nil
}

// Conversations lists the conversations user ever belonged to: groups it
// was created in or joined, and direct conversations naming it, from the
// user_conversations table (migrations 0003-0005): a key lookup.
func (s *Store) Conversations(ctx context.Context, user string) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT conversation_id FROM "+s.sibling("user_conversations")+" WHERE user_id = ?", user)
	if err != nil {
		return nil, fmt.Errorf("conversations of %s: %w", user, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var conv string
		if err := rows.Scan(&conv); err != nil {
			return nil, fmt.Errorf("conversations of %s: %w", user, err)
		}
		out = append(out, conv)
	}
	return out, rows.Err()
}

package history

import (
	"context"
	"fmt"
)

// Positions returns a device's acknowledged position per conversation:
// the highest seq of the largest epoch stored, and that epoch (epochs holds
// only the non-zero ones).
func (s *Store) Positions(ctx context.Context, user, device string) (positions, epochs map[string]uint64, err error) {
	rows, err := s.conn.Query(ctx, "SELECT conversation_id, epoch, max(seq) FROM "+s.sibling("device_positions")+
		" WHERE user_id = ? AND device_id = ? GROUP BY conversation_id, epoch", user, device)
	if err != nil {
		return nil, nil, fmt.Errorf("read positions of %s/%s: %w", user, device, err)
	}
	defer rows.Close()
	positions, epochs = map[string]uint64{}, map[string]uint64{}
	for rows.Next() {
		var conv string
		var epoch, seq uint64
		if err := rows.Scan(&conv, &epoch, &seq); err != nil {
			return nil, nil, fmt.Errorf("read positions of %s/%s: %w", user, device, err)
		}
		if _, seen := positions[conv]; seen && epoch < epochs[conv] {
			continue
		}
		positions[conv] = seq
		if epoch > 0 {
			epochs[conv] = epoch
		}
	}
	return positions, epochs, rows.Err()
}

// SavePositions records a device's acknowledged positions, each of the
// epoch epochs gives (absent: 0); a lower one than already stored in the
// same epoch changes nothing (reads take the maximum). A merge of the table
// keeps the row with the highest seq, whatever its epoch: a newer epoch's
// lower position may then be lost, and the device, resuming at the older
// epoch, is reset and sent the current epoch again from seq 1 (duplicates
// the client drops with its reset, never a mix of epochs).
func (s *Store) SavePositions(ctx context.Context, user, device string, positions, epochs map[string]uint64) error {
	if len(positions) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.sibling("device_positions")+" (user_id, device_id, conversation_id, seq, epoch)")
	if err != nil {
		return fmt.Errorf("save positions of %s/%s: %w", user, device, err)
	}
	for conv, seq := range positions {
		if err := batch.Append(user, device, conv, seq, epochs[conv]); err != nil {
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

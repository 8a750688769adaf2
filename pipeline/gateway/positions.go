package gateway

import "context"

func (c *conn) handleAck(a *Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs := c.convs[a.ConversationID]; cs == nil || a.Seq > cs.reorder.Delivered() {
		c.g.metrics.badAcks.Inc() // acknowledging what was not delivered: ignored
		return
	}
	if a.Seq > c.acked[a.ConversationID] { // of the epoch the device holds: a reset forgets what was acked before
		c.acked[a.ConversationID] = a.Seq
	}
}

// savePositions stores the positions acknowledged since the last save, so
// that a reconnect to any gateway resumes after them. A failed save keeps
// them for the next attempt.
func (c *conn) savePositions(ctx context.Context) {
	c.mu.Lock()
	if len(c.acked) == 0 {
		c.mu.Unlock()
		return
	}
	batch := c.acked
	c.acked = map[string]uint64{}
	epochs := map[string]uint64{}
	for conv := range batch {
		if cs := c.convs[conv]; cs != nil && cs.epoch > 0 {
			epochs[conv] = cs.epoch
		}
	}
	c.mu.Unlock()
	if err := c.g.cfg.History.SavePositions(ctx, c.user, c.device, batch, epochs); err != nil {
		c.log.Warn("saving acknowledged positions", "err", err)
		c.mu.Lock()
		for conv, seq := range batch {
			if seq > c.acked[conv] {
				c.acked[conv] = seq
			}
		}
		c.mu.Unlock()
	}
}

package gateway

import "context"

func (c *conn) handleAck(a *Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs := c.convs[a.ConversationID]; cs == nil || a.Seq > cs.reorder.Delivered() {
		c.g.metrics.badAcks.Inc() // acknowledging what was not delivered: ignored
		return
	}
	if a.Seq > c.acked[a.ConversationID] {
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
	c.mu.Unlock()
	if err := c.g.cfg.History.SavePositions(ctx, c.user, c.device, batch); err != nil {
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

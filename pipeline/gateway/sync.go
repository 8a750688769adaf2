package gateway

import (
	"context"
	"errors"
	"time"
)

func (c *conn) handleSync(s *Sync) {
	limit := s.Limit
	if limit == 0 {
		limit = 100
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := c.g.cfg.History.Read(ctx, s.ConversationID, c.user, s.AfterSeq, limit)
	if err != nil {
		perr := &ProtocolError{Code: CodeUnavailable, Message: "history did not answer; retry"}
		switch {
		case errors.Is(err, ErrNotMember):
			perr = &ProtocolError{Code: CodeNotMember, Message: c.user + " was never a member"}
		case errors.Is(err, ErrUnknownConversation):
			perr = &ProtocolError{Code: CodeUnknownConversation, Message: "no such conversation"}
		default:
			c.log.Warn("sync", "conversation_id", s.ConversationID, "err", err)
		}
		perr.Message = "sync " + s.ConversationID + ": " + perr.Message
		c.send(errorPayload(perr, false))
		return
	}
	up := s.AfterSeq
	for _, e := range page.Entries {
		c.send(encode(e))
		up = e.Seq
	}
	c.send(encode(syncedFrame{Type: "synced", ConversationID: s.ConversationID, UpToSeq: up,
		Complete: up >= page.CompleteUpTo && len(page.Entries) < limit}))
}

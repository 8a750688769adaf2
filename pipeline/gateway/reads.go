package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// handleRead writes the user's read mark through ingest (keyed by the
// conversation, so the sequencer orders it with the conversation's
// entries). Success is answered by nothing, as an ack is; the receipt goes
// to the user's other devices and the other members.
func (c *conn) handleRead(r *Read) {
	if ok, wait := c.allowSend(); !ok {
		c.g.metrics.refused.WithLabelValues(refusedRateLimited).Inc()
		c.send(errorPayload(&ProtocolError{Code: CodeRateLimited, Message: "too many frames; this read was dropped", RetryAfter: wait}, false))
		return
	}
	// The client_msg_id only names the mark in logs: the sequencer handles
	// a mark before its dedup window and never remembers one.
	in := ingest.Send{ConversationID: r.ConversationID, ClientMsgID: "read:" + strconv.FormatUint(r.Seq, 10),
		SenderUserID: c.user, SenderDeviceID: c.device, Read: &imv1.ReadMark{Seq: r.Seq}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.g.ingest.Submit(ctx, in)
	var ierr *ingest.Error
	switch {
	case err == nil:
	case errors.As(err, &ierr):
		c.send(errorPayload(&ProtocolError{Code: ierr.Code, Message: "read " + r.ConversationID + ": " + ierr.Message}, false))
	default:
		c.log.Warn("read mark not written", "conversation_id", r.ConversationID, "err", err)
		c.send(errorPayload(&ProtocolError{Code: CodeUnavailable, Message: "read " + r.ConversationID + ": not written; retry"}, false))
	}
}

// handleConversations answers `conversations` with the user's list from
// history.
func (c *conn) handleConversations() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := c.g.cfg.History.Unread(ctx, c.user)
	if err != nil {
		c.log.Warn("conversations", "err", err)
		c.send(errorPayload(&ProtocolError{Code: CodeUnavailable, Message: "conversations: history did not answer; retry"}, false))
		return
	}
	if list == nil {
		list = []historyapi.ConversationState{}
	}
	c.send(encode(conversationsFrame{Type: "conversations", Conversations: list}))
}

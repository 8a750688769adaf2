package history

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/seqchat/seqchat/schemas/historyapi"
)

// registerReads adds the read-receipt endpoints: a user's conversations
// with unread counts, and "read by k of n" per message of a conversation.
func (h *handler) registerReads() {
	h.mux.HandleFunc("GET /v1/users/{user_id}/unread", h.getUnread)
	h.mux.HandleFunc("GET /v1/conversations/{conversation_id}/reads", h.getReads)
}

func (h *handler) getUnread(w http.ResponseWriter, r *http.Request) {
	user, _, err := h.device(r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	states, err := h.cfg.Store.ConversationStates(ctx, user)
	if err != nil {
		if e := (*Error)(nil); !errors.As(err, &e) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		h.refuse(w, r, err)
		return
	}
	out := historyapi.ConversationList{Conversations: make([]historyapi.ConversationState, len(states))}
	for i, s := range states {
		out.Conversations[i] = historyapi.ConversationState{ConversationID: s.ConversationID, LastSeq: s.LastSeq, ReadSeq: s.ReadSeq, Unread: s.Unread}
	}
	h.metrics.requests.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, out)
}

// getReads takes the parameters of GET …/messages: user, after_seq, limit.
func (h *handler) getReads(w http.ResponseWriter, r *http.Request) {
	req, err := ParseReadRequest(r.PathValue("conversation_id"), r.URL.Query())
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	counts, err := ReadCountsOf(ctx, h.cfg.Store, req)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	out := historyapi.ReadCounts{ConversationID: counts.ConversationID, CompleteUpTo: counts.CompleteUpTo, NextAfterSeq: counts.NextAfterSeq,
		Reads: make([]historyapi.ReadCount, len(counts.Counts))}
	for i, c := range counts.Counts {
		out.Reads[i] = historyapi.ReadCount{Seq: c.Seq, SenderUserID: c.Sender, ReadBy: c.ReadBy, Members: c.Members}
	}
	h.metrics.requests.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, out)
}

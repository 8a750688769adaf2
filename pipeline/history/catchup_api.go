package history

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// CatchUpRequest is the body of POST /v1/users/{user_id}/catch-up: the
// conversations of a reconnecting device, each with the seq it has.
type CatchUpRequest struct {
	After map[string]uint64 `json:"after"`
	// Limit is the page size of every conversation; zero means DefaultLimit.
	Limit int `json:"limit,omitempty"`
}

// CatchUpJSON is its answer: one page per conversation read (the same page
// GET …/messages gives), and the conversations refused, each with its code.
type CatchUpJSON struct {
	Pages   []PageJSON    `json:"pages"`
	Refused []RefusedJSON `json:"refused"`
}

// RefusedJSON is one conversation a catch-up did not read.
type RefusedJSON struct {
	ConversationID string `json:"conversation_id"`
	Code           string `json:"code"`
	Message        string `json:"message"`
}

// maxCatchUpBody bounds the request body (MaxReadMany ids of 128 bytes).
const maxCatchUpBody = 64 << 10

func (h *handler) postCatchUp(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	user := r.PathValue("user_id")
	var req CatchUpRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCatchUpBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		h.refuse(w, r, invalid("body: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	pages, refused, err := ReadMany(ctx, h.cfg.Store, user, req.After, req.Limit)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	out := CatchUpJSON{Pages: make([]PageJSON, 0, len(pages)), Refused: make([]RefusedJSON, 0, len(refused))}
	for _, p := range pages {
		out.Pages = append(out.Pages, pageJSON(p))
	}
	for conv, e := range refused {
		out.Refused = append(out.Refused, RefusedJSON{ConversationID: conv, Code: e.Code, Message: e.Message})
	}
	sort.Slice(out.Pages, func(i, j int) bool { return out.Pages[i].ConversationID < out.Pages[j].ConversationID })
	sort.Slice(out.Refused, func(i, j int) bool { return out.Refused[i].ConversationID < out.Refused[j].ConversationID })
	h.metrics.seconds.Observe(time.Since(start).Seconds())
	h.metrics.requests.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, out)
}

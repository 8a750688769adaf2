package history

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/seqchat/seqchat/schemas/historyapi"
)

// maxCatchUpBody bounds the request body (MaxReadMany ids of 128 bytes).
const maxCatchUpBody = 64 << 10

func (h *handler) postCatchUp(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	user := r.PathValue("user_id")
	var req historyapi.CatchUpRequest
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
	out := historyapi.CatchUp{Pages: make([]historyapi.Page, 0, len(pages)), Refused: make([]historyapi.Refused, 0, len(refused))}
	for _, p := range pages {
		out.Pages = append(out.Pages, pageJSON(p))
	}
	for conv, e := range refused {
		out.Refused = append(out.Refused, historyapi.Refused{ConversationID: conv, Code: e.Code, Message: e.Message})
	}
	sort.Slice(out.Pages, func(i, j int) bool { return out.Pages[i].ConversationID < out.Pages[j].ConversationID })
	sort.Slice(out.Refused, func(i, j int) bool { return out.Refused[i].ConversationID < out.Refused[j].ConversationID })
	h.metrics.seconds.Observe(time.Since(start).Seconds())
	h.metrics.requests.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, out)
}

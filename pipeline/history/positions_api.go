package history

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/seqchat/seqchat/schemas/historyapi"
)

// progressPath is the endpoint of the sink's progress.
const progressPath = "/v1/progress"

// maxPositionsPerSave bounds one PUT of positions.
const maxPositionsPerSave = 10000

// registerDevices adds the endpoints gateways use to resume a device on any
// gateway: the user's conversations, the device's acknowledged positions,
// and how far the sink has stored the sequenced topic.
func (h *handler) registerDevices() {
	h.mux.HandleFunc("GET "+progressPath, h.getProgress)
	h.mux.HandleFunc("GET /v1/users/{user_id}/conversations", h.getConversations)
	h.mux.HandleFunc("POST /v1/users/{user_id}/catch-up", h.postCatchUp)
	h.mux.HandleFunc("GET /v1/devices/{user_id}/{device_id}/positions", h.getPositions)
	h.mux.HandleFunc("PUT /v1/devices/{user_id}/{device_id}/positions", h.putPositions)
}

type conversationsJSON struct {
	Conversations []string `json:"conversations"`
}

type positionsJSON struct {
	Positions map[string]uint64 `json:"positions"`
	// Epochs: the epoch of each position's stream, where not 0.
	Epochs map[string]uint64 `json:"epochs,omitempty"`
}

func (h *handler) device(r *http.Request) (user, device string, err error) {
	user, device = r.PathValue("user_id"), r.PathValue("device_id")
	if reason := checkID(user, false); reason != "" {
		return "", "", invalid("user %q: %s", user, reason)
	}
	if device != "" {
		if reason := checkID(device, true); reason != "" {
			return "", "", invalid("device %q: %s", device, reason)
		}
	}
	return user, device, nil
}

func (h *handler) getProgress(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Progress == nil {
		h.refuse(w, r, &Error{CodeUnavailable, "this history service does not read the sink's progress"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	stored, err := h.cfg.Progress.Stored(ctx)
	if err != nil {
		h.refuse(w, r, fmt.Errorf("%w: %w", ErrUnavailable, err))
		return
	}
	out := historyapi.Progress{StoredBefore: stored[0].StoredBefore}
	for _, t := range stored {
		out.Topics = append(out.Topics, historyapi.TopicProgress{Generation: t.Generation, Topic: t.Topic, StoredBefore: t.StoredBefore})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getConversations(w http.ResponseWriter, r *http.Request) {
	user, _, err := h.device(r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	convs, err := h.cfg.Store.Conversations(ctx, user)
	if err != nil {
		h.refuse(w, r, fmt.Errorf("%w: %w", ErrUnavailable, err))
		return
	}
	if convs == nil {
		convs = []string{}
	}
	writeJSON(w, http.StatusOK, conversationsJSON{Conversations: convs})
}

func (h *handler) getPositions(w http.ResponseWriter, r *http.Request) {
	user, device, err := h.device(r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	pos, epochs, err := h.cfg.Store.Positions(ctx, user, device)
	if err != nil {
		h.refuse(w, r, fmt.Errorf("%w: %w", ErrUnavailable, err))
		return
	}
	writeJSON(w, http.StatusOK, positionsJSON{Positions: pos, Epochs: epochs})
}

func (h *handler) putPositions(w http.ResponseWriter, r *http.Request) {
	user, device, err := h.device(r)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	var body positionsJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		h.refuse(w, r, invalid("body: %v", err))
		return
	}
	if len(body.Positions) > maxPositionsPerSave {
		h.refuse(w, r, invalid("%d positions in one request, at most %d", len(body.Positions), maxPositionsPerSave))
		return
	}
	for conv := range body.Positions {
		if _, _, reason := parseConversation(conv); reason != "" {
			h.refuse(w, r, invalid("conversation_id %q: %s", conv, reason))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	if err := h.cfg.Store.SavePositions(ctx, user, device, body.Positions, body.Epochs); err != nil {
		h.refuse(w, r, fmt.Errorf("%w: %w", ErrUnavailable, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

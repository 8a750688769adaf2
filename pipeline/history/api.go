package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/auth"
)

// MinServiceTokenBytes is the shortest service token NewHandler accepts.
const MinServiceTokenBytes = 16

// Codes the API answers with besides those of Read.
const (
	codeUnauthorized     = "unauthorized"
	codeMethodNotAllowed = "method_not_allowed"
	codeInternal         = "internal"
)

// HandlerConfig configures the read API.
type HandlerConfig struct {
	// Store answers the reads. Required.
	Store *Store
	// ServiceToken is the bearer token of the gateways
	// (Authorization: Bearer <token>). Required, at least 16 bytes.
	ServiceToken string
	// QueryTimeout bounds the queries of one request, from when it got its
	// slot. Zero means 5s.
	QueryTimeout time.Duration
	// MaxConcurrentRequests is how many requests query ClickHouse at once;
	// the others wait for a slot (as long as their client waits). A
	// reconnect storm then queues instead of overloading ClickHouse into
	// timeouts that the gateways retry. Zero means 8.
	MaxConcurrentRequests int
	// Progress tells a group that does not exist from one the sink has
	// not stored yet, for GET …/messages (404 unknown_conversation, or 503
	// unavailable). Nil: both are 404 not_found.
	Progress *Progress
	// Logger logs refused and failed requests. Nil means discard.
	Logger *slog.Logger
	// Registerer for the request metrics. Nil means none are registered.
	Registerer prometheus.Registerer
}

func (c *HandlerConfig) setDefaults() {
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 5 * time.Second
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = 8
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration the API cannot serve with.
func (c HandlerConfig) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("history api: no store")
	case len(c.ServiceToken) < MinServiceTokenBytes:
		return fmt.Errorf("history api: the service token has %d bytes, want at least %d", len(c.ServiceToken), MinServiceTokenBytes)
	case c.QueryTimeout < 0:
		return errors.New("history api: query timeout must not be negative")
	case c.MaxConcurrentRequests < 0:
		return errors.New("history api: max concurrent requests must not be negative")
	}
	return nil
}

type handler struct {
	cfg     HandlerConfig
	token   auth.BearerToken
	mux     *http.ServeMux
	metrics *apiMetrics
	slots   chan struct{} // one token per request allowed to query
}

// NewHandler serves the read API of docs/history-api.md.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &handler{cfg: cfg, token: auth.NewBearerToken(cfg.ServiceToken), mux: http.NewServeMux(), metrics: newAPIMetrics(cfg.Registerer),
		slots: make(chan struct{}, cfg.MaxConcurrentRequests)}
	const messages = "/v1/conversations/{conversation_id}/messages"
	h.mux.HandleFunc("GET "+messages, h.getMessages)
	h.registerDevices()
	h.registerReads()
	// The method-less twin answers the other methods in JSON (the mux's own
	// 405 is plain text).
	h.mux.HandleFunc(messages, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET")
		h.fail(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed here; use GET")
	})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path)
	})
	return h, nil
}

// ServeHTTP authenticates first, so routes are not revealed to strangers,
// then waits for a slot (GET /v1/progress, which reads Kafka, not
// ClickHouse, does not).
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.token.Allows(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="seqchat-history"`)
		h.fail(w, r, http.StatusUnauthorized, codeUnauthorized, "missing or wrong service token")
		return
	}
	if r.URL.Path == progressPath {
		h.mux.ServeHTTP(w, r)
		return
	}
	h.metrics.waiting.Inc()
	select {
	case h.slots <- struct{}{}:
		h.metrics.waiting.Dec()
	case <-r.Context().Done():
		h.metrics.waiting.Dec()
		return // the client gave up; nobody reads an answer
	}
	defer func() { <-h.slots }()
	h.mux.ServeHTTP(w, r)
}

func (h *handler) getMessages(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, err := ParseReadRequest(r.PathValue("conversation_id"), r.URL.Query())
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
	defer cancel()
	page, err := Read(ctx, h.cfg.Store, req)
	if e := (*Error)(nil); errors.As(err, &e) && e.Code == CodeNotFound && h.cfg.Progress != nil {
		err = h.unknownOrBehind(ctx, req.ConversationID)
	}
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	h.metrics.seconds.Observe(time.Since(start).Seconds())
	h.metrics.requests.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, pageJSON(page))
}

// unknownOrBehind is the answer for a group history holds nothing of:
// unknown_conversation once the sink has stored everything sequenced so
// far on its partition, else unavailable (not written yet: retry).
func (h *handler) unknownOrBehind(ctx context.Context, conv string) error {
	caught, err := h.cfg.Progress.CaughtUp(ctx, conv)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case caught:
		return &Error{CodeUnknownConversation, fmt.Sprintf("no conversation %s", conv)}
	}
	return &Error{CodeUnavailable, fmt.Sprintf("history has not stored %s yet; retry", conv)}
}

// ParseReadRequest reads the request of GET
// /v1/conversations/{conversation_id}/messages from its path value and
// query: user (required), after_seq (default 0) and limit (default 100,
// at most 1000). Unknown or repeated parameters are refused. Errors are
// *Error with CodeInvalid.
func ParseReadRequest(conversationID string, query url.Values) (ReadRequest, error) {
	req := ReadRequest{ConversationID: conversationID, Limit: DefaultLimit}
	for k, vs := range query {
		if len(vs) != 1 {
			return req, invalid("parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		var err error
		switch k {
		case "user":
			req.User = v
		case "after_seq":
			if req.AfterSeq, err = strconv.ParseUint(v, 10, 64); err != nil {
				return req, invalid("after_seq %q: want a seq, 0 or more", v)
			}
		case "limit":
			if req.Limit, err = strconv.Atoi(v); err != nil || req.Limit < 1 || req.Limit > MaxLimit {
				return req, invalid("limit %q: want 1..%d", v, MaxLimit)
			}
		default:
			return req, invalid("unknown parameter %q (user, after_seq, limit)", k)
		}
	}
	if _, _, err := checkRequest(req); err != nil {
		return req, err
	}
	return req, nil
}

// refuse answers err: a refusal with its status, a store failure with 503.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
		status := map[string]int{CodeInvalid: http.StatusBadRequest, CodeNotMember: http.StatusForbidden, CodeNotFound: http.StatusNotFound,
			CodeUnknownConversation: http.StatusNotFound, CodeUnavailable: http.StatusServiceUnavailable}[e.Code]
		if e.Code == CodeUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		if status == 0 {
			status = http.StatusInternalServerError
		}
		h.fail(w, r, status, e.Code, e.Message)
	case errors.Is(err, ErrUnavailable):
		h.cfg.Logger.Warn("history read failed", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		h.fail(w, r, http.StatusServiceUnavailable, CodeUnavailable, "the history store did not answer; retry")
	default:
		h.cfg.Logger.Error("history read failed", "path", r.URL.Path, "err", err)
		h.fail(w, r, http.StatusInternalServerError, codeInternal, "internal error")
	}
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	h.cfg.Logger.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", code, "message", message)
	h.metrics.requests.WithLabelValues(code).Inc()
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: message}})
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do then
}

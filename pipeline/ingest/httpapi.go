package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/seqchat/seqchat/internal/auth"
)

// MinServiceTokenBytes is the shortest service token NewHandler accepts.
const MinServiceTokenBytes = 16

// DefaultMaxRequestBytes is HandlerConfig.MaxRequestBytes when zero.
const DefaultMaxRequestBytes = 64 << 10

// Codes the HTTP API answers with besides CodeInvalid, CodeNotMember and
// CodeUnavailable; docs/ingest-api.md lists them all.
const (
	codeUnauthorized         = "unauthorized"
	codeNotFound             = "not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codeTooLarge             = "too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeInternal             = "internal"
)

// serverDevice is the sender device of sends made through the HTTP API
// unless the request names one.
const serverDevice = "server"

// HandlerConfig configures the HTTP API.
type HandlerConfig struct {
	// ServiceToken is the bearer token every request must present
	// (Authorization: Bearer <token>). Required, at least 16 bytes.
	ServiceToken string
	// MaxRequestBytes bounds a request body. Zero means 64 KiB.
	MaxRequestBytes int64
	// Logger logs refused and failed requests. Nil means discard.
	Logger *slog.Logger
}

func (c *HandlerConfig) setDefaults() {
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports a configuration NewHandler cannot serve with. Zero fields
// count as their defaults.
func (c HandlerConfig) Validate() error {
	if len(c.ServiceToken) < MinServiceTokenBytes {
		return fmt.Errorf("ingest http: the service token has %d bytes, want at least %d", len(c.ServiceToken), MinServiceTokenBytes)
	}
	if c.MaxRequestBytes < 0 {
		return fmt.Errorf("ingest http: MaxRequestBytes is %d, want >= 0", c.MaxRequestBytes)
	}
	return nil
}

type handler struct {
	ing      *Ingester
	token    auth.BearerToken
	maxBytes int64
	log      *slog.Logger
	mux      *http.ServeMux
}

// NewHandler serves the HTTP API of docs/ingest-api.md in front of ing.
// A cfg that fails Validate gives a handler that refuses every request with
// 500 (it never panics and never lets a request through unauthenticated);
// call cfg.Validate first to fail at start-up instead.
func NewHandler(ing *Ingester, cfg HandlerConfig) http.Handler {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		cfg.Logger.Error("ingest http handler misconfigured; refusing every request", "err", err)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusInternalServerError, codeInternal, "the service is misconfigured")
		})
	}
	h := &handler{ing: ing, token: auth.NewBearerToken(cfg.ServiceToken), maxBytes: cfg.MaxRequestBytes, log: cfg.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", h.postMessage)
	mux.HandleFunc("POST /v1/revisions", h.postRevision)
	mux.HandleFunc("POST /v1/groups", h.postGroup)
	mux.HandleFunc("POST /v1/groups/{group_id}/members", h.postMember)
	mux.HandleFunc("DELETE /v1/groups/{group_id}/members/{user_id}", h.deleteMember)
	// The method-less twins catch the other methods: the mux's own 405 is
	// plain text, the API answers JSON.
	for path, allow := range map[string]string{
		"/v1/messages":                            "POST",
		"/v1/revisions":                           "POST",
		"/v1/groups":                              "POST",
		"/v1/groups/{group_id}/members":           "POST",
		"/v1/groups/{group_id}/members/{user_id}": "DELETE",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" is not allowed here; use "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such endpoint: "+r.URL.Path)
	})
	h.mux = mux
	return h
}

// ServeHTTP authenticates first, so routes are not revealed to strangers.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.token.Allows(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="seqchat-ingest"`)
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "missing or wrong service token")
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) postMessage(w http.ResponseWriter, r *http.Request) {
	var req messageRequest
	if h.decode(w, r, &req) {
		h.submit(w, r, req.send())
	}
}

func (h *handler) postRevision(w http.ResponseWriter, r *http.Request) {
	var req revisionRequest
	if !h.decode(w, r, &req) {
		return
	}
	s, err := req.send()
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	h.submit(w, r, s)
}

func (h *handler) postGroup(w http.ResponseWriter, r *http.Request) {
	var req groupRequest
	if h.decode(w, r, &req) {
		h.submit(w, r, req.send())
	}
}

func (h *handler) postMember(w http.ResponseWriter, r *http.Request) {
	var req memberRequest
	if h.decode(w, r, &req) {
		h.submit(w, r, req.send(r.PathValue("group_id")))
	}
}

func (h *handler) deleteMember(w http.ResponseWriter, r *http.Request) {
	s, err := removeMember(r.PathValue("group_id"), r.PathValue("user_id"), r.URL.Query())
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	h.submit(w, r, s)
}

// decode reads the JSON body into v, or answers the error and returns false.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		h.refuse(w, r, err)
		return false
	}
	if r.ContentLength > h.maxBytes {
		h.refuse(w, r, tooLarge(h.maxBytes))
		return false
	}
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, h.maxBytes), v, h.maxBytes); err != nil {
		h.refuse(w, r, err)
		return false
	}
	return true
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request, s Send) {
	err := h.ing.Submit(r.Context(), s)
	var e *Error
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, acceptedResponse{Status: "accepted", ConversationID: s.ConversationID, ClientMsgID: s.ClientMsgID})
	case errors.As(err, &e) && e.Code == CodeNotMember:
		h.refuse(w, r, &httpError{http.StatusForbidden, e.Code, e.Message})
	case errors.As(err, &e):
		h.refuse(w, r, &httpError{http.StatusBadRequest, e.Code, e.Message})
	case errors.Is(err, ErrUnavailable):
		h.log.Debug("send unavailable", "path", r.URL.Path, "client_msg_id", s.ClientMsgID, "err", err) // Submit logged it
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the send was not acknowledged; retry with the same client_msg_id")
	default:
		h.log.Error("send failed", "path", r.URL.Path, "client_msg_id", s.ClientMsgID, "err", err)
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
	}
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, e *httpError) {
	h.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.status, "code", e.code, "message", e.message)
	writeError(w, e.status, e.code, e.message)
}

type acceptedResponse struct {
	Status         string `json:"status"`
	ConversationID string `json:"conversation_id"`
	ClientMsgID    string `json:"client_msg_id"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do then
}

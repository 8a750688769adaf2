package ingest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

const serviceToken = "test-service-token-0123456789"

// request is one call of the API. Zero fields mean: the right token,
// Content-Type application/json.
type request struct {
	method, path, body string
	auth               string // "" is the right token; "-" sends no Authorization header
	contentType        string // "" is application/json; "-" sends none
	chunked            bool   // no Content-Length, so only the body reader enforces the limit
}

type response struct {
	status int
	header http.Header
	body   struct {
		Status         string `json:"status"`
		ConversationID string `json:"conversation_id"`
		ClientMsgID    string `json:"client_msg_id"`
		Error          *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
}

func (r response) code() string {
	if r.body.Error == nil {
		return ""
	}
	return r.body.Error.Code
}

func call(t *testing.T, url string, req request) response {
	t.Helper()
	var body io.Reader = strings.NewReader(req.body)
	if req.chunked {
		body = struct{ io.Reader }{body} // hides the length from http.NewRequest
	}
	hr, err := http.NewRequest(req.method, url+req.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch req.auth {
	case "":
		hr.Header.Set("Authorization", "Bearer "+serviceToken)
	case "-":
	default:
		hr.Header.Set("Authorization", req.auth)
	}
	switch req.contentType {
	case "":
		hr.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		hr.Header.Set("Content-Type", req.contentType)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := response{status: res.StatusCode, header: res.Header}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json", req.method, req.path, ct)
	}
	if err := json.NewDecoder(res.Body).Decode(&out.body); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", req.method, req.path, err)
	}
	return out
}

func serveAPI(t *testing.T, cfg ingest.Config, hcfg ingest.HandlerConfig) string {
	t.Helper()
	srv := httptest.NewServer(ingest.NewHandler(newIngester(t, cfg), hcfg))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHTTPAPI sends every kind of bad request, then one good request per
// endpoint and variant, and reads the raw topic: it must hold exactly the
// good requests' records, each as the request asked.
func TestHTTPAPI(t *testing.T) {
	const partitions = 3
	topic := stacktest.Topic(t, partitions, nil)
	url := serveAPI(t, ingest.Config{Topic: topic, Limits: ingest.Limits{MaxBodyBytes: 1024}},
		ingest.HandlerConfig{ServiceToken: serviceToken})

	msg := func(fields string) string {
		return `{"conversation_id":"dm:alice:bob","client_msg_id":"bad-1","sender_user_id":"alice","content_type":"text/plain","body":"x"` + fields + `}`
	}
	huge := `{"conversation_id":"dm:alice:bob","body":"` + strings.Repeat("x", 70<<10) + `"}`
	bad := []struct {
		name string
		req  request
		want int
		code string
	}{
		{"no token", request{method: "POST", path: "/v1/messages", body: msg(""), auth: "-"}, 401, "unauthorized"},
		{"forged token", request{method: "POST", path: "/v1/messages", body: msg(""), auth: "Bearer test-service-token-0123456788"}, 401, "unauthorized"},
		{"token prefix", request{method: "POST", path: "/v1/messages", body: msg(""), auth: "Bearer " + serviceToken[:20]}, 401, "unauthorized"},
		{"token with a suffix", request{method: "POST", path: "/v1/messages", body: msg(""), auth: "Bearer " + serviceToken + "x"}, 401, "unauthorized"},
		{"basic scheme", request{method: "POST", path: "/v1/messages", body: msg(""), auth: "Basic " + serviceToken}, 401, "unauthorized"},
		{"no token on an unknown route", request{method: "GET", path: "/admin", auth: "-"}, 401, "unauthorized"},
		{"unknown route", request{method: "GET", path: "/v1/users"}, 404, "not_found"},
		{"unknown subpath", request{method: "POST", path: "/v1/messages/x", body: msg("")}, 404, "not_found"},
		{"GET messages", request{method: "GET", path: "/v1/messages"}, 405, "method_not_allowed"},
		{"PUT members", request{method: "PUT", path: "/v1/groups/team/members", body: "{}"}, 405, "method_not_allowed"},
		{"POST a member's path", request{method: "POST", path: "/v1/groups/team/members/dave", body: "{}"}, 405, "method_not_allowed"},
		{"text/plain", request{method: "POST", path: "/v1/messages", body: msg(""), contentType: "text/plain"}, 415, "unsupported_media_type"},
		{"no content type", request{method: "POST", path: "/v1/groups", body: "{}", contentType: "-"}, 415, "unsupported_media_type"},
		{"over the request limit", request{method: "POST", path: "/v1/messages", body: huge}, 413, "too_large"},
		{"over the request limit, chunked", request{method: "POST", path: "/v1/messages", body: huge, chunked: true}, 413, "too_large"},
		{"malformed JSON", request{method: "POST", path: "/v1/messages", body: `{"conversation_id":`}, 400, "invalid"},
		{"not an object", request{method: "POST", path: "/v1/messages", body: `["dm:alice:bob"]`}, 400, "invalid"},
		{"empty body", request{method: "POST", path: "/v1/groups", body: ""}, 400, "invalid"},
		{"unknown field", request{method: "POST", path: "/v1/messages", body: msg(`,"sender":"mallory"`)}, 400, "invalid"},
		{"data after the object", request{method: "POST", path: "/v1/messages", body: msg("") + `{}`}, 400, "invalid"},
		{"negative client_seq", request{method: "POST", path: "/v1/messages", body: msg(`,"client_seq":-1`)}, 400, "invalid"},
		{"body over MaxBodyBytes", request{method: "POST", path: "/v1/messages", body: `{"conversation_id":"dm:alice:bob","client_msg_id":"bad-2","sender_user_id":"alice","content_type":"text/plain","body":"` + strings.Repeat("x", 1025) + `"}`}, 400, "invalid"},
		{"unsorted dm", request{method: "POST", path: "/v1/messages", body: `{"conversation_id":"dm:bob:alice","client_msg_id":"bad-3","sender_user_id":"alice","content_type":"text/plain"}`}, 400, "invalid"},
		{"client_msg_id with a space", request{method: "POST", path: "/v1/messages", body: `{"conversation_id":"g:team","client_msg_id":"bad 4","sender_user_id":"alice","content_type":"text/plain"}`}, 400, "invalid"},
		{"missing content_type", request{method: "POST", path: "/v1/messages", body: `{"conversation_id":"g:team","client_msg_id":"bad-5","sender_user_id":"alice"}`}, 400, "invalid"},
		{"dm sender not a participant", request{method: "POST", path: "/v1/messages", body: `{"conversation_id":"dm:alice:bob","client_msg_id":"bad-6","sender_user_id":"mallory","content_type":"text/plain"}`}, 403, "not_member"},
		{"group without id", request{method: "POST", path: "/v1/groups", body: `{"client_msg_id":"bad-7","creator_user_id":"alice"}`}, 400, "invalid"},
		{"group with a bad member", request{method: "POST", path: "/v1/groups", body: `{"group_id":"team","client_msg_id":"bad-8","creator_user_id":"alice","members":["bob:x"]}`}, 400, "invalid"},
		{"join without user", request{method: "POST", path: "/v1/groups/team/members", body: `{"client_msg_id":"bad-9"}`}, 400, "invalid"},
		{"join of a bad group id", request{method: "POST", path: "/v1/groups/te%20am/members", body: `{"user_id":"dave","client_msg_id":"bad-10"}`}, 400, "invalid"},
		{"remove without client_msg_id", request{method: "DELETE", path: "/v1/groups/team/members/dave"}, 400, "invalid"},
		{"remove with an unknown parameter", request{method: "DELETE", path: "/v1/groups/team/members/dave?client_msg_id=bad-11&as=root"}, 400, "invalid"},
		{"remove with a repeated parameter", request{method: "DELETE", path: "/v1/groups/team/members/dave?client_msg_id=bad-12&client_msg_id=bad-13"}, 400, "invalid"},
		{"remove of a bad user id", request{method: "DELETE", path: "/v1/groups/team/members/da:ve?client_msg_id=bad-14"}, 400, "invalid"},
		{"revision of an unknown op", request{method: "POST", path: "/v1/revisions", body: `{"conversation_id":"g:team","client_msg_id":"bad-15","sender_user_id":"alice","op":"undo","target_seq":3}`}, 400, "invalid"},
		{"recall with a body", request{method: "POST", path: "/v1/revisions", body: `{"conversation_id":"g:team","client_msg_id":"bad-16","sender_user_id":"alice","op":"recall","target_seq":3,"body":"x"}`}, 400, "invalid"},
		{"revision of seq 0", request{method: "POST", path: "/v1/revisions", body: `{"conversation_id":"g:team","client_msg_id":"bad-17","sender_user_id":"alice","op":"recall"}`}, 400, "invalid"},
		{"edit without content_type", request{method: "POST", path: "/v1/revisions", body: `{"conversation_id":"g:team","client_msg_id":"bad-18","sender_user_id":"alice","op":"edit","target_seq":3,"body":"x"}`}, 400, "invalid"},
		{"GET revisions", request{method: "GET", path: "/v1/revisions"}, 405, "method_not_allowed"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			res := call(t, url, c.req)
			if res.status != c.want || res.code() != c.code {
				t.Fatalf("%d %q, want %d %q", res.status, res.code(), c.want, c.code)
			}
			if res.body.Error.Message == "" {
				t.Errorf("error without a message")
			}
			if c.want == 405 && res.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
			if c.want == 401 && res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without a WWW-Authenticate header")
			}
		})
	}

	// The good requests, after all the bad ones, and the records they must give.
	raw := func(conv, cmid, user, device string, seq uint64) *imv1.RawRecord {
		return &imv1.RawRecord{Version: imv1.Version, ConversationId: conv, ClientMsgId: cmid,
			SenderUserId: user, SenderDeviceId: device, ClientSeq: seq, Origin: "ingest"}
	}
	withMessage := func(r *imv1.RawRecord, ct, body string) *imv1.RawRecord {
		r.Body = &imv1.RawRecord_Message{Message: &imv1.ChatMessage{ContentType: ct, Body: []byte(body)}}
		return r
	}
	withControl := func(r *imv1.RawRecord, c *imv1.Control) *imv1.RawRecord {
		r.Body = &imv1.RawRecord_Control{Control: c}
		return r
	}
	withRevision := func(r *imv1.RawRecord, rev *imv1.Revision) *imv1.RawRecord {
		r.Body = &imv1.RawRecord_Revision{Revision: rev}
		return r
	}
	good := []struct {
		name string
		req  request
		want *imv1.RawRecord
	}{
		{"message with defaults", request{method: "POST", path: "/v1/messages",
			body: `{"conversation_id":"dm:alice:bob","client_msg_id":"ok-1","sender_user_id":"bob","content_type":"text/plain","body":"héllo"}`},
			withMessage(raw("dm:alice:bob", "ok-1", "bob", "server", 0), "text/plain", "héllo")},
		{"message with device and client_seq", request{method: "POST", path: "/v1/messages", contentType: "application/json; charset=utf-8",
			body: `{"conversation_id":"g:team","client_msg_id":"ok-2","sender_user_id":"notifier","sender_device_id":"bot:1","client_seq":5,"content_type":"application/vnd.notice+json","body":"{\"k\":1}"}`},
			withMessage(raw("g:team", "ok-2", "notifier", "bot:1", 5), "application/vnd.notice+json", `{"k":1}`)},
		{"create group", request{method: "POST", path: "/v1/groups",
			body: `{"group_id":"team","client_msg_id":"ok-3","creator_user_id":"alice","title":"Launch","members":["bob","carol"]}`},
			withControl(raw("g:team", "ok-3", "alice", "server", 0), createGroup("Launch", "bob", "carol"))},
		{"self-join", request{method: "POST", path: "/v1/groups/team/members", body: `{"user_id":"dave","client_msg_id":"ok-4"}`},
			withControl(raw("g:team", "ok-4", "dave", "server", 0), join("dave"))},
		{"join by a member", request{method: "POST", path: "/v1/groups/team/members", body: `{"user_id":"erin","actor_user_id":"alice","client_msg_id":"ok-5"}`},
			withControl(raw("g:team", "ok-5", "alice", "server", 0), join("erin"))},
		{"leave", request{method: "DELETE", path: "/v1/groups/team/members/dave?client_msg_id=ok-6"},
			withControl(raw("g:team", "ok-6", "dave", "server", 0), leave())},
		{"leave naming itself as actor", request{method: "DELETE", path: "/v1/groups/team/members/erin?client_msg_id=ok-7&actor_user_id=erin"},
			withControl(raw("g:team", "ok-7", "erin", "server", 0), leave())},
		{"kick", request{method: "DELETE", path: "/v1/groups/team/members/carol?client_msg_id=ok-8&actor_user_id=alice"},
			withControl(raw("g:team", "ok-8", "alice", "server", 0), kick("carol"))},
		{"group id with a colon", request{method: "POST", path: "/v1/groups", body: `{"group_id":"org:sales","client_msg_id":"ok-9","creator_user_id":"zoe"}`},
			withControl(raw("g:org:sales", "ok-9", "zoe", "server", 0), createGroup(""))},
		{"edit", request{method: "POST", path: "/v1/revisions", body: `{"conversation_id":"g:team","client_msg_id":"ok-10","sender_user_id":"notifier","op":"edit","target_seq":3,"content_type":"text/plain","body":"fixed"}`},
			withRevision(raw("g:team", "ok-10", "notifier", "server", 0), &imv1.Revision{TargetSeq: 3,
				Op: &imv1.Revision_Edit{Edit: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("fixed")}}})},
		{"recall", request{method: "POST", path: "/v1/revisions", body: `{"conversation_id":"g:team","client_msg_id":"ok-11","sender_user_id":"notifier","sender_device_id":"bot:1","client_seq":6,"op":"recall","target_seq":3}`},
			withRevision(raw("g:team", "ok-11", "notifier", "bot:1", 6), &imv1.Revision{TargetSeq: 3, Op: &imv1.Revision_Recall{Recall: &imv1.Recall{}}})},
	}
	want := map[string]*imv1.RawRecord{}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			res := call(t, url, c.req)
			if res.status != http.StatusAccepted || res.body.Status != "accepted" ||
				res.body.ConversationID != c.want.GetConversationId() || res.body.ClientMsgID != c.want.GetClientMsgId() {
				t.Fatalf("%d %+v, want 202 accepted %s %s", res.status, res.body, c.want.GetConversationId(), c.want.GetClientMsgId())
			}
		})
		want[c.want.GetClientMsgId()] = c.want
	}

	for _, r := range readRaw(t, topic, len(good)) {
		checkPlacement(t, r, partitions)
		id := r.rec.GetClientMsgId()
		w, ok := want[id]
		if !ok {
			t.Errorf("unexpected record %v", r.rec)
			continue
		}
		delete(want, id)
		if r.rec.GetReceivedAtMs() <= 0 {
			t.Errorf("%s: received_at_ms not set", id)
		}
		w.ReceivedAtMs = r.rec.GetReceivedAtMs()
		if !proto.Equal(r.rec, w) {
			t.Errorf("%s:\n got %v\nwant %v", id, r.rec, w)
		}
	}
	if n := recordsIn(t, topic); n != int64(len(good)) {
		t.Errorf("topic holds %d records, want the %d good ones only", n, len(good))
	}
}

// TestHTTPUnavailable: a send the broker does not acknowledge is 503
// unavailable, which tells the client to retry with the same client_msg_id.
func TestHTTPUnavailable(t *testing.T) {
	url := serveAPI(t, ingest.Config{Topic: stacktest.Name(t, "missing")}, ingest.HandlerConfig{ServiceToken: serviceToken})
	res := call(t, url, request{method: "POST", path: "/v1/messages",
		body: `{"conversation_id":"dm:alice:bob","client_msg_id":"c-1","sender_user_id":"alice","content_type":"text/plain"}`})
	if res.status != http.StatusServiceUnavailable || res.code() != "unavailable" || res.header.Get("Retry-After") == "" {
		t.Fatalf("%d %q Retry-After %q, want 503 unavailable with Retry-After", res.status, res.code(), res.header.Get("Retry-After"))
	}
}

// TestHTTPRequestLimit: MaxRequestBytes is the handler's, not a constant.
func TestHTTPRequestLimit(t *testing.T) {
	url := serveAPI(t, ingest.Config{Topic: stacktest.Topic(t, 1, nil)}, ingest.HandlerConfig{ServiceToken: serviceToken, MaxRequestBytes: 150})
	body := `{"conversation_id":"dm:alice:bob","client_msg_id":"c-1","sender_user_id":"alice","content_type":"text/plain","body":"%s"}`
	for _, c := range []struct {
		pad  int
		want int
	}{{0, 202}, {100, 413}} {
		for _, chunked := range []bool{false, true} {
			res := call(t, url, request{method: "POST", path: "/v1/messages", chunked: chunked,
				body: strings.Replace(body, "%s", strings.Repeat("x", c.pad), 1)})
			if res.status != c.want {
				t.Errorf("pad %d chunked %v: %d %q, want %d", c.pad, chunked, res.status, res.code(), c.want)
			}
		}
	}
}

// TestHTTPMisconfigured: a handler built with a token that is too short
// refuses everything, even a caller presenting that token.
func TestHTTPMisconfigured(t *testing.T) {
	ing, err := ingest.New(ingest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	for _, token := range []string{"", "short"} {
		srv := httptest.NewServer(ingest.NewHandler(ing, ingest.HandlerConfig{ServiceToken: token}))
		res := call(t, srv.URL, request{method: "POST", path: "/v1/messages", auth: "Bearer " + token, body: "{}"})
		srv.Close()
		if res.status != http.StatusInternalServerError || res.code() != "internal" {
			t.Errorf("token %q: %d %q, want 500 internal", token, res.status, res.code())
		}
	}
}

func TestHandlerConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg ingest.HandlerConfig
		ok  bool
	}{
		{ingest.HandlerConfig{ServiceToken: strings.Repeat("k", 16)}, true},
		{ingest.HandlerConfig{ServiceToken: strings.Repeat("k", 15)}, false},
		{ingest.HandlerConfig{}, false},
		{ingest.HandlerConfig{ServiceToken: serviceToken, MaxRequestBytes: -1}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", c.cfg, err, c.ok)
		}
	}
}

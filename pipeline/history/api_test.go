package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/pipeline/history"
	"github.com/seqchat/seqchat/schemas/historyapi"
	"github.com/seqchat/seqchat/schemas/imv1"
	"github.com/seqchat/seqchat/testsupport/stacktest"
)

// apiFixture is a read API over a store holding:
//
//	g:team  1 created alice,bob  2 msg  3 carol joins  4 msg  5 carol leaves
//	        6 msg  7 carol joins  8 msg  9 bob kicked  10 msg
//	dm:alice:bob  1..3 msg
//	g:gap   1 created alice  2 3 msg  (4 missing)  5 6 msg
//	g:churn 1 created alice, then 70 times: carol joins, msg, carol leaves
//
// with some rows written twice, as a sink does after a crash.
func apiFixture(t *testing.T) (string, *history.Store) {
	t.Helper()
	store, _, _ := newStore(t)
	const C, J, L, K = imv1.MembershipEvent_CREATED, imv1.MembershipEvent_JOINED, imv1.MembershipEvent_LEFT, imv1.MembershipEvent_KICKED
	recs := []*imv1.SequencedRecord{
		membership("g:team", 1, C, "Team", "alice", "bob"), message("g:team", 2, "two"), membership("g:team", 3, J, "", "carol"),
		message("g:team", 4, "four"), membership("g:team", 5, L, "", "carol"), message("g:team", 6, "six"),
		membership("g:team", 7, J, "", "carol"), message("g:team", 8, "eight"), membership("g:team", 9, K, "", "bob"),
		message("g:team", 10, "ten"),
		message("dm:alice:bob", 1, "a"), message("dm:alice:bob", 2, "b"), message("dm:alice:bob", 3, "c"),
		membership("g:gap", 1, C, "", "alice"), message("g:gap", 2, ""), message("g:gap", 3, ""), message("g:gap", 5, ""), message("g:gap", 6, ""),
		membership("g:churn", 1, C, "", "alice"),
	}
	for i := uint64(0); i < 70; i++ {
		recs = append(recs, membership("g:churn", 2+3*i, J, "", "carol"), message("g:churn", 3+3*i, ""), membership("g:churn", 4+3*i, L, "", "carol"))
	}
	insert(t, store, recs...)
	insert(t, store, recs[1:6]...) // duplicates
	return serve(t, store).URL, store
}

func insert(t *testing.T, store *history.Store, recs ...*imv1.SequencedRecord) {
	t.Helper()
	var rows []history.Row
	for _, r := range recs {
		row, err := history.RowOf(r)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if err := store.Insert(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

func serve(t testing.TB, store *history.Store) *httptest.Server {
	t.Helper()
	h, err := history.NewHandler(history.HandlerConfig{Store: store, ServiceToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get requests base+path with the Authorization header auth ("": none).
func get(t *testing.T, base, method, path, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, b
}

func read(t *testing.T, base, conv, query string) historyapi.Page {
	t.Helper()
	status, body := get(t, base, "GET", "/v1/conversations/"+conv+"/messages?"+query, "Bearer "+testToken)
	if status != http.StatusOK {
		t.Fatalf("%s?%s: %d %s", conv, query, status, body)
	}
	var p historyapi.Page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func seqs(p historyapi.Page) []uint64 {
	out := []uint64{}
	for _, e := range p.Entries {
		out = append(out, e.Seq)
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestReadMembershipPeriods(t *testing.T) {
	srv, _ := apiFixture(t)
	for _, tc := range []struct {
		name, conv, query      string
		want                   []uint64
		complete, nextAfterSeq uint64
	}{
		{"creator sees all", "g:team", "user=alice", span(1, 10), 10, 10},
		{"kicked at 9 sees up to 9", "g:team", "user=bob", span(1, 9), 10, 9},
		{"joined 3, left 5, rejoined 7", "g:team", "user=carol", []uint64{3, 4, 5, 7, 8, 9, 10}, 10, 10},
		{"after_seq inside a gap of membership", "g:team", "user=carol&after_seq=5", []uint64{7, 8, 9, 10}, 10, 10},
		{"limit", "g:team", "user=alice&limit=3", []uint64{1, 2, 3}, 10, 3},
		{"next page", "g:team", "user=alice&after_seq=3&limit=3", []uint64{4, 5, 6}, 10, 6},
		{"limit across periods", "g:team", "user=carol&after_seq=3&limit=3", []uint64{4, 5, 7}, 10, 7},
		{"nothing after the end", "g:team", "user=alice&after_seq=10", []uint64{}, 10, 10},
		{"nothing after a leave", "g:team", "user=bob&after_seq=9", []uint64{}, 10, 9},
		{"dm first user", "dm:alice:bob", "user=alice", span(1, 3), 3, 3},
		{"dm second user", "dm:alice:bob", "user=bob&after_seq=1", span(2, 3), 3, 3},
		{"dm with no history yet", "dm:alice:zed", "user=zed", []uint64{}, 0, 0},
		{"stops before a missing seq", "g:gap", "user=alice", span(1, 3), 3, 3},
		{"nothing past the gap", "g:gap", "user=alice&after_seq=3", []uint64{}, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := read(t, srv, tc.conv, tc.query)
			if got := seqs(p); !slices.Equal(got, tc.want) || p.CompleteUpTo != tc.complete || p.NextAfterSeq != tc.nextAfterSeq ||
				p.ConversationID != tc.conv {
				t.Errorf("%s?%s: seqs %v complete_up_to %d next_after_seq %d conv %q; want %v %d %d",
					tc.conv, tc.query, got, p.CompleteUpTo, p.NextAfterSeq, p.ConversationID, tc.want, tc.complete, tc.nextAfterSeq)
			}
		})
	}
}

// TestReadPagesThroughManyPeriods: a user with more periods than one query
// takes (MaxRangesPerQuery) pages through all of them, whatever the limit.
func TestReadPagesThroughManyPeriods(t *testing.T) {
	srv, _ := apiFixture(t)
	var want []uint64
	for i := uint64(0); i < 70; i++ {
		want = append(want, 2+3*i, 3+3*i, 4+3*i)
	}
	for _, limit := range []int{7, 1000} {
		var got []uint64
		after, pages := uint64(0), 0
		for ; pages < 100; pages++ {
			p := read(t, srv, "g:churn", fmt.Sprintf("user=carol&after_seq=%d&limit=%d", after, limit))
			got = append(got, seqs(p)...)
			if p.NextAfterSeq == after {
				break
			}
			after = p.NextAfterSeq
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paged %d times and read %v, want %v", limit, pages, got, want)
		}
	}
}

func TestReadRefusals(t *testing.T) {
	srv, _ := apiFixture(t)
	auth := "Bearer " + testToken
	long := "g:" + strings.Repeat("x", 127)
	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		code                     string
	}{
		{"no token", "GET", "/v1/conversations/g:team/messages?user=alice", "", 401, "unauthorized"},
		{"forged token", "GET", "/v1/conversations/g:team/messages?user=alice", "Bearer " + testToken + "x", 401, "unauthorized"},
		{"token prefix", "GET", "/v1/conversations/g:team/messages?user=alice", "Bearer " + testToken[:16], 401, "unauthorized"},
		{"not bearer", "GET", "/v1/conversations/g:team/messages?user=alice", "Basic " + testToken, 401, "unauthorized"},
		{"no token, unknown path", "GET", "/admin", "", 401, "unauthorized"},
		{"never a member", "GET", "/v1/conversations/g:team/messages?user=dave", auth, 403, "not_member"},
		{"dm third party", "GET", "/v1/conversations/dm:alice:bob/messages?user=carol", auth, 403, "not_member"},
		{"unknown group", "GET", "/v1/conversations/g:nope/messages?user=alice", auth, 404, "not_found"},
		{"unknown path", "GET", "/v1/conversations/g:team", auth, 404, "not_found"},
		{"wrong method", "POST", "/v1/conversations/g:team/messages?user=alice", auth, 405, "method_not_allowed"},
		{"no user", "GET", "/v1/conversations/g:team/messages", auth, 400, "invalid"},
		{"bad user", "GET", "/v1/conversations/g:team/messages?user=a%20b", auth, 400, "invalid"},
		{"user twice", "GET", "/v1/conversations/g:team/messages?user=alice&user=bob", auth, 400, "invalid"},
		{"negative after_seq", "GET", "/v1/conversations/g:team/messages?user=alice&after_seq=-1", auth, 400, "invalid"},
		{"text after_seq", "GET", "/v1/conversations/g:team/messages?user=alice&after_seq=x", auth, 400, "invalid"},
		{"limit 0", "GET", "/v1/conversations/g:team/messages?user=alice&limit=0", auth, 400, "invalid"},
		{"limit over max", "GET", "/v1/conversations/g:team/messages?user=alice&limit=1001", auth, 400, "invalid"},
		{"text limit", "GET", "/v1/conversations/g:team/messages?user=alice&limit=ten", auth, 400, "invalid"},
		{"unknown parameter", "GET", "/v1/conversations/g:team/messages?user=alice&before=3", auth, 400, "invalid"},
		{"bad conversation", "GET", "/v1/conversations/x:1/messages?user=alice", auth, 400, "invalid"},
		{"unsorted dm", "GET", "/v1/conversations/dm:bob:alice/messages?user=alice", auth, 400, "invalid"},
		{"dm with itself", "GET", "/v1/conversations/dm:alice:alice/messages?user=alice", auth, 400, "invalid"},
		{"empty group", "GET", "/v1/conversations/g:/messages?user=alice", auth, 400, "invalid"},
		{"long conversation", "GET", "/v1/conversations/" + long + "/messages?user=alice", auth, 400, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, srv, tc.method, tc.path, tc.auth)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || status != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("%s %s: %d %s; want %d with code %q and a message", tc.method, tc.path, status, body, tc.status, tc.code)
			}
		})
	}
}

// TestReadJSONShape pins the answer's JSON: a message carries "message",
// a membership event "event", never both.
func TestReadJSONShape(t *testing.T) {
	srv, _ := apiFixture(t)
	_, body := get(t, srv, "GET", "/v1/conversations/g:team/messages?user=alice&limit=2", "Bearer "+testToken)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	created, msg := entry("g:team", 1), entry("g:team", 2)
	want := map[string]any{
		"conversation_id": "g:team", "complete_up_to": 10.0, "next_after_seq": 2.0,
		"entries": []any{
			map[string]any{"seq": 1.0, "msg_id": created.MsgId, "sender_user_id": "alice", "sender_device_id": "phone",
				"client_msg_id": "c1", "sequenced_at_ms": float64(created.SequencedAtMs), "predecessor_missing": false,
				"event": map[string]any{"kind": "created", "user_ids": []any{"alice", "bob"}, "title": "Team"}},
			map[string]any{"seq": 2.0, "msg_id": msg.MsgId, "sender_user_id": "alice", "sender_device_id": "phone",
				"client_msg_id": "c2", "sequenced_at_ms": float64(msg.SequencedAtMs), "predecessor_missing": false,
				"message": map[string]any{"content_type": "text/plain", "body": "two"}},
		},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answer\n%v\nwant\n%v", got, want)
	}
}

// TestReadUnavailable: a store whose ClickHouse does not answer gives 503.
func TestReadUnavailable(t *testing.T) {
	_, db := stacktest.ClickHouse(t)
	// A connection of its own: stacktest's drops the database at cleanup.
	conn, _, err := chstore.Open(context.Background(), chstore.Config{Addr: os.Getenv(stacktest.EnvClickHouseAddr), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	store, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, store).URL
	conn.Close()
	status, body := get(t, srv, "GET", "/v1/conversations/g:team/messages?user=alice", "Bearer "+testToken)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
		t.Errorf("with ClickHouse gone: %d %s, want 503 unavailable", status, body)
	}
}

func TestNewHandlerRefusesBadConfig(t *testing.T) {
	if _, err := history.NewStore(nil, "x"); err == nil {
		t.Fatal("NewStore accepted a nil connection")
	}
	conn, db := stacktest.ClickHouse(t)
	if _, err := history.NewStore(conn, "x; DROP TABLE y"); err == nil {
		t.Fatal("NewStore accepted a database name that is not an identifier")
	}
	store, err := history.NewStore(conn, db)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]history.HandlerConfig{
		"no store":    {ServiceToken: testToken},
		"short token": {Store: store, ServiceToken: "short"},
	} {
		if _, err := history.NewHandler(cfg); err == nil {
			t.Errorf("%s: NewHandler accepted it", name)
		}
	}
}

// TestReadQueuesBeyondConcurrencyLimit: a burst of reads far above
// MaxConcurrentRequests (a reconnect storm) waits for slots and is answered
// in full, each read right; no slot leaks.
func TestReadQueuesBeyondConcurrencyLimit(t *testing.T) {
	store, _, _ := newStore(t)
	var recs []*imv1.SequencedRecord
	for seq := uint64(1); seq <= 20; seq++ {
		recs = append(recs, message("dm:alice:bob", seq, fmt.Sprint(seq)))
	}
	insert(t, store, recs...)
	reg := prometheus.NewRegistry()
	h, err := history.NewHandler(history.HandlerConfig{Store: store, ServiceToken: testToken, MaxConcurrentRequests: 2, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	const burst = 60
	var wg sync.WaitGroup
	errs := make(chan error, burst)
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after := uint64(i % 20)
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/conversations/dm:alice:bob/messages?user=bob&after_seq=%d", srv.URL, after), nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var p historyapi.Page
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("after_seq %d: status %d, decode %v", after, resp.StatusCode, err)
				return
			}
			if got := seqs(p); !slices.Equal(got, span(after+1, 20)) {
				errs <- fmt.Errorf("after_seq %d: seqs %v", after, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := stacktest.Gathered(t, reg, "seqchat_history_api_waiting_requests"); got != 0 {
		t.Errorf("%v requests still waiting after the burst", got)
	}
	if got := stacktest.Gathered(t, reg, "seqchat_history_api_requests_total", "code", "ok"); got != burst {
		t.Errorf("%v reads answered ok, want %d", got, burst)
	}
}

// TestCatchUpGivesTheSinglePagesInOneCall: a catch-up of several
// conversations answers each exactly as its own read would, and refuses
// per conversation what a read refuses.
func TestCatchUpGivesTheSinglePagesInOneCall(t *testing.T) {
	srv, _ := apiFixture(t)
	post := func(user, body string) (int, historyapi.CatchUp) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv+"/v1/users/"+user+"/catch-up", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out historyapi.CatchUp
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		user    string
		after   map[string]uint64
		refused map[string]string // conversation -> code
	}{
		{"alice", map[string]uint64{"g:team": 0, "dm:alice:bob": 1, "g:gap": 0, "g:churn": 5}, nil},
		{"carol", map[string]uint64{"g:team": 3, "g:churn": 0, "dm:alice:bob": 0, "g:gap": 0, "g:nothing": 0, "g:bad id": 0},
			map[string]string{"dm:alice:bob": "not_member", "g:gap": "not_member", "g:nothing": "not_found", "g:bad id": "invalid"}},
	} {
		body, _ := json.Marshal(historyapi.CatchUpRequest{After: tc.after, Limit: 3})
		status, out := post(tc.user, string(body))
		if status != http.StatusOK {
			t.Fatalf("%s: status %d", tc.user, status)
		}
		gotRefused := map[string]string{}
		for _, r := range out.Refused {
			gotRefused[r.ConversationID] = r.Code
		}
		if len(gotRefused) != len(tc.refused) {
			t.Errorf("%s: refused %v, want %v", tc.user, gotRefused, tc.refused)
		}
		for conv, code := range tc.refused {
			if gotRefused[conv] != code {
				t.Errorf("%s: %s refused %q, want %q", tc.user, conv, gotRefused[conv], code)
			}
		}
		if len(out.Pages)+len(out.Refused) != len(tc.after) {
			t.Errorf("%s: %d pages and %d refusals for %d conversations", tc.user, len(out.Pages), len(out.Refused), len(tc.after))
		}
		for _, p := range out.Pages {
			want := read(t, srv, p.ConversationID, fmt.Sprintf("user=%s&after_seq=%d&limit=3", tc.user, tc.after[p.ConversationID]))
			g, _ := json.Marshal(p)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("%s %s:\n catch-up %s\n read     %s", tc.user, p.ConversationID, g, w)
			}
		}
	}
	if status, _ := post("bad user", `{"after": {"g:team": 0}}`); status != http.StatusBadRequest {
		t.Errorf("invalid user: status %d, want 400", status)
	}
	if status, _ := post("alice", `{"after": {"g:team": 0}, "extra": 1}`); status != http.StatusBadRequest {
		t.Errorf("unknown field: status %d, want 400", status)
	}
}

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seqchat/seqchat/schemas/historyapi"
)

// ErrNotMember means the user was never a member of the conversation.
var ErrNotMember = errors.New("not a member")

// ErrUnknownConversation means the group was never created (history's
// 404 unknown_conversation; its plain not_found means "not stored yet").
var ErrUnknownConversation = errors.New("unknown conversation")

// HistoryPage is a page of a conversation's history as one user may see it.
type HistoryPage struct {
	// Epoch of the conversation's stream the page is of (its current one).
	Epoch   uint64
	Entries []MsgFrame
	// CompleteUpTo: history holds every seq up to here; a hole past it is
	// "not written yet", not "missing".
	CompleteUpTo uint64
}

// History is what the gateway needs of the history service: a
// conversation's entries after a seq, filtered to the periods in which user
// was a member; the conversations a user belongs to; and each device's
// acknowledged positions, so a reconnect to any gateway resumes exactly.
type History interface {
	Read(ctx context.Context, conversation, user string, afterSeq uint64, limit int) (HistoryPage, error)
	// CatchUp reads the first page of each conversation after its seq in
	// one call (a reconnect); conversations it refuses are left out, for
	// Read to report.
	CatchUp(ctx context.Context, user string, after map[string]uint64, limit int) (map[string]HistoryPage, error)
	Conversations(ctx context.Context, user string) ([]string, error)
	// Unread lists the user's conversations with its read position and
	// unread count in each.
	Unread(ctx context.Context, user string) ([]historyapi.ConversationState, error)
	// Progress is, per live generation's sequenced topic and partition,
	// the offset before which history has stored every record.
	Progress(ctx context.Context) (historyapi.Progress, error)
	// Positions are the device's acknowledged positions, and the epoch of
	// each one's stream where it is not 0.
	Positions(ctx context.Context, user, device string) (positions, epochs map[string]uint64, err error)
	SavePositions(ctx context.Context, user, device string, positions, epochs map[string]uint64) error
}

// HistoryClient calls the history service's HTTP read API
// (docs/history-api.md).
type HistoryClient struct {
	BaseURL string // e.g. http://127.0.0.1:8081
	Token   string // the service token
	// HTTP: nil means a client of its own that keeps enough idle
	// connections for a reconnect storm's concurrent reads (net/http's
	// default keeps 2 per host: every other read dialled, and closed, a
	// connection of its own).
	HTTP *http.Client

	once sync.Once
	own  *http.Client
}

func (c *HistoryClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() {
		c.own = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}
	})
	return c.own
}

func (c *HistoryClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("history %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("history %s %s: %w", method, path, ErrNotMember)
	case resp.StatusCode == http.StatusNotFound && errorCode(resp.Body) == "unknown_conversation":
		return fmt.Errorf("history %s %s: %w", method, path, ErrUnknownConversation)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("history %s %s: %s", method, path, resp.Status)
	case out == nil:
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("history %s %s: %w", method, path, err)
	}
	return nil
}

// errorCode is the code of a history error answer, "" if it has none.
func errorCode(body io.Reader) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.NewDecoder(io.LimitReader(body, 4096)).Decode(&e)
	return e.Error.Code
}

// Conversations implements History.
func (c *HistoryClient) Conversations(ctx context.Context, user string) ([]string, error) {
	var out struct {
		Conversations []string `json:"conversations"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(user)+"/conversations", nil, &out)
	return out.Conversations, err
}

// Unread implements History: GET /v1/users/{user}/unread.
func (c *HistoryClient) Unread(ctx context.Context, user string) ([]historyapi.ConversationState, error) {
	var out historyapi.ConversationList
	err := c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(user)+"/unread", nil, &out)
	return out.Conversations, err
}

// Progress implements History.
func (c *HistoryClient) Progress(ctx context.Context) (historyapi.Progress, error) {
	var out historyapi.Progress
	err := c.do(ctx, http.MethodGet, "/v1/progress", nil, &out)
	return out, err
}

// Positions implements History.
func (c *HistoryClient) Positions(ctx context.Context, user, device string) (positions, epochs map[string]uint64, err error) {
	var out struct {
		Positions map[string]uint64 `json:"positions"`
		Epochs    map[string]uint64 `json:"epochs"`
	}
	err = c.do(ctx, http.MethodGet, "/v1/devices/"+url.PathEscape(user)+"/"+url.PathEscape(device)+"/positions", nil, &out)
	return out.Positions, out.Epochs, err
}

// SavePositions implements History.
func (c *HistoryClient) SavePositions(ctx context.Context, user, device string, positions, epochs map[string]uint64) error {
	body := map[string]any{"positions": positions}
	if len(epochs) > 0 {
		body["epochs"] = epochs
	}
	return c.do(ctx, http.MethodPut, "/v1/devices/"+url.PathEscape(user)+"/"+url.PathEscape(device)+"/positions", body, nil)
}

// Read implements History.
// CatchUp calls POST /v1/users/{user}/catch-up.
func (c *HistoryClient) CatchUp(ctx context.Context, user string, after map[string]uint64, limit int) (map[string]HistoryPage, error) {
	var out historyapi.CatchUp
	body := historyapi.CatchUpRequest{After: after, Limit: limit}
	if err := c.do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(user)+"/catch-up", body, &out); err != nil {
		return nil, err
	}
	pages := make(map[string]HistoryPage, len(out.Pages))
	for _, p := range out.Pages {
		pages[p.ConversationID] = pageFrames(p.ConversationID, p)
	}
	return pages, nil
}

func (c *HistoryClient) Read(ctx context.Context, conversation, user string, afterSeq uint64, limit int) (HistoryPage, error) {
	q := url.Values{"user": {user}, "after_seq": {strconv.FormatUint(afterSeq, 10)}, "limit": {strconv.Itoa(limit)}}
	var page historyapi.Page
	if err := c.do(ctx, http.MethodGet, "/v1/conversations/"+url.PathEscape(conversation)+"/messages?"+q.Encode(), nil, &page); err != nil {
		return HistoryPage{}, err
	}
	return pageFrames(conversation, page), nil
}

// pageFrames turns a page of the history API into msg frames.
func pageFrames(conversation string, p historyapi.Page) HistoryPage {
	out := HistoryPage{Epoch: p.Epoch, Entries: make([]MsgFrame, len(p.Entries)), CompleteUpTo: p.CompleteUpTo}
	for i, e := range p.Entries {
		out.Entries[i] = historyFrame(conversation, e)
	}
	return out
}

// historyFrame is an entry read from history as clients receive it: the
// same frame as the live one (EntryFrame).
func historyFrame(conversation string, e historyapi.Entry) MsgFrame {
	f := MsgFrame{Type: "msg", ConversationID: conversation, Seq: e.Seq, Epoch: e.Epoch, MsgID: e.MsgID, SenderUserID: e.SenderUserID,
		SenderDeviceID: e.SenderDeviceID, ClientMsgID: e.ClientMsgID, SequencedAtMs: e.SequencedAtMs,
		PredecessorMissing: e.PredecessorMissing}
	if e.Message != nil {
		f.Message = &MessageBody{ContentType: e.Message.ContentType, Body: e.Message.Body}
	}
	if e.Event != nil {
		f.Event = &eventBody{Kind: e.Event.Kind, UserIDs: e.Event.UserIDs, Title: e.Event.Title}
	}
	if e.Revision != nil {
		f.Revision = &Revision{Op: e.Revision.Op, TargetSeq: e.Revision.TargetSeq}
	}
	f.Edited, f.Recalled = e.Edited, e.Recalled
	return f
}

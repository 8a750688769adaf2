package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotMember means the user was never a member of the conversation.
var ErrNotMember = errors.New("not a member")

// HistoryPage is a page of a conversation's history as one user may see it.
type HistoryPage struct {
	Entries []MsgFrame
	// CompleteUpTo: history holds every seq up to here; a hole past it is
	// "not written yet", not "missing".
	CompleteUpTo uint64
}

// History reads a conversation's entries after a seq, filtered to the
// periods in which user was a member (the history service's read API).
type History interface {
	Read(ctx context.Context, conversation, user string, afterSeq uint64, limit int) (HistoryPage, error)
}

// HistoryClient calls the history service's HTTP read API
// (docs/history-api.md).
type HistoryClient struct {
	BaseURL string // e.g. http://127.0.0.1:8081
	Token   string // the service token
	HTTP    *http.Client
}

// Read implements History.
func (c *HistoryClient) Read(ctx context.Context, conversation, user string, afterSeq uint64, limit int) (HistoryPage, error) {
	q := url.Values{"user": {user}, "after_seq": {strconv.FormatUint(afterSeq, 10)}, "limit": {strconv.Itoa(limit)}}
	u := strings.TrimSuffix(c.BaseURL, "/") + "/v1/conversations/" + url.PathEscape(conversation) + "/messages?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return HistoryPage{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return HistoryPage{}, fmt.Errorf("history read %s: %w", conversation, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return HistoryPage{}, fmt.Errorf("history read %s for %s: %w", conversation, user, ErrNotMember)
	case resp.StatusCode != http.StatusOK:
		return HistoryPage{}, fmt.Errorf("history read %s: %s", conversation, resp.Status)
	}
	var page struct {
		Entries      []MsgFrame `json:"entries"`
		CompleteUpTo uint64     `json:"complete_up_to"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return HistoryPage{}, fmt.Errorf("history read %s: %w", conversation, err)
	}
	for i := range page.Entries {
		page.Entries[i].Type = "msg"
		page.Entries[i].ConversationID = conversation
	}
	return HistoryPage{Entries: page.Entries, CompleteUpTo: page.CompleteUpTo}, nil
}

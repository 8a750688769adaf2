package history_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/seqchat/seqchat/pipeline/history"
)

// TestDevicePositions: a device's positions read back as the highest saved
// per conversation, whatever the order of the saves.
func TestDevicePositions(t *testing.T) {
	store, _, _ := newStore(t)
	ctx := context.Background()
	for _, save := range []map[string]uint64{{"g:a": 5, "dm:u:v": 2}, {"g:a": 9}, {"g:a": 7, "g:b": 1}} {
		if err := store.SavePositions(ctx, "u", "phone", save, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SavePositions(ctx, "u", "web", map[string]uint64{"g:a": 100}, nil); err != nil {
		t.Fatal(err)
	}
	got, epochs, err := store.Positions(ctx, "u", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "map[dm:u:v:2 g:a:9 g:b:1]" || len(epochs) != 0 {
		t.Fatalf("positions of u/phone = %v %v, want g:a 9 (the highest), g:b 1, dm:u:v 2 of epoch 0; web's are its own", got, epochs)
	}

	// g:a's stream rebuilt under epoch 20: its position of epoch 20 wins,
	// though lower than epoch 0's.
	if err := store.SavePositions(ctx, "u", "phone", map[string]uint64{"g:a": 2}, map[string]uint64{"g:a": 20}); err != nil {
		t.Fatal(err)
	}
	if err := store.SavePositions(ctx, "u", "phone", map[string]uint64{"g:a": 1}, map[string]uint64{"g:a": 20}); err != nil {
		t.Fatal(err)
	}
	got, epochs, err = store.Positions(ctx, "u", "phone")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got, epochs) != "map[dm:u:v:2 g:a:2 g:b:1] map[g:a:20]" {
		t.Fatalf("positions of u/phone = %v %v, want g:a 2 of epoch 20", got, epochs)
	}
}

// TestConversationsOfAUser: groups the user was created in or joined
// (even if it left since), and direct conversations naming it, with no
// confusion between user ids that are prefixes of each other or contain
// LIKE wildcards.
func TestConversationsOfAUser(t *testing.T) {
	store, _, _ := newStore(t)
	ctx := context.Background()
	rows := []history.Row{
		{ConversationID: "g:one", Seq: 1, Kind: history.KindCreated, MemberUserIDs: []string{"a_1", "b"}},
		{ConversationID: "g:two", Seq: 1, Kind: history.KindCreated, MemberUserIDs: []string{"b"}},
		{ConversationID: "g:two", Seq: 2, Kind: history.KindJoined, MemberUserIDs: []string{"a_1"}},
		{ConversationID: "g:two", Seq: 3, Kind: history.KindLeft, MemberUserIDs: []string{"a_1"}},
		{ConversationID: "g:three", Seq: 1, Kind: history.KindCreated, MemberUserIDs: []string{"a_11", "ax1"}},
		{ConversationID: "dm:a_1:b", Seq: 1, Kind: history.KindMessage, SenderUserID: "a_1"},
		{ConversationID: "dm:a_11:b", Seq: 1, Kind: history.KindMessage, SenderUserID: "b"},
		{ConversationID: "dm:0:a_1", Seq: 1, Kind: history.KindMessage, SenderUserID: "0"},
		{ConversationID: "dm:0:xa_1", Seq: 1, Kind: history.KindMessage, SenderUserID: "0"},
	}
	if err := store.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := store.Conversations(ctx, "a_1")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[dm:0:a_1 dm:a_1:b g:one g:two]" {
		t.Fatalf("conversations of a_1 = %v", got)
	}
}

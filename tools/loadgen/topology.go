package loadgen

import (
	"fmt"
	"regexp"
)

// idPattern is the protocol's id syntax without ':' (run ids end up in
// user ids, which dm conversation ids are built from).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,128}$`)

// conversation is one conversation of the run and its member users.
type conversation struct {
	id      string
	members []int // indexes into topology.users; members[0] creates a group
	group   bool
}

// topology is who exists and who talks where.
type topology struct {
	users []string
	convs []conversation
}

// buildTopology lays out users, groups (consecutive users, wrapping) and
// dm pairs (distinct pairs, nearest neighbours first) for a defaulted,
// valid config.
func buildTopology(c Config) topology {
	var t topology
	for i := 0; i < c.Users; i++ {
		t.users = append(t.users, fmt.Sprintf("%s-u%04d", c.RunID, i))
	}
	for g := 0; g < c.Groups; g++ {
		cv := conversation{id: fmt.Sprintf("g:%s-g%03d", c.RunID, g), group: true}
		for j := 0; j < c.GroupSize; j++ {
			cv.members = append(cv.members, (g*c.GroupSize+j)%c.Users)
		}
		t.convs = append(t.convs, cv)
	}
	k := 0
	for d := 1; d < c.Users && k < c.DMs; d++ {
		for a := 0; a+d < c.Users && k < c.DMs; a++ {
			t.convs = append(t.convs, conversation{id: DMConversation(t.users[a], t.users[a+d]), members: []int{a, a + d}})
			k++
		}
	}
	return t
}

// DMConversation is the dm conversation id of two users: their ids sorted.
func DMConversation(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "dm:" + a + ":" + b
}

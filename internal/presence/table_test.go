package presence

import (
	"fmt"
	"testing"

	"github.com/seqchat/seqchat/schemas/imv1"
)

func ann(user, dev, gw string, epoch uint64, online bool) *imv1.Presence {
	return &imv1.Presence{Version: imv1.Version, UserId: user, DeviceId: dev, GatewayId: gw, Epoch: epoch, Online: online}
}

func TestLateOfflineNeverErasesNewerOnline(t *testing.T) {
	tbl := NewTable()
	steps := []struct {
		p       *imv1.Presence
		changed bool
		want    string
	}{
		{ann("alice", "phone", "gw1", 1, true), true, "map[gw1:[phone]]"},
		{ann("alice", "phone", "gw2", 2, true), true, "map[gw2:[phone]]"},   // reconnected elsewhere
		{ann("alice", "phone", "gw1", 1, false), false, "map[gw2:[phone]]"}, // the old connection's late offline
		{ann("alice", "phone", "gw2", 2, false), true, "map[]"},
		{ann("alice", "phone", "gw2", 2, true), false, "map[]"}, // a replayed online of the closed connection
		{ann("alice", "web", "gw1", 5, true), true, "map[gw1:[web]]"},
	}
	for i, s := range steps {
		if changed := tbl.Apply(s.p); changed != s.changed {
			t.Fatalf("step %d: changed = %v, want %v", i, changed, s.changed)
		}
		if got := fmt.Sprint(tbl.Devices("alice")); got != s.want {
			t.Fatalf("step %d: devices %s, want %s", i, got, s.want)
		}
	}
}

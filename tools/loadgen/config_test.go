package loadgen

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = []byte(strings.Repeat("k", 32))

func TestConfigDefaultsAndValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Gateways: []string{"ws://127.0.0.1:8090/ws"}, TokenKey: testKey}, true},
		{"no gateway", Config{TokenKey: testKey}, false},
		{"http gateway", Config{Gateways: []string{"http://127.0.0.1:8090/ws"}, TokenKey: testKey}, false},
		{"short key", Config{Gateways: []string{"ws://h:1/ws"}, TokenKey: []byte("short")}, false},
		{"group larger than users", Config{Gateways: []string{"ws://h:1/ws"}, TokenKey: testKey, Users: 5, GroupSize: 6}, false},
		{"too many dm pairs", Config{Gateways: []string{"ws://h:1/ws"}, TokenKey: testKey, Users: 3, Groups: -1, DMs: 4}, false},
		{"no conversations", Config{Gateways: []string{"ws://h:1/ws"}, TokenKey: testKey, Groups: -1, DMs: -1}, false},
		{"run id with colon", Config{Gateways: []string{"ws://h:1/ws"}, TokenKey: testKey, RunID: "a:b"}, false},
		{"seqchat by name", Config{Target: TargetSeqchat, Gateways: []string{"ws://h:1/ws"}, TokenKey: testKey}, true},
		{"unknown target", Config{Target: "nats", Gateways: []string{"ws://h:1/ws"}, TokenKey: testKey}, false},
		{"seqchat without key but with centrifugo secret", Config{Gateways: []string{"ws://h:1/ws"}, CentrifugoSecret: []byte("s")}, false},
		{"centrifugo", Config{Target: TargetCentrifugo, Gateways: []string{"ws://h:1/connection/websocket"}, CentrifugoSecret: []byte("s")}, true},
		{"centrifugo without secret", Config{Target: TargetCentrifugo, Gateways: []string{"ws://h:1/connection/websocket"}, TokenKey: testKey}, false},
		{"centrifugo without url", Config{Target: TargetCentrifugo, CentrifugoSecret: []byte("s")}, false},
		{"centrifugo http url", Config{Target: TargetCentrifugo, Gateways: []string{"http://h:1/connection/websocket"}, CentrifugoSecret: []byte("s")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want an ErrConfig", err)
			}
		})
	}
	c := Config{}
	c.setDefaults(time.UnixMilli(1))
	if c.Target != TargetSeqchat || c.Users != 200 || c.GroupSize != 10 || c.Groups != 20 || c.DMs != 20 || c.Rate != 200 ||
		c.Duration != 30*time.Second || c.Drain != 30*time.Second || c.RunID == "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestTopology(t *testing.T) {
	c := Config{Users: 6, GroupSize: 4, Groups: 3, DMs: 15, RunID: "r"}
	topo := buildTopology(c)
	if len(topo.users) != 6 || len(topo.convs) != 18 {
		t.Fatalf("%d users, %d conversations; want 6, 18", len(topo.users), len(topo.convs))
	}
	seen := map[string]bool{}
	for _, cv := range topo.convs {
		if seen[cv.id] {
			t.Errorf("conversation %s twice", cv.id)
		}
		seen[cv.id] = true
		members := map[int]bool{}
		for _, m := range cv.members {
			if members[m] {
				t.Errorf("%s has member %d twice", cv.id, m)
			}
			members[m] = true
		}
		if !cv.group && cv.id != DMConversation(topo.users[cv.members[0]], topo.users[cv.members[1]]) {
			t.Errorf("dm id %s does not match its members", cv.id)
		}
	}
	if got := DMConversation("b", "a"); got != "dm:a:b" {
		t.Errorf("DMConversation(b, a) = %s", got)
	}
}

func TestCentrifugoChannels(t *testing.T) {
	topo := buildTopology(Config{Users: 30, GroupSize: 4, Groups: 5, DMs: 50, RunID: "r.x-1"})
	seen := map[string]string{}
	for _, cv := range topo.convs {
		ch := cfChannel(cv.id)
		if strings.Contains(ch, ":") {
			t.Errorf("channel %s of %s has the namespace separator", ch, cv.id)
		}
		if other, ok := seen[ch]; ok {
			t.Errorf("%s and %s share channel %s", other, cv.id, ch)
		}
		seen[ch] = cv.id
	}
}

package gateway

import "testing"

func TestFDConnectionsKeepsTheReserve(t *testing.T) {
	for _, c := range []struct {
		nofile  uint64
		reserve int
		want    int
	}{
		{20000, 512, 19488},
		{1024, 512, 512},
		{100, 512, 1}, // a tiny limit still takes one
		{1 << 20, 0, 1 << 20},
		{0, 512, 0},       // unknown: no limit
		{1 << 40, 512, 0}, // unlimited
	} {
		if got := fdConnections(c.nofile, c.reserve); got != c.want {
			t.Errorf("fdConnections(%d, %d) = %d, want %d", c.nofile, c.reserve, got, c.want)
		}
	}
}

func TestConnLimitsCountPerUser(t *testing.T) {
	l := newConnLimits(-1, 0, 2, -1)
	if !l.takeUser("a") || !l.takeUser("a") {
		t.Fatal("two connections of a refused under a limit of 2")
	}
	if l.takeUser("a") {
		t.Error("a third connection of a taken")
	}
	if !l.takeUser("b") {
		t.Error("b refused for a's connections")
	}
	l.releaseUser("a")
	if !l.takeUser("a") {
		t.Error("a refused after one of its connections closed")
	}
	if len(l.users) != 2 {
		t.Errorf("users %v", l.users)
	}
	l.releaseUser("b")
	if _, ok := l.users["b"]; ok {
		t.Error("a user with no connection left is still counted")
	}
}

func TestConnLimitsCountConnections(t *testing.T) {
	l := newConnLimits(2, 0, -1, -1)
	if l.take() != "" || l.take() != "" {
		t.Fatal("two connections refused under a limit of 2")
	}
	if got := l.take(); got != refusedConnections {
		t.Errorf("third connection: %q, want %q", got, refusedConnections)
	}
	l.release()
	if got := l.take(); got != "" {
		t.Errorf("after a release: %q", got)
	}
	if got := newConnLimits(-1, 0, -1, 1).take(); got != refusedMemory {
		t.Errorf("a 1-byte memory limit: %q, want %q", got, refusedMemory)
	}
}

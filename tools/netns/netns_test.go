package netns_test

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/seqchat/seqchat/tools/netns"
)

// TestCutAndRestore joins a namespace to a bridge of its own and connects
// from inside it to a listener on the bridge's address: it connects while
// the link is up, not while it is cut, and again once it is restored.
// Root and ip are required, never skipped (but in -short runs).
func TestCutAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a bridge and a namespace (root): not in -short runs")
	}
	if err := netns.Check(); err != nil {
		t.Fatal(err)
	}
	const bridge = "sc-nstest"
	exec.Command("ip", "link", "del", bridge).Run() // a crashed run's
	for _, args := range [][]string{{"link", "add", bridge, "type", "bridge", "forward_delay", "0"},
		{"addr", "add", "10.213.250.1/24", "dev", bridge}, {"link", "set", bridge, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		if args[0] == "link" && args[1] == "add" {
			t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
		}
	}
	ns, err := netns.Join(bridge, "sc-nstest-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Remove(); err != nil {
			t.Error(err)
		}
	})
	if got := ns.Addr.String(); got != "10.213.250.2" {
		t.Errorf("address %s, want 10.213.250.2", got)
	}
	ln, err := net.Listen("tcp", "10.213.250.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	connects := func() bool {
		name, args := ns.Command("timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/10.213.250.1/"+port)
		return exec.Command(name, args...).Run() == nil
	}
	if !connects() {
		t.Fatal("no connection from the namespace to the bridge's address")
	}
	if err := ns.Cut(); err != nil {
		t.Fatal(err)
	}
	if connects() {
		t.Fatal("connected through a cut link")
	}
	if err := ns.Restore(); err != nil {
		t.Fatal(err)
	}
	// The first tries after a restore can fail fast: an address lookup
	// begun while the link was cut ends in "no route to host" for what
	// queued behind it. A real client retries; so does this, for a while.
	restored := time.Now()
	for !connects() {
		if time.Since(restored) > 10*time.Second {
			t.Fatal("no connection in the 10 s after the link was restored")
		}
	}
	// Join again by the same name: what is there is replaced.
	if _, err := netns.Join(bridge, "sc-nstest-a", 1); err != nil {
		t.Fatalf("joining again: %v", err)
	}
}

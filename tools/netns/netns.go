package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// Check says why namespaces cannot be made here: not root, or no ip
// (iproute2) on the PATH.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("netns: network namespaces need root (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("netns: ip is missing (apt-get install iproute2): %w", err)
	}
	return nil
}

// Namespace is a network namespace joined to a bridge by a veth pair.
type Namespace struct {
	// Name is the namespace's name (ip netns list).
	Name string
	// Addr is its address on the bridge's subnet.
	Addr netip.Addr
	// Link is the pair's end on the host, a port of the bridge; Cut and
	// Restore take it down and up.
	Link string
}

// Join makes namespace name (removing first whatever a crashed run left of
// it) with a veth pair to bridge: the host end, named after the bridge and
// index, is a port of the bridge, the other end (eth0 in the namespace)
// gets the address index+1 above the bridge's own on the bridge's subnet.
// Index is 1 to 200 and tells the namespaces of one bridge apart.
func Join(bridge, name string, index int) (*Namespace, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if index < 1 || index > 200 {
		return nil, fmt.Errorf("netns: index %d out of 1..200", index)
	}
	link := fmt.Sprintf("%sv%d", bridge, index)
	if len(link) > 15 {
		return nil, fmt.Errorf("netns: link name %q longer than 15 bytes: shorten the bridge's name", link)
	}
	host, err := bridgeAddr(bridge)
	if err != nil {
		return nil, err
	}
	addr := host.Addr()
	for range index {
		addr = addr.Next()
	}
	if !host.Contains(addr) {
		return nil, fmt.Errorf("netns: %v is outside the bridge's subnet %v", addr, host.Masked())
	}
	n := &Namespace{Name: name, Addr: addr, Link: link}
	if err := n.Remove(); err != nil {
		return nil, err
	}
	prefix := netip.PrefixFrom(addr, host.Bits()).String()
	for _, args := range [][]string{
		{"netns", "add", name},
		{"link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"link", "set", link, "master", bridge},
		{"link", "set", link, "up"},
		{"-n", name, "addr", "add", prefix, "dev", "eth0"},
		{"-n", name, "link", "set", "eth0", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			n.Remove()
			return nil, err
		}
	}
	return n, nil
}

// Command is the command line that runs bin with args in the namespace:
// ip netns exec replaces itself with bin, so the process's id is bin's.
func (n *Namespace) Command(bin string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", n.Name, bin}, args...)
}

// Cut takes the link down: nothing reaches the namespace or leaves it (no
// reset, no refusal: packets are dropped, as in a real partition) until
// Restore.
func (n *Namespace) Cut() error { return ip("link", "set", n.Link, "down") }

// Restore brings the link up again.
func (n *Namespace) Restore() error { return ip("link", "set", n.Link, "up") }

// Remove deletes the namespace and with it the veth pair; a namespace
// that is not there is no error. Processes still running in it keep it
// alive, cut off, until they exit.
func (n *Namespace) Remove() error {
	if err := ip("link", "show", n.Link); err == nil {
		if err := ip("link", "del", n.Link); err != nil {
			return err
		}
	}
	if err := ip("netns", "del", n.Name); err != nil && !strings.Contains(err.Error(), "No such file") {
		return err
	}
	return nil
}

// bridgeAddr is the bridge's IPv4 address with its prefix.
func bridgeAddr(bridge string) (netip.Prefix, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show", "dev", bridge).Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("netns: bridge %s: %w (scripts/stack.sh makes it with SEQCHAT_KAFKA_BRIDGE)", bridge, errOutput(err))
	}
	// "5: sc-ci    inet 10.213.2.1/24 brd ... scope global sc-ci ..."
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "inet" {
			return netip.ParsePrefix(f[i+1])
		}
	}
	return netip.Prefix{}, fmt.Errorf("netns: bridge %s has no IPv4 address", bridge)
}

func ip(args ...string) error {
	if _, err := exec.Command("ip", args...).Output(); err != nil {
		return fmt.Errorf("netns: ip %s: %w", strings.Join(args, " "), errOutput(err))
	}
	return nil
}

// errOutput folds a failed command's stderr into its error.
func errOutput(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

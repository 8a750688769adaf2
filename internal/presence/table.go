package presence

import "github.com/seqchat/seqchat/schemas/imv1"

// Location is where one device of a user is connected.
type Location struct {
	Gateway string
	Epoch   uint64
	Online  bool
}

// Table maps user -> device -> location. Not safe for concurrent use.
type Table struct {
	users map[string]map[string]Location
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{users: map[string]map[string]Location{}} }

// Key is the presence topic's key of a device.
func Key(user, device string) string { return user + "/" + device }

// Apply records an announcement unless a newer connection of the device is
// already known; it reports whether the table changed. An "offline" is kept
// (as not online) so that an older "online" arriving later stays ignored.
func (t *Table) Apply(p *imv1.Presence) bool {
	devs := t.users[p.UserId]
	cur, known := devs[p.DeviceId]
	if known && (p.Epoch < cur.Epoch || (p.Epoch == cur.Epoch && !cur.Online)) {
		return false // stale, or the same connection already gone
	}
	if devs == nil {
		devs = map[string]Location{}
		t.users[p.UserId] = devs
	}
	devs[p.DeviceId] = Location{Gateway: p.GatewayId, Epoch: p.Epoch, Online: p.Online}
	return true
}

// Devices returns the connected devices of user by gateway.
func (t *Table) Devices(user string) map[string][]string {
	out := map[string][]string{}
	for dev, loc := range t.users[user] {
		if loc.Online {
			out[loc.Gateway] = append(out[loc.Gateway], dev)
		}
	}
	return out
}

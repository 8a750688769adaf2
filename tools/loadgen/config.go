package loadgen

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/seqchat/seqchat/internal/auth"
)

// Config is one load run.
type Config struct {
	// Target is what to drive: TargetSeqchat (our gateways, the default
	// when empty) or TargetCentrifugo (a Centrifugo server).
	Target string
	// Gateways are WebSocket URLs (ws://host:port/ws; for Centrifugo
	// ws://host:port/connection/websocket); devices are spread over them
	// round-robin. Required.
	Gateways []string
	// TokenKey is the gateways' HMAC key; the generator signs its own
	// device tokens with it. Required for TargetSeqchat, at least
	// auth.MinKeyBytes bytes.
	TokenKey []byte
	// CentrifugoSecret is Centrifugo's HMAC key of connection JWTs
	// (client.token.hmac_secret_key); the generator signs a token per
	// user with it. Required for TargetCentrifugo.
	CentrifugoSecret []byte
	// Users is the number of users, one device each. Zero means 200.
	Users int
	// GroupSize is the members per group, creator included. Zero means 10.
	GroupSize int
	// Groups is the number of groups. Zero means 20; negative means none.
	Groups int
	// DMs is the number of dm pairs. Zero means 20; negative means none.
	DMs int
	// Rate is the total sends per second over all conversations. Zero
	// means 200.
	Rate float64
	// Duration is how long sends are fired. Zero means 30s.
	Duration time.Duration
	// Drain is how long to wait after the last send for the outstanding
	// deliveries. Zero means 30s.
	Drain time.Duration
	// SetupTimeout bounds connecting every device and creating every
	// group. Zero means 1m.
	SetupTimeout time.Duration
	// Warmup is how long the connected devices stay idle after setup,
	// before the load starts: what connecting costs the target (catch-up
	// reads, the gateway's settle passes) then stays out of what the load
	// is measured to cost. Zero means none.
	Warmup time.Duration
	// RunID prefixes user and group ids so runs do not collide. Empty
	// means "lg" plus the start time in base 36.
	RunID string
	// Seed seeds the random choice of sender and conversation. Zero means
	// the start time.
	Seed uint64
	// Logger receives setup and connection problems. Nil means discard.
	Logger *slog.Logger
}

// Errors: ErrConfig wraps every Validate failure; ErrSetup wraps a failure
// to connect the devices or create the groups (nothing was measured).
var (
	ErrConfig = errors.New("invalid load generator config")
	ErrSetup  = errors.New("load generator setup failed")
)

func (c *Config) setDefaults(now time.Time) {
	if c.Target == "" {
		c.Target = TargetSeqchat
	}
	if c.Users == 0 {
		c.Users = 200
	}
	if c.GroupSize == 0 {
		c.GroupSize = 10
	}
	if c.Groups == 0 {
		c.Groups = 20
	}
	if c.Groups < 0 {
		c.Groups = 0
	}
	if c.DMs == 0 {
		c.DMs = 20
	}
	if c.DMs < 0 {
		c.DMs = 0
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = time.Minute
	}
	if c.RunID == "" {
		c.RunID = "lg" + fmt.Sprintf("%x", now.UnixMilli())
	}
	if c.Seed == 0 {
		c.Seed = uint64(now.UnixNano())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first problem of a defaulted config.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch c.Target {
	case TargetSeqchat:
		if len(c.TokenKey) < auth.MinKeyBytes {
			return bad("token key has %d bytes, want at least %d", len(c.TokenKey), auth.MinKeyBytes)
		}
	case TargetCentrifugo:
		if len(c.CentrifugoSecret) == 0 {
			return bad("target %s needs the Centrifugo token secret (CentrifugoSecret)", c.Target)
		}
	default:
		return bad("target %q: want %s or %s", c.Target, TargetSeqchat, TargetCentrifugo)
	}
	if len(c.Gateways) == 0 {
		return bad("no gateway URLs")
	}
	for _, g := range c.Gateways {
		u, err := url.Parse(g)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return bad("gateway %q is not a ws:// or wss:// URL", g)
		}
	}
	if c.Users < 2 {
		return bad("users %d, want at least 2", c.Users)
	}
	if c.Groups > 0 && (c.GroupSize < 2 || c.GroupSize > c.Users) {
		return bad("group size %d, want 2..users (%d)", c.GroupSize, c.Users)
	}
	if c.Groups == 0 && c.DMs == 0 {
		return bad("no conversations: groups and dms are both off")
	}
	if c.DMs > c.Users*(c.Users-1)/2 {
		return bad("%d dm pairs but only %d distinct pairs of %d users", c.DMs, c.Users*(c.Users-1)/2, c.Users)
	}
	if c.Rate < 0 || c.Duration < 0 || c.Drain < 0 || c.SetupTimeout < 0 || c.Warmup < 0 {
		return bad("rate, duration, drain, setup timeout and warmup must not be negative")
	}
	if !idPattern.MatchString(c.RunID) || len(c.RunID) > 64 {
		return bad("run id %q: want 1 to 64 of [A-Za-z0-9._@-]", c.RunID)
	}
	return nil
}

package loadgen_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/seqchat/seqchat/tools/centrifugo"
	"github.com/seqchat/seqchat/tools/loadgen"
)

// The Centrifugo the test drives: scripts/centrifugo.sh's defaults, as in
// tools/centrifugo's integration tests.
const (
	envCentrifugoURL        = "SEQCHAT_TEST_CENTRIFUGO_URL"
	envCentrifugoSecret     = "SEQCHAT_CENTRIFUGO_SECRET"
	defaultCentrifugoURL    = "ws://127.0.0.1:18000/connection/websocket"
	defaultCentrifugoSecret = "seqchat-dev-centrifugo-secret"
)

// requireCentrifugo returns the server's URL and secret; it skips under
// -short and fails when the server is not there.
func requireCentrifugo(t *testing.T) (url string, secret []byte) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Centrifugo; run without -short")
	}
	url, secret = os.Getenv(envCentrifugoURL), []byte(os.Getenv(envCentrifugoSecret))
	if url == "" {
		url = defaultCentrifugoURL
	}
	if len(secret) == 0 {
		secret = []byte(defaultCentrifugoSecret)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := centrifugo.Dial(ctx, url, centrifugo.Options{Token: centrifugo.Token(secret, "loadgen-probe", time.Now().Add(time.Minute))})
	if err != nil {
		var e *centrifugo.Error
		var d *centrifugo.DisconnectError
		if errors.As(err, &e) || errors.As(err, &d) {
			t.Fatalf("Centrifugo at %s refused the connection (%v); is %s the secret scripts/centrifugo.sh used?", url, err, envCentrifugoSecret)
		}
		t.Fatalf("Centrifugo is not reachable at %s (%v); start it with `scripts/centrifugo.sh up`", url, err)
	}
	c.Close()
	return url, secret
}

// TestRunAgainstCentrifugo drives Centrifugo with the load of
// TestRunAgainstPipeline (40 users, 4 groups of 10, 4 dm pairs, 100
// sends/s for 2s): every publish accepted, every publication delivered to
// every subscribed member, offsets without gap, duplicate or reorder. A
// second run with the same run id must refuse to start: its channels are
// not fresh.
func TestRunAgainstCentrifugo(t *testing.T) {
	url, secret := requireCentrifugo(t)
	cfg := loadgen.Config{Target: loadgen.TargetCentrifugo, Gateways: []string{url}, CentrifugoSecret: secret,
		Users: 40, GroupSize: 10, Groups: 4, DMs: 4, Rate: 100, Duration: 2 * time.Second, Drain: 30 * time.Second}
	gen, err := loadgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := runClean(t, gen, 200)
	if res.Config.Target != loadgen.TargetCentrifugo {
		t.Errorf("result config target %q", res.Config.Target)
	}
	if got := len(gen.Accepted()); got != res.Counts.Accepted {
		t.Errorf("Accepted lists %d messages, counts say %d", got, res.Counts.Accepted)
	}

	cfg.RunID = gen.RunID()
	again, err := loadgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Run(context.Background(), nil); !errors.Is(err, loadgen.ErrSetup) || !strings.Contains(err.Error(), "run id") {
		t.Errorf("second run with run id %s: %v, want a setup failure about the run id", cfg.RunID, err)
	}
}

package gateway

import (
	"embed"
	"net/http"
	"time"

	"github.com/seqchat/seqchat/internal/auth"
)

// demoFiles is the demo chat page: plain HTML, CSS and JavaScript on the
// TypeScript SDK, whose compiled modules `make demo-sdk` writes to
// demo/sdk (committed, so the gateway builds without Node). Served at /
// and /demo/ when Config.Demo is on.
//
//go:embed demo
var demoFiles embed.FS

// serveDemoToken issues a day's token to whoever asks: development only.
func (g *Gateway) serveDemoToken(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	tok, err := g.signer.Issue(auth.Claims{UserID: r.URL.Query().Get("user"), DeviceID: r.URL.Query().Get("device"),
		IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(tok))
}

// serveDemoPage serves the page at /; its assets are under /demo/.
func serveDemoPage(w http.ResponseWriter, r *http.Request) {
	http.ServeFileFS(w, r, demoFiles, "demo/index.html")
}

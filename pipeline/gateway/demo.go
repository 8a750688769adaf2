package gateway

import (
	_ "embed"
	"net/http"
	"time"

	"github.com/seqchat/seqchat/pipeline/auth"
)

// demoPage is a chat page in plain HTML and JavaScript, served at / when
// Config.Demo is on.
//
//go:embed demo.html
var demoPage []byte

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

func serveDemoPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(demoPage)
}

package history_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/seqchat/seqchat/internal/chstore"
	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/history"
)

// Example wires a sink and the read API the way cmd/history does.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	store, err := history.OpenStore(ctx, chstore.Config{Addr: "127.0.0.1:9000", Database: "seqchat"}, log)
	if err != nil {
		log.Error("clickhouse", "err", err)
		return
	}
	defer store.Close()
	sink, err := history.New(history.Config{Kafka: kafkawire.Config{}, Store: store, Logger: log})
	if err != nil {
		log.Error("sink", "err", err)
		return
	}
	go sink.Run(ctx) // until ctx is cancelled

	api, err := history.NewHandler(history.HandlerConfig{Store: store, ServiceToken: "a-token-of-16-bytes-or-more"})
	if err != nil {
		log.Error("api", "err", err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		log.Error("listen", "err", err)
		return
	}
	http.Serve(ln, api) // GET /v1/conversations/{id}/messages?user=...&after_seq=...&limit=...
}

// Package gateway holds the WebSocket gateway's per-connection logic. The
// reorder buffer (Reorder) turns the deliveries of one conversation, which
// may arrive late, twice or with holes (live push, catch-up from history,
// retries after a reconnect), into exactly-once, in-seq-order delivery (I5).
package gateway

// Package history keeps the conversation history in ClickHouse and serves it
// back. Sink consumes the sequenced topic (read_committed, one goroutine per
// claimed partition) and inserts the entries in batches, committing offsets
// only after ClickHouse took them (I7); Store holds every query of the
// messages table; NewHandler serves the gateways' read API, filtered to the
// periods in which the reading user was a member (I8, docs/history-api.md).
package history

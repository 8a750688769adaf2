// Package ingest is the write path of the pipeline: it validates a send
// (message or membership change), wraps it in an imv1.RawRecord and produces
// it to the raw topic keyed by conversation id, answering only after the
// broker acknowledged it (I6). The gateway uses the Ingester as a library;
// cmd/ingest serves it as an HTTP API (NewHandler) for server-side senders.
package ingest

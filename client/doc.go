// Package client is the Go client of seqchat's WebSocket protocol
// (schemas/wsprotocol/protocol.md), with the semantics of the TypeScript
// SDK (sdk/js): hello with resume positions, reconnects with backoff and
// jitter across several gateways, per-conversation reordering by seq with
// gap detection and sync fills, batched cumulative acks, and an outbox that
// keeps each send's client_msg_id and client_seq and writes it again until
// it ends in its own entry or a rejection, never letting a later send of a
// conversation overtake a refused earlier one.
//
// The load generator and the chaos harness drive the pipeline through it.
package client

package loadgen

import (
	"context"
	"encoding/json"
	"time"

	"github.com/seqchat/seqchat/client"
)

// frame is what a connection reports of a server frame: the fields of
// seqchat's frames the generator reads.
type frame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Seq            uint64 `json:"seq"`
	ClientMsgID    string `json:"client_msg_id"`
	Code           string `json:"code"`
	// Message is an error's text, or a msg's message object: undecoded.
	Message json.RawMessage `json:"message"`
	Ref     string          `json:"ref"`
	Fatal   bool            `json:"fatal"`
	// SequencedAtMs is when the sequencer gave a msg its seq (0: unknown,
	// as for a peer that has no sequencer).
	SequencedAtMs int64 `json:"sequenced_at_ms"`
	// RetryAfterMs is a refused send's retry hint (0: none).
	RetryAfterMs int64 `json:"retry_after_ms"`
}

// Targets: what the generator drives.
const (
	// TargetSeqchat is our pipeline's gateways (schemas/wsprotocol).
	TargetSeqchat = "seqchat"
	// TargetCentrifugo is a Centrifugo server, through its own client
	// protocol (see tools/centrifugo).
	TargetCentrifugo = "centrifugo"
)

// conn is one user's connection to the target: the seam that lets the
// same scheduler, topology, measurements and verifier drive either
// target. It reports what it receives to connEvents as seqchat frames
// (accepted, rejected, error, msg).
type conn interface {
	// connect sets the connection up during setup (failing the setup if
	// it cannot).
	connect(ctx context.Context) error
	// run serves the connection until close is called (or, for a target
	// without reconnection, until the connection is lost).
	run()
	// send queues a send; false if the connection is closed, lost for
	// good, or ctx ended first.
	send(ctx context.Context, m outMsg) bool
	// close ends the connection (idempotent).
	close()
}

// outMsg is one send.
type outMsg struct {
	conv      string
	cmid      string // client_msg_id
	clientSeq uint64
	body      string // a load message's text
	// control is a seqchat control operation (create_group) sent instead
	// of a message.
	control *client.Control
}

// connEvents is what a connection tells the generator.
type connEvents interface {
	// frame takes every server frame of user's connection except welcome
	// and the `unavailable` errors a device retries itself.
	frame(user string, f frame)
	// disconnected: user's connection dropped (err).
	disconnected(user string, err error)
	// attempted: the send cmid was written to a connection at (its first
	// write or a retry).
	attempted(cmid string, at time.Time)
	// refused: a send was answered with code (unavailable, rate_limited)
	// and will be written again.
	refused(code string)
	// connected: user's connection to gateway is up, after down of
	// downtime (zero for the first).
	connected(user, gateway string, down time.Duration)
	// outOfOrder: a msg did not follow the last one the device had of its
	// conversation (the verifier counts it; this says on which connection).
	outOfOrder(user, conv string, prev, seq uint64, connection string)
}

// loadBody is a load message's text: the same size for every target.
func loadBody(cmid string) string { return "load " + cmid }

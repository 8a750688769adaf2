package centrifugo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Wire types: the subset of centrifugal/protocol's Command and Reply this
// client sends and reads, with the protocol's JSON field names.

type command struct {
	ID        uint32            `json:"id,omitempty"`
	Connect   *connectRequest   `json:"connect,omitempty"`
	Subscribe *subscribeRequest `json:"subscribe,omitempty"`
	Publish   *publishRequest   `json:"publish,omitempty"`
}

type connectRequest struct {
	Token   string `json:"token,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

type subscribeRequest struct {
	Channel string `json:"channel"`
	Recover bool   `json:"recover,omitempty"`
	Epoch   string `json:"epoch,omitempty"`
	Offset  uint64 `json:"offset,omitempty"`
}

type publishRequest struct {
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

type reply struct {
	ID        uint32           `json:"id"`
	Error     *Error           `json:"error"`
	Push      *push            `json:"push"`
	Connect   *connectResult   `json:"connect"`
	Subscribe *subscribeResult `json:"subscribe"`
	Publish   *struct{}        `json:"publish"`
}

// isPing: the server's ping is a reply with nothing in it.
func (r *reply) isPing() bool {
	return r.ID == 0 && r.Error == nil && r.Push == nil && r.Connect == nil &&
		r.Subscribe == nil && r.Publish == nil
}

type push struct {
	Channel     string       `json:"channel"`
	Pub         *publication `json:"pub"`
	Unsubscribe *struct {
		Code   uint32 `json:"code"`
		Reason string `json:"reason"`
	} `json:"unsubscribe"`
	// Disconnect pushes are for unidirectional transports; honoured anyway.
	Disconnect *DisconnectError `json:"disconnect"`
}

type publication struct {
	Data   json.RawMessage `json:"data"`
	Offset uint64          `json:"offset"`
}

type connectResult struct {
	Client  string `json:"client"`
	Version string `json:"version"`
	Ping    uint32 `json:"ping"`
	Pong    bool   `json:"pong"`
}

type subscribeResult struct {
	Recoverable   bool          `json:"recoverable"`
	Epoch         string        `json:"epoch"`
	Offset        uint64        `json:"offset"`
	Positioned    bool          `json:"positioned"`
	Recovered     bool          `json:"recovered"`
	WasRecovering bool          `json:"was_recovering"`
	Publications  []publication `json:"publications"`
}

// Error is an error reply from the server (codes are centrifuge's: 103
// permission denied, 109 token expired, 112 unrecoverable position, ...).
type Error struct {
	Code      uint32 `json:"code"`
	Message   string `json:"message"`
	Temporary bool   `json:"temporary,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("centrifugo: error %d: %s", e.Code, e.Message)
}

// DisconnectError is the server closing the connection: the WebSocket close
// code and reason (3000-3499 and 4000-4499 mean "reconnect", 3500-3999 and
// 4500-4999 mean "do not").
type DisconnectError struct {
	Code   uint32 `json:"code"`
	Reason string `json:"reason"`
}

func (e *DisconnectError) Error() string {
	return fmt.Sprintf("centrifugo: disconnected by server: %d %s", e.Code, e.Reason)
}

// encodeCommands appends cmds to dst as one frame: newline-separated JSON.
func encodeCommands(dst []byte, cmds ...*command) ([]byte, error) {
	for _, cmd := range cmds {
		b, err := json.Marshal(cmd)
		if err != nil {
			return dst, fmt.Errorf("encode command: %w", err)
		}
		if len(dst) > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, b...)
	}
	return dst, nil
}

// decodeFrame calls fn for each reply in a frame. A JSON decoder rather than
// a split on '\n': it accepts any whitespace between the objects.
func decodeFrame(frame []byte, fn func(*reply) error) error {
	dec := json.NewDecoder(bytes.NewReader(frame))
	for {
		var r reply
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode reply: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

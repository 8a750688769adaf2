package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// outboundQueue is how many frames wait for one device's writer. When it
// fills, the scheduler blocks on that device; latency is still measured
// from each send's intended time, so the stall shows in the results.
const outboundQueue = 4096

// frame is any server frame, decoded loosely.
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
}

// device is one user's WebSocket connection.
type device struct {
	user string
	ws   *websocket.Conn
	out  chan []byte
	done chan struct{} // closed when the reader stops

	closeOnce sync.Once
	closing   chan struct{} // closed by close(): a read error after it is expected
}

// dial connects user to gateway url, says hello with token and waits for
// welcome.
func dial(ctx context.Context, url, user, token string) (*device, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s for %s: %w", url, user, err)
	}
	hello, _ := json.Marshal(map[string]string{"type": "hello", "token": token})
	if dl, ok := ctx.Deadline(); ok {
		ws.SetWriteDeadline(dl)
		ws.SetReadDeadline(dl)
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		ws.Close()
		return nil, fmt.Errorf("hello from %s: %w", user, err)
	}
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("welcome for %s: %w", user, err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "welcome" {
		ws.Close()
		return nil, fmt.Errorf("%s: expected welcome, got %q", user, b)
	}
	ws.SetWriteDeadline(time.Time{})
	ws.SetReadDeadline(time.Time{})
	return &device{user: user, ws: ws, out: make(chan []byte, outboundQueue),
		done: make(chan struct{}), closing: make(chan struct{})}, nil
}

// run reads frames into handle and writes queued frames until the
// connection ends; it returns the read error unless close was called.
func (d *device) run(handle func(*device, frame)) error {
	go d.writeLoop()
	defer close(d.done)
	for {
		_, b, err := d.ws.ReadMessage()
		if err != nil {
			select {
			case <-d.closing:
				return nil
			default:
				return fmt.Errorf("%s: connection lost: %w", d.user, err)
			}
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: undecodable frame %q", d.user, b)
		}
		handle(d, f)
	}
}

func (d *device) writeLoop() {
	for {
		select {
		case b := <-d.out:
			if err := d.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				d.ws.Close() // the reader sees it and reports the loss
				return
			}
		case <-d.done:
			return
		}
	}
}

// enqueue queues a frame for the writer; false if the connection ended or
// ctx was cancelled first.
func (d *device) enqueue(ctx context.Context, v any) bool {
	b, _ := json.Marshal(v) // maps of strings and numbers always marshal
	select {
	case d.out <- b:
		return true
	case <-d.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// close ends the connection (idempotent).
func (d *device) close() {
	d.closeOnce.Do(func() {
		close(d.closing)
		d.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(time.Second))
		d.ws.Close()
	})
}

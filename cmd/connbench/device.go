package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// device is one idle client connection: hello, then it only reads, keeping
// its position per conversation (what it would resume from).
type device struct {
	user, token string
	local       net.IP // source address: one per ~80 devices spreads the ports
	world       *world

	mu       sync.Mutex
	pos      map[string]uint64
	ws       *websocket.Conn
	synced   chan struct{} // closed at the first synced after hello
	welcomed chan struct{}
}

// world is what every device reports to: anomalies and the goal in force.
type world struct {
	gaps, duplicates, refusals atomic.Int64
	mu                         sync.Mutex
	goal                       *goal
}

// goal is reached when left devices moved past their conversation's target.
type goal struct {
	target map[string]uint64
	left   int
	done   chan struct{}
}

func (w *world) setGoal(target map[string]uint64, devices int) *goal {
	g := &goal{target: target, left: devices, done: make(chan struct{})}
	w.mu.Lock()
	w.goal = g
	w.mu.Unlock()
	if devices == 0 {
		close(g.done)
	}
	return g
}

// short is how many devices the goal still waits for.
func (w *world) short(g *goal) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return g.left
}

func (w *world) advanced(conv string, from, to uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.goal
	if g == nil || g.left == 0 {
		return
	}
	if t, ok := g.target[conv]; ok && from < t && to >= t {
		g.left--
		if g.left == 0 {
			close(g.done)
		}
	}
}

type frame struct {
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id"`
	Seq            uint64          `json:"seq"`
	Code           string          `json:"code"`
	Message        json.RawMessage `json:"message"` // an error's text, a msg's object
	Fatal          bool            `json:"fatal"`
}

// connect dials url, says hello with the device's positions and starts
// its reader; it returns once the gateway answered welcome.
func (d *device) connect(ctx context.Context, url string) error {
	dialer := websocket.Dialer{
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: d.local}}).DialContext,
		HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024,
	}
	ws, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		return err
	}
	d.mu.Lock()
	if d.ws != nil {
		d.ws.Close() // a connection that broke
	}
	resume := make(map[string]uint64, len(d.pos))
	for c, p := range d.pos {
		resume[c] = p
	}
	d.ws, d.synced, d.welcomed = ws, make(chan struct{}), make(chan struct{})
	synced, welcomed := d.synced, d.welcomed
	d.mu.Unlock()
	hello, _ := json.Marshal(map[string]any{"type": "hello", "token": d.token, "resume": resume})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		ws.Close()
		return err
	}
	failed := make(chan error, 1)
	go d.read(ws, synced, welcomed, failed)
	select {
	case <-welcomed:
		return nil
	case err := <-failed:
		return err
	case <-ctx.Done():
		ws.Close()
		return ctx.Err()
	}
}

func (d *device) read(ws *websocket.Conn, synced, welcomed chan struct{}, failed chan<- error) {
	var syncOnce, welcomeOnce sync.Once
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			failed <- err
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			failed <- fmt.Errorf("%s: undecodable frame: %w", d.user, err)
			return
		}
		switch f.Type {
		case "welcome":
			welcomeOnce.Do(func() { close(welcomed) })
		case "synced":
			syncOnce.Do(func() { close(synced) })
		case "msg":
			d.mu.Lock()
			from := d.pos[f.ConversationID]
			switch {
			case f.Seq <= from:
				d.world.duplicates.Add(1)
			case f.Seq > from+1:
				d.world.gaps.Add(1)
				fallthrough
			default:
				d.pos[f.ConversationID] = f.Seq
			}
			d.mu.Unlock()
			if f.Seq > from {
				d.world.advanced(f.ConversationID, from, f.Seq)
			}
		case "accepted":
		case "rejected":
			d.world.refusals.Add(1)
			fmt.Fprintf(os.Stderr, "connbench: %s: rejected: %s\n", d.user, b)
		case "error":
			if f.Fatal {
				failed <- fmt.Errorf("%s: %s: %s", d.user, f.Code, f.Message)
				return
			}
			d.world.refusals.Add(1)
			fmt.Fprintf(os.Stderr, "connbench: %s: %s\n", d.user, b)
		default:
			fmt.Fprintf(os.Stderr, "connbench: %s: %s\n", d.user, b)
		}
	}
}

// send writes a frame on the device's connection.
func (d *device) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ws.WriteMessage(websocket.TextMessage, b)
}

func (d *device) position(conv string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pos[conv]
}

func (d *device) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ws != nil {
		d.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		d.ws.Close()
	}
}

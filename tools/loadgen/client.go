package loadgen

import (
	"context"
	"encoding/json"
	"time"

	"github.com/seqchat/seqchat/client"
)

// device is one user's device on the seqchat gateways. The protocol's
// client side is package client's: when a connection drops it redials the
// next gateway, resumes after what it holds and writes every unanswered
// send again with the same ids (a real client's behaviour, and what the
// delivery and exactly-once guarantees are meant to survive). The device
// reports to the generator what the gateway sent, as it arrived, so the
// verifier checks the gateway's order, not the client's repair of it.
type device struct {
	user   string
	c      *client.Client
	events connEvents
	last   map[string]uint64 // the highest seq arrived per conversation (the reader's only)
}

func newDevice(user, token string, gateways []string, first int, events connEvents) *device {
	// Devices start at different gateways, so the load spreads over them.
	k := first % len(gateways)
	urls := append(append([]string{}, gateways[k:]...), gateways[:k]...)
	d := &device{user: user, events: events, last: map[string]uint64{}}
	d.c, _ = client.New(client.Config{ // URLs and token are never empty here
		URLs: urls, Token: token,
		AckDelay: -1, // as before the client package: the gateways keep no positions for load devices
		Events: client.Events{
			Arrived: d.arrived,
			// The conversation's stream was rebuilt: it starts again from seq 1.
			Reset:  func(conv string, _ uint64) { delete(d.last, conv) },
			Answer: d.answer,
			// A send whose accepted answer was lost with its connection ends
			// when its own entry comes: that is its answer.
			Settled: func(s client.Settlement) {
				if s.Kind == "sequenced" {
					events.frame(user, frame{Type: "accepted", ConversationID: s.Conversation, ClientMsgID: s.ClientMsgID, Seq: s.Seq})
				}
			},
			Refused:      func(_, code string, _ time.Duration) { events.refused(code) },
			Written:      events.attempted,
			Disconnected: func(err error) { events.disconnected(user, err) },
			Connected:    func(url string, down time.Duration) { events.connected(user, url, down) },
			Error: func(code, message string) {
				events.frame(user, frame{Type: "error", Code: code, Message: quote(message)})
			},
		},
	})
	return d
}

func (d *device) arrived(e client.Entry) {
	if prev := d.last[e.Conversation]; prev > 0 && e.Seq != prev+1 {
		d.events.outOfOrder(d.user, e.Conversation, prev, e.Seq, "")
	}
	d.last[e.Conversation] = max(d.last[e.Conversation], e.Seq)
	d.events.frame(d.user, frame{Type: "msg", ConversationID: e.Conversation, Seq: e.Seq, ClientMsgID: e.ClientMsgID, SequencedAtMs: e.SequencedAtMs})
}

func (d *device) answer(a client.Answer) {
	f := frame{Type: a.Kind, ConversationID: a.Conversation, Seq: a.Seq, Code: a.Code, Message: quote(a.Message)}
	if a.Kind == "error" {
		f.Ref = a.ClientMsgID
	} else {
		f.ClientMsgID = a.ClientMsgID
	}
	d.events.frame(d.user, f)
}

func (d *device) connect(ctx context.Context) error { return d.c.Connect(ctx) }
func (d *device) run()                              { d.c.Run() }
func (d *device) close()                            { d.c.Close() }

// send queues a send (kept by the client until answered); false once the
// device is closed.
func (d *device) send(_ context.Context, m outMsg) bool {
	s := client.Send{Conversation: m.conv, ClientMsgID: m.cmid, ClientSeq: m.clientSeq, Control: m.control}
	if m.control == nil {
		s.Message = &client.Message{ContentType: "text/plain", Body: m.body}
	}
	_, _, err := d.c.Send(s)
	return err == nil
}

// quote makes an error's text the JSON string the frame would carry.
func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

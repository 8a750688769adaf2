package client

import (
	"fmt"
	"strings"
)

// A device connects, gets a group's entries in seq order (the gateway here
// is a script that sends seq 2 before seq 1), and sends a message, which
// settles when its own entry comes back with its seq.
func Example() {
	gw := newScriptedGateway(func(_ int, _ map[string]any, c *gatewayConn) {
		c.write(msg("g:team", 2, "bob", "b2"))
		c.write(msg("g:team", 1, "bob", "b1"))
		for f := c.read(); f != nil; f = c.read() {
			if f["type"] == "send" {
				c.write(`{"type":"accepted","conversation_id":"g:team","client_msg_id":"hello-1"}`)
				c.write(msg("g:team", 3, "alice", "hello-1"))
			}
		}
	})
	defer gw.srv.Close()

	done := make(chan struct{})
	c, err := New(Config{
		URLs:  []string{gw.url()}, // ws://host:port/ws of one or more gateways
		Token: "a device token",   // imctl token -user alice -device phone
		Events: Events{
			Entry: func(e Entry) {
				fmt.Printf("%s #%d %s: %s\n", e.Conversation, e.Seq, e.Sender, e.Message.Body)
				if e.Seq == 3 {
					close(done)
				}
			},
			Answer: func(a Answer) { fmt.Println(a.ClientMsgID, a.Kind) },
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go c.Run()
	defer c.Close()
	if _, _, err := c.Send(Send{Conversation: "g:team", ClientMsgID: "hello-1",
		Message: &Message{ContentType: "text/plain", Body: strings.ToUpper("hello")}}); err != nil {
		fmt.Println(err)
	}
	<-done
	// Output:
	// g:team #1 bob: b1
	// g:team #2 bob: b2
	// hello-1 accepted
	// g:team #3 alice: hello-1
}

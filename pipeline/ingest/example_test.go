package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/seqchat/seqchat/internal/kafkawire"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

func ExampleDMConversationID() {
	fmt.Println(ingest.DMConversationID("bob", "alice"))
	fmt.Println(ingest.GroupConversationID("team"))
	// Output:
	// dm:alice:bob
	// g:team
}

func ExampleValidate() {
	err := ingest.Validate(ingest.Send{
		ConversationID: "dm:alice:bob", ClientMsgID: "c-1", SenderUserID: "mallory", SenderDeviceID: "phone",
		Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("hi")},
	}, ingest.Limits{})
	var e *ingest.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
	}
	// Output: not_member
}

// A gateway submits a device's send with the sender taken from its token,
// and answers the client by the result.
func ExampleIngester_Submit() {
	ing, err := ingest.New(ingest.Config{Kafka: kafkawire.Config{Brokers: []string{"127.0.0.1:9092"}}, Origin: "gw-1"})
	if err != nil {
		log.Fatal(err)
	}
	defer ing.Close()
	err = ing.Submit(context.Background(), ingest.Send{
		ConversationID: "g:team", ClientMsgID: "c-7f3a", SenderUserID: "alice", SenderDeviceID: "phone", ClientSeq: 12,
		Message: &imv1.ChatMessage{ContentType: "text/plain", Body: []byte("hello team")},
	})
	var refused *ingest.Error
	switch {
	case err == nil:
		fmt.Println("accepted") // durably in im.raw; the seq comes later
	case errors.As(err, &refused):
		fmt.Println("rejected:", refused.Code)
	case errors.Is(err, ingest.ErrUnavailable):
		fmt.Println("unavailable: retry with the same client_msg_id")
	}
}

func ExampleNewHandler() {
	ing, err := ingest.New(ingest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ing.Close()
	cfg := ingest.HandlerConfig{ServiceToken: "a-long-random-secret-from-the-environment"}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", ingest.NewHandler(ing, cfg)))
}

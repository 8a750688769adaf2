package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/seqchat/seqchat/internal/service"
	"github.com/seqchat/seqchat/pipeline/ingest"
	"github.com/seqchat/seqchat/schemas/imv1"
)

// runSend sends one chat message through the ingest path, as a server-side
// sender would.
func runSend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("imctl send", flag.ContinueOnError)
	var common service.Common
	common.Register(fs, "")
	conv := fs.String("conversation", "", "conversation id: dm:<a>:<b> or g:<id> (required)")
	user := fs.String("user", "", "sender user id (required)")
	device := fs.String("device", "cli", "sender device id")
	cmid := fs.String("client-msg-id", "", "idempotency key (default: random)")
	clientSeq := fs.Uint64("client-seq", 0, "the device's send counter in this conversation (0: no ordering asked)")
	contentType := fs.String("content-type", "text/plain", "content type of the body")
	body := fs.String("body", "", "message body (required)")
	topic := fs.String("raw-topic", ingest.DefaultTopic, "topic of raw sends")
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	if *conv == "" || *user == "" || *body == "" {
		return errors.New("-conversation, -user and -body are required")
	}
	if *cmid == "" {
		b := make([]byte, 8)
		rand.Read(b)
		*cmid = "cli-" + hex.EncodeToString(b)
	}
	ing, err := ingest.New(ingest.Config{Kafka: common.Kafka("imctl"), Topic: *topic, Origin: "imctl"})
	if err != nil {
		return err
	}
	defer ing.Close()
	err = ing.Submit(ctx, ingest.Send{ConversationID: *conv, ClientMsgID: *cmid, SenderUserID: *user,
		SenderDeviceID: *device, ClientSeq: *clientSeq,
		Message: &imv1.ChatMessage{ContentType: *contentType, Body: []byte(*body)}})
	if err != nil {
		return err
	}
	fmt.Printf("accepted %s in %s\n", *cmid, *conv)
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/seqchat/seqchat/internal/auth"
	"github.com/seqchat/seqchat/internal/service"
)

// runToken issues a development token for a user's device.
func runToken(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("imctl token", flag.ContinueOnError)
	user := fs.String("user", "", "user id (required)")
	device := fs.String("device", "cli", "device id")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	key := fs.String("token-key", "", "HMAC signing key shared with the gateways, at least 32 bytes (env SEQCHAT_TOKEN_KEY)")
	if err := service.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("-user is required")
	}
	signer, err := auth.NewSigner([]byte(*key))
	if err != nil {
		return err
	}
	now := time.Now()
	tok, err := signer.Issue(auth.Claims{UserID: *user, DeviceID: *device, IssuedAt: now, ExpiresAt: now.Add(*ttl)})
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

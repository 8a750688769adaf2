package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// runProbe is a healthcheck for images that have no curl: GET the URL and
// succeed only on 200.
func runProbe(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: imctl probe URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	return nil
}

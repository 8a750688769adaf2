package service

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext is cancelled on SIGINT or SIGTERM; a second signal kills
// the process the usual way (signal.NotifyContext restores the default).
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Serve serves h on ln until ctx ends, then shuts down gracefully: requests
// run in ctx, so long-lived ones (the /v2/events stream, the agents' long
// polls) end with it; requests in flight get up to grace to finish; after
// that the remaining connections are cut. Connections that never sent a
// request are closed at once (http.Server.Shutdown would otherwise wait 5 s
// for them: Go's transport often dials a spare connection it never uses).
// Serve returns nil after a shutdown caused by ctx.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	var (
		mu     sync.Mutex
		unused = map[net.Conn]struct{}{}
	)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			if st == http.StateNew && ctx.Err() == nil {
				unused[c] = struct{}{}
				return
			}
			if st == http.StateNew {
				// Accepted while shutting down: nothing will serve it.
				_ = c.Close()
				return
			}
			delete(unused, c)
		},
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(shutdownCtx) }()
	mu.Lock()
	for c := range unused {
		_ = c.Close()
	}
	mu.Unlock()
	err := <-shut
	<-served // http.ErrServerClosed once Shutdown has begun
	if err != nil {
		_ = srv.Close()
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return nil
}

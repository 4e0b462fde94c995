package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Default timeouts of ServeOptions.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

// ServeOptions tunes Serve. Zero values mean the defaults above.
type ServeOptions struct {
	// Grace is how long requests in flight get to finish at shutdown
	// (default 5s).
	Grace time.Duration
	// TLS, when set, serves HTTPS (HTTP/1.1) on the listener.
	TLS *tls.Config
	// ReadHeaderTimeout bounds reading a request's header.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, header and body: a
	// client trickling a body is cut off. net/http lifts the deadline
	// once the body is read, so event streams and long polls live on.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response to a client that does not
	// read. It is set per request when the handler starts; the event
	// stream replaces it with its own deadline per write, so it does not
	// end /v2/events. It must exceed the agents' long poll (30 s).
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// Logger receives net/http's own errors (failed TLS handshakes and
	// the like) at debug level; default slog.Default().
	Logger *slog.Logger
}

func (o *ServeOptions) setDefaults() {
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: requests
// run in ctx, so long-lived ones (the /v2/events stream, the agents' long
// polls) end with it; requests in flight get up to grace to finish; after
// that the remaining connections are cut. Connections that never sent a
// request are closed at once (http.Server.Shutdown would otherwise wait 5 s
// for them: Go's transport often dials a spare connection it never uses).
// Serve returns nil after a shutdown caused by ctx. Timeouts are the
// ServeOptions defaults.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	return ServeWith(ctx, ln, h, ServeOptions{Grace: grace})
}

// ServeWith is Serve with options: TLS and the timeouts that keep slow
// or idle clients from holding connections.
func ServeWith(ctx context.Context, ln net.Listener, h http.Handler, opts ServeOptions) error {
	opts.setDefaults()
	var (
		mu     sync.Mutex
		unused = map[net.Conn]struct{}{}
	)
	if opts.TLS != nil {
		cfg := opts.TLS.Clone()
		// HTTP/1.1 only: the event stream's per-write deadlines and the
		// read deadline handling below rely on one request per connection
		// at a time.
		cfg.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, cfg)
	}
	srv := &http.Server{
		Handler:           deadlines(h, opts),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		IdleTimeout:       opts.IdleTimeout,
		// Failed TLS handshakes (scanners, plain HTTP on the HTTPS port)
		// are not worth a warning each.
		ErrorLog:    slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx },
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.Grace)
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

// deadlines sets the per-request write deadline. (The read deadline of
// ReadTimeout needs no help: net/http lifts it once the request body has
// been read, so it does not end long streams.)
func deadlines(h http.Handler, opts ServeOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
		h.ServeHTTP(w, r)
	})
}

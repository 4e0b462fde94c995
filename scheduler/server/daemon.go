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
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Endpoint is one listener of the daemon: plain HTTP, or HTTPS with TLS.
type Endpoint struct {
	Listener net.Listener
	TLS      *tls.Config
}

// term is one period of leadership: a scheduler and the handler serving
// it. Requests hold mu for reading while they run.
type term struct {
	handler http.Handler
	ctx     context.Context // requests of this term end with it
	mu      sync.RWMutex
	closed  bool
}

// Run runs the scheduler daemon: it serves cfg's API on every endpoint
// (with opts, TLS taken from the endpoint) until ctx ends, and cfg.DNS
// when set (following each term's scheduler).
//
// DELETE /v2/leader ends this node's term. Marathon exits then, leaving
// the election to the other instances and its supervisor; there is only
// one scheduler here, so it takes leadership again in place: requests of
// the old term end (event streams and agent long polls reconnect), the
// scheduler stops and closes its store, and a new one starts from the
// stored state, as after a restart but without leaving the process (its
// metrics start over). Meanwhile requests get 503. With a memory-only
// store (no Scheduler.DataDir) the state could not survive, so the node
// keeps its term and logs why.
func Run(ctx context.Context, cfg Config, endpoints []Endpoint, opts ServeOptions) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if opts.Logger == nil {
		opts.Logger = cfg.Logger
	}
	log := cfg.Logger
	var cur atomic.Pointer[term]
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := cur.Load()
		if t != nil {
			t.mu.RLock()
			defer t.mu.RUnlock()
		}
		if t == nil || t.closed {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"message":"Leader election in progress; try again"}` + "\n"))
			return
		}
		rctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(t.ctx, cancel)
		defer stop()
		t.handler.ServeHTTP(w, r.WithContext(rctx))
	})

	g, gctx := errgroup.WithContext(ctx)
	// start builds term n and publishes it; the first one exists before
	// anything is served.
	start := func(n int) (*term, *runningScheduler, error) {
		c := cfg
		if n > 1 {
			c.Registry = nil // the old term's collectors stay registered there
		}
		abdicated := make(chan struct{})
		var once sync.Once
		c.Scheduler.OnAbdicate = func() {
			if c.Scheduler.DataDir == "" {
				log.Warn("DELETE /v2/leader: leadership kept: the state is in memory only (no --data-dir), a new term would start empty")
				return
			}
			once.Do(func() { close(abdicated) })
		}
		handler, sched, err := New(c)
		if err != nil {
			return nil, nil, fmt.Errorf("scheduler term %d: %w", n, err)
		}
		schedCtx, stopSched := context.WithCancel(gctx)
		reqCtx, endRequests := context.WithCancel(schedCtx)
		t := &term{handler: handler, ctx: reqCtx}
		rs := &runningScheduler{abdicated: abdicated, stop: stopSched, endRequests: endRequests, done: make(chan error, 1)}
		go func() { rs.done <- sched.Run(schedCtx) }()
		if cfg.DNS != nil {
			g.Go(func() error { cfg.DNS.Follow(schedCtx, DNSSource(sched)); return nil })
		}
		cur.Store(t)
		return t, rs, nil
	}
	t, rs, err := start(1)
	if err != nil {
		return err
	}
	if cfg.DNS != nil {
		g.Go(func() error { return cfg.DNS.Serve(gctx) })
	}
	for _, e := range endpoints {
		o := opts
		o.TLS = e.TLS
		g.Go(func() error { return ServeWith(gctx, e.Listener, h, o) })
	}
	g.Go(func() error {
		for n := 2; ; n++ {
			select {
			case err := <-rs.done:
				rs.endRequests()
				rs.stop()
				return err
			case <-rs.abdicated:
			}
			log.Warn("DELETE /v2/leader: leadership abdicated; this is the only scheduler, so it takes leadership again in place",
				"term", n)
			cur.Store(nil)
			rs.endRequests()
			// Wait for the old term's requests, so none changes the old
			// store after it is closed.
			t.mu.Lock()
			t.closed = true
			t.mu.Unlock()
			rs.stop()
			if err := <-rs.done; err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			if gctx.Err() != nil {
				return nil
			}
			var err error
			if t, rs, err = start(n); err != nil {
				return err
			}
		}
	})
	return g.Wait()
}

// runningScheduler is the scheduler of a term, running.
type runningScheduler struct {
	abdicated   chan struct{}
	stop        context.CancelFunc // ends the scheduler
	endRequests context.CancelFunc // ends the term's requests
	done        chan error         // sched.Run's result
}

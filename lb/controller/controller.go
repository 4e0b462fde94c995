// Package controller is the load balancer daemon: it reads the apps from
// Marathon (a snapshot, then the event stream or a poll), coalesces bursts
// of events, builds the model (lb.Build), renders it (templates), validates
// it (haproxy -c) and applies it, through HAProxy's runtime API when only
// servers changed and by a seamless master-worker reload otherwise. It also
// watches the templates directory and the certificates, serves the admin
// endpoints HAProxy's stats listener forwards to it (/_haproxy_getconfig,
// /_mlb_signal/*, /metrics, ...), and exports its metrics.
//
// A configuration HAProxy rejects is never applied. When that happens the
// controller finds the app ports to blame (from the lines HAProxy names,
// else by checking halves of the apps), leaves them out, logs each once at
// Warn with HAProxy's message, counts them in the skipped_apps and
// invalid_apps gauges, and applies the rest, so that one bad label does
// not hold back the other apps (see isolate.go). The same holds for what
// only shows when HAProxy loads a configuration, above all a service port
// another process holds: lb binds new ports itself before a reload
// (bindcheck.go), HAProxy's own start and reload failures are blamed by
// the line they name (loadfail.go), and such ports are tried again later.
//
// When the first configuration fails and no app port can be blamed, lb
// does not exit: HAProxy starts with the last good configuration (the one
// at the config path) or with no apps, the error is reported
// (config_failing, /_switchyard/skipped), and the next change is tried.
//
// Data flows one way: events -> snapshot -> model -> config -> HAProxy.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used when the matching Config field is zero.
const (
	DefaultPollInterval = 60 * time.Second
	// DefaultResyncInterval is marathon-lb's periodic full re-read in sse
	// mode.
	DefaultResyncInterval = 300 * time.Second
	DefaultDebounce       = 5 * time.Millisecond
	DefaultMaxDelay       = 100 * time.Millisecond
	DefaultAdminAddr      = "127.0.0.1:0"
	defaultMinBackoff     = 100 * time.Millisecond
	defaultMaxBackoff     = 15 * time.Second
	// defaultAttachWait bounds the wait for the event stream before the
	// first read of Marathon.
	defaultAttachWait = time.Second
	// gcPercent is the Go GC target lb runs with unless GOGC is set.
	gcPercent = 50
)

// Controller is the LB daemon. Create it with New and run it with Run; Run
// may be called once. Signal is safe to call from any goroutine.
type Controller struct {
	cfg Config
	log *slog.Logger

	src     Source
	rend    renderer
	applier applier
	metrics *metrics
	gather  prometheus.Gatherer

	// newRenderer builds the renderer from the templates on disk; called
	// at start and after every change of the templates directory.
	newRenderer func() (renderer, error)
	// newApplier builds the applier once the admin address is known.
	newApplier func() (applier, error)

	poll             bool
	pollInterval     time.Duration
	resyncInterval   time.Duration
	attachWait       time.Duration // see awaitAttach
	hosts            *hostResolver
	debounce         time.Duration
	maxDelay         time.Duration
	minBackoff       time.Duration
	maxBackoff       time.Duration
	reloadInterval   time.Duration
	maxReloadRetries int
	configPath       string

	hup, usr1        chan struct{}
	templatesChanged chan struct{}
	certsChanged     chan struct{}
	// haproxyRestarted: the HAProxy master exited on its own and was
	// started again from the file at the config path.
	// It carries the configuration it started with.
	haproxyRestarted chan []byte

	status    atomic.Pointer[rendered]
	skipped   atomic.Pointer[[]skippedPort]
	configErr atomic.Pointer[string] // why the current state's configuration is not in effect
	adminAddr atomic.Pointer[string]
}

// Signal asks the running controller for a re-read (SignalHUP) or a reload
// (SignalUSR1). It never blocks; requests arriving while one is pending
// are merged.
func (c *Controller) Signal(s Signal) {
	ch := c.usr1
	if s == SignalHUP {
		ch = c.hup
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// AdminAddr returns the address the admin HTTP server listens on, once Run
// has started it (empty before).
func (c *Controller) AdminAddr() string {
	if a := c.adminAddr.Load(); a != nil {
		return *a
	}
	return ""
}

// notify sends on a one-slot channel without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func newController(cfg Config) (*Controller, error) {
	if cfg.Marathon == nil {
		return nil, errors.New("controller: no Marathon source")
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		cfg:              cfg,
		log:              logger(cfg.Logger),
		src:              cfg.Marathon,
		metrics:          m,
		gather:           reg,
		poll:             cfg.Poll,
		pollInterval:     orDefault(cfg.PollInterval, DefaultPollInterval),
		resyncInterval:   orDefault(cfg.ResyncInterval, DefaultResyncInterval),
		attachWait:       defaultAttachWait,
		debounce:         orDefault(cfg.Debounce, DefaultDebounce),
		maxDelay:         orDefault(cfg.MaxDelay, DefaultMaxDelay),
		minBackoff:       defaultMinBackoff,
		maxBackoff:       orDefault(cfg.MaxBackoff, defaultMaxBackoff),
		reloadInterval:   cfg.ReloadInterval,
		maxReloadRetries: cfg.MaxReloadRetries,
		configPath:       cfg.ConfigPath,
		hup:              make(chan struct{}, 1),
		usr1:             make(chan struct{}, 1),
		templatesChanged: make(chan struct{}, 1),
		certsChanged:     make(chan struct{}, 1),
		haproxyRestarted: make(chan []byte, 1),
	}
	c.hosts = newHostResolver(cfg.Resolver, cfg.HostCacheSize, c.log)
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// reloadTemplates rebuilds the renderer from the templates directory.
func (c *Controller) reloadTemplates() error {
	r, err := c.newRenderer()
	if err != nil {
		return err
	}
	if prev, ok := c.rend.(*modelRenderer); ok {
		if next, ok := r.(*modelRenderer); ok {
			next.inherit(prev) // who holds which service port survives a template change
		}
	}
	c.rend = r
	return nil
}

// previousConfig returns the configuration left at the config path by a
// previous run, if there is one.
func (c *Controller) previousConfig(ctx context.Context) (rendered, bool) {
	if c.configPath == "" || c.cfg.Dry {
		return rendered{}, false
	}
	b, err := os.ReadFile(c.configPath)
	if err != nil || len(b) == 0 {
		return rendered{}, false
	}
	return rendered{Config: b}, true
}

// Run serves until ctx ends (returning nil) or a fatal error: HAProxy
// cannot start even with a fallback configuration (see initial) or is
// gone for good (a master that exits on its own is restarted by
// haproxy.Process), or the admin address cannot be bound. It stops HAProxy
// before returning.
func (c *Controller) Run(ctx context.Context) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		// lb's steady work (task events) allocates little, while a full
		// sync briefly needs a few times the live heap (decode, render,
		// compare): a lower GC target keeps the peak RSS down (under
		// 100 MiB at 5,000 apps) for little CPU.
		debug.SetGCPercent(gcPercent)
	}
	ln, err := net.Listen("tcp", orString(c.cfg.AdminAddr, DefaultAdminAddr))
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	addr := ln.Addr().String()
	c.adminAddr.Store(&addr)
	if c.rend == nil {
		if c.rend, err = c.newRenderer(); err != nil {
			_ = ln.Close()
			return err
		}
	}
	if c.applier == nil {
		if c.applier, err = c.newApplier(); err != nil {
			_ = ln.Close()
			return err
		}
	}
	srv := &http.Server{Handler: c.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	c.log.Debug("admin server listening", "addr", addr)
	c.logAdminPolicy()

	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := c.watch(wctx); err != nil {
		c.log.Warn("cannot watch templates or certificates; changes need a restart or SIGHUP", "err", err)
	}

	err = c.loop(ctx)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := c.applier.stop(sctx); serr != nil {
		c.log.Warn("stopping HAProxy", "err", serr)
	}
	return err
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

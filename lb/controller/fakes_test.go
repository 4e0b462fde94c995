package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// fakeSource is an in-memory Marathon: tests set the apps, push events and
// make it fail.
type fakeSource struct {
	mu     sync.Mutex
	apps   []marathon.App
	err    error
	reads  int
	events chan marathon.Event
}

func newFakeSource(apps ...marathon.App) *fakeSource {
	return &fakeSource{apps: apps, events: make(chan marathon.Event, 4096)}
}

func (f *fakeSource) Apps(ctx context.Context) ([]marathon.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return append([]marathon.App(nil), f.apps...), nil
}

func (f *fakeSource) Events(ctx context.Context, types []string) <-chan marathon.Event {
	return f.events
}

func (f *fakeSource) set(apps ...marathon.App) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = apps
}

func (f *fakeSource) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeSource) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeSource) publish(eventType string) {
	f.events <- marathon.Event{Type: eventType}
}

// app builds a test app: id plus tasks as "host:port".
func app(id string, tasks ...string) marathon.App {
	a := marathon.App{ID: id}
	for _, t := range tasks {
		host, port, _ := strings.Cut(t, ":")
		var p int
		_, _ = fmt.Sscan(port, &p)
		a.Tasks = append(a.Tasks, marathon.Task{Host: host, Ports: []int{p}, State: marathon.TaskRunning})
	}
	return a
}

// fakeRenderer renders one line per app and task; apps whose id contains
// "bad" are skipped.
type fakeRenderer struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeRenderer) render(apps []marathon.App) (rendered, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return rendered{}, f.err
	}
	var b strings.Builder
	var r rendered
	sorted := append([]marathon.App(nil), apps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, a := range sorted {
		if strings.Contains(a.ID, "bad") {
			r.Skipped = append(r.Skipped, skippedPort{AppID: a.ID, Reason: "bad label"})
			continue
		}
		fmt.Fprintf(&b, "backend %s\n", a.ID)
		for _, t := range a.Tasks {
			fmt.Fprintf(&b, "  server %s:%v\n", t.Host, t.Ports)
		}
	}
	r.Config = []byte(b.String())
	return r, nil
}

// fakeApplier records what the loop asks of it.
type fakeApplier struct {
	mu      sync.Mutex
	cur     rendered
	started bool
	applied []string // configs passed to apply that changed something
	forces  []string // non-empty force reasons
	errs    []error  // errors returned by the next apply calls, in order
	calls   int
	exited  chan struct{}
	// runtime makes apply report runtime updates, which need a flush.
	runtime   bool
	unflushed bool
	flushes   int
}

func newFakeApplier() *fakeApplier { return &fakeApplier{exited: make(chan struct{})} }

func (f *fakeApplier) start(ctx context.Context, r rendered) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = true
	f.cur = r
	return nil
}

func (f *fakeApplier) apply(ctx context.Context, r rendered, force string) (applyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return applyResult{}, err
		}
	}
	if force != "" {
		f.forces = append(f.forces, force)
	}
	if string(r.Config) == string(f.cur.Config) && force == "" {
		return applyResult{action: actionNone}, nil
	}
	f.cur = r
	f.applied = append(f.applied, string(r.Config))
	if f.runtime && force == "" {
		f.unflushed = true
		return applyResult{action: actionRuntime}, nil
	}
	return applyResult{action: actionReload, reason: "test"}, nil
}

func (f *fakeApplier) running() rendered {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *fakeApplier) pids(ctx context.Context) ([]int, error) { return []int{42, 43}, nil }
func (f *fakeApplier) pendingFlush() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unflushed
}

func (f *fakeApplier) flush(ctx context.Context) error {
	run, done := f.beginFlush()
	if run == nil {
		return nil
	}
	return done(ctx, run(ctx))
}

func (f *fakeApplier) beginFlush() (func(context.Context) error, func(context.Context, error) error) {
	if !f.pendingFlush() {
		return nil, nil
	}
	run := func(context.Context) error {
		time.Sleep(30 * time.Millisecond) // haproxy -c takes a while
		return nil
	}
	done := func(context.Context, error) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.flushes++
		f.unflushed = false
		return nil
	}
	return run, done
}
func (f *fakeApplier) done() <-chan struct{}          { return f.exited }
func (f *fakeApplier) stop(ctx context.Context) error { return nil }

func (f *fakeApplier) snapshot() (cur string, applied, forces []string, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.cur.Config), append([]string(nil), f.applied...), append([]string(nil), f.forces...), f.calls
}

// harness is a controller wired to fakes.
type harness struct {
	c   *Controller
	src *fakeSource
	rnd *fakeRenderer
	app *fakeApplier
	reg *prometheus.Registry
}

func newHarness(t *testing.T, cfg Config, apps ...marathon.App) *harness {
	t.Helper()
	h := &harness{src: newFakeSource(apps...), rnd: &fakeRenderer{}, app: newFakeApplier(), reg: prometheus.NewRegistry()}
	cfg.Marathon = h.src
	cfg.Registry = h.reg
	c, err := newController(cfg)
	require.NoError(t, err)
	c.rend, c.applier = h.rnd, h.app
	c.newRenderer = func() (renderer, error) { return h.rnd, nil }
	c.attachWait = 0 // the fake source sends no attach unless told
	h.c = c
	return h
}

// counter reads a counter or gauge of the harness's registry.
func (h *harness) metric(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var d dto.Metric
	require.NoError(t, (<-ch).Write(&d))
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric is neither a counter nor a gauge")
	return 0
}

var errDown = errors.New("connection refused")

// syncWriter is a strings.Builder safe for concurrent use.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

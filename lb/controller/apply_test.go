package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// fakeProcess records what the applier asks of HAProxy.
type fakeProcess struct {
	mu       sync.Mutex
	calls    []string // "start", "reload: <reason>", "apply"
	applyErr error
	exited   chan struct{}
}

func (p *fakeProcess) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, s)
}

func (p *fakeProcess) Start(ctx context.Context) error { p.record("start"); return nil }
func (p *fakeProcess) Reload(ctx context.Context, reason string) error {
	p.record("reload: " + reason)
	return nil
}
func (p *fakeProcess) Apply(ctx context.Context, ch haproxy.Change) error {
	p.record("apply")
	return p.applyErr
}
func (p *fakeProcess) PIDs(ctx context.Context) ([]int, error) { return []int{1}, nil }
func (p *fakeProcess) Stop(ctx context.Context) error          { p.record("stop"); return nil }
func (p *fakeProcess) Done() <-chan struct{}                   { return p.exited }

func (p *fakeProcess) taken() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

// applierFixture is an applier on a temp dir with a fake process and a
// check that fails for configs containing "BROKEN".
type applierFixture struct {
	a      *haproxyApplier
	proc   *fakeProcess
	checks int
	failOn string // check fails for configs containing this
	path   string
	rend   *modelRenderer
}

func newApplierFixture(t *testing.T, opts lb.Options) *applierFixture {
	t.Helper()
	dir := t.TempDir()
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	f := &applierFixture{proc: &fakeProcess{exited: make(chan struct{})}, path: filepath.Join(dir, "haproxy.cfg")}
	opts.MapDir = dir
	f.rend, err = loadRenderer(opts, "")
	require.NoError(t, err)
	f.a = &haproxyApplier{
		log: logger(nil), m: m, proc: f.proc, diff: haproxy.Diff,
		check: func(ctx context.Context, cfg []byte) error {
			f.checks++
			if strings.Contains(string(cfg), "BROKEN") || (f.failOn != "" && strings.Contains(string(cfg), f.failOn)) {
				return fmt.Errorf("%w: [ALERT] parsing: unknown keyword 'BROKEN'", haproxy.ErrInvalidConfig)
			}
			return nil
		},
		configPath: f.path, mapDir: dir,
	}
	return f
}

func (f *applierFixture) render(t *testing.T, apps ...marathon.App) rendered {
	t.Helper()
	r, err := f.rend.render(apps)
	require.NoError(t, err)
	return r
}

func (f *applierFixture) onDisk(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.path)
	require.NoError(t, err)
	return string(b)
}

func webApp(tasks ...int) marathon.App {
	opts := []marathontest.AppOption{
		marathontest.WithLabels(map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "www.example.com"}),
		marathontest.WithServicePorts(10000),
	}
	for _, p := range tasks {
		opts = append(opts, marathontest.WithTask("10.0.0.1", p))
	}
	return marathontest.App("/web", opts...)
}

func apiApp() marathon.App {
	return marathontest.App("/api", marathontest.WithLabel("HAPROXY_GROUP", "external"),
		marathontest.WithServicePorts(10001), marathontest.WithTask("10.0.0.2", 32000))
}

func TestApplierPaths(t *testing.T) {
	ctx := t.Context()
	f := newApplierFixture(t, lb.Options{})
	first := f.render(t, webApp(31000))
	require.NoError(t, f.a.start(ctx, first))
	assert.Equal(t, []string{"start"}, f.proc.taken())
	assert.Equal(t, string(first.Config), f.onDisk(t))

	t.Run("identical config does nothing", func(t *testing.T) {
		res, err := f.a.apply(ctx, f.render(t, webApp(31000)), "")
		require.NoError(t, err)
		assert.Equal(t, actionNone, res.action)
		assert.Empty(t, f.proc.taken())
	})

	t.Run("servers only: runtime API, no reload; written by flush without haproxy -c", func(t *testing.T) {
		before := f.onDisk(t)
		checks := f.checks
		next := f.render(t, webApp(31000, 31001))
		res, err := f.a.apply(ctx, next, "")
		require.NoError(t, err)
		assert.Equal(t, actionRuntime, res.action)
		assert.Equal(t, []string{"apply"}, f.proc.taken())
		assert.Equal(t, 1.0, valueOf(t, f.a.m.runtimeUpdates))
		assert.Equal(t, before, f.onDisk(t), "not written before validation")
		assert.True(t, f.a.pendingFlush())

		require.NoError(t, f.a.flush(ctx))
		assert.Equal(t, checks, f.checks, "no haproxy -c for a servers-only change")
		assert.Equal(t, string(next.Config), f.onDisk(t), "file follows the runtime state")
		assert.False(t, f.a.pendingFlush())
		assert.Empty(t, f.proc.taken())
	})

	t.Run("structural: validated, written, reloaded with a reason", func(t *testing.T) {
		checks := f.checks
		next := f.render(t, webApp(31000, 31001), apiApp())
		res, err := f.a.apply(ctx, next, "")
		require.NoError(t, err)
		assert.Equal(t, actionReload, res.action)
		assert.NotEmpty(t, res.reason)
		calls := f.proc.taken()
		require.Len(t, calls, 1)
		assert.True(t, strings.HasPrefix(calls[0], "reload: "), calls[0])
		assert.Equal(t, checks+1, f.checks, "validated once")
		assert.Equal(t, string(next.Config), f.onDisk(t))
		assert.Equal(t, 1.0, valueOf(t, f.a.m.reloads.WithLabelValues(reloadStructural)))
	})

	t.Run("runtime API error falls back to reload", func(t *testing.T) {
		f.proc.applyErr = errors.New("runtime socket gone")
		defer func() { f.proc.applyErr = nil }()
		next := f.render(t, webApp(31000), apiApp())
		res, err := f.a.apply(ctx, next, "")
		require.NoError(t, err)
		assert.Equal(t, actionReload, res.action)
		calls := f.proc.taken()
		require.Len(t, calls, 2)
		assert.Equal(t, "apply", calls[0])
		assert.Contains(t, calls[1], "runtime API update failed")
		assert.Equal(t, 1.0, valueOf(t, f.a.m.reloads.WithLabelValues(reloadRuntimeError)))
	})

	t.Run("failed validation is never applied", func(t *testing.T) {
		good := f.onDisk(t)
		bad := f.render(t, webApp(31000), apiApp(), marathontest.App("/third",
			marathontest.WithLabel("HAPROXY_GROUP", "external"), marathontest.WithServicePorts(10002),
			marathontest.WithTask("10.0.0.3", 33000)))
		bad.Config = append(bad.Config, "BROKEN\n"...)
		_, err := f.a.apply(ctx, bad, "")
		require.ErrorIs(t, err, ErrValidation)
		assert.Contains(t, err.Error(), "unknown keyword")
		assert.Empty(t, f.proc.taken(), "no reload")
		assert.Equal(t, good, f.onDisk(t), "file untouched")
		assert.Equal(t, 1.0, valueOf(t, f.a.m.validationFailures))

		checks := f.checks
		_, err = f.a.apply(ctx, bad, "")
		require.ErrorIs(t, err, ErrValidation)
		assert.Equal(t, checks, f.checks, "the same failing config is not checked again")
	})

	t.Run("servers-only change: the runtime API is the check", func(t *testing.T) {
		f.failOn = "10.0.0.1:31002" // haproxy -c would reject it; it never runs
		defer func() { f.failOn = "" }()
		checks := f.checks
		next := f.render(t, webApp(31000, 31002), apiApp())
		res, err := f.a.apply(ctx, next, "")
		require.NoError(t, err)
		assert.Equal(t, actionRuntime, res.action)
		require.NoError(t, f.a.flush(ctx))
		assert.Equal(t, []string{"apply"}, f.proc.taken())
		assert.Equal(t, checks, f.checks, "no haproxy -c")
		assert.Equal(t, string(next.Config), f.onDisk(t))

		// HAProxy refusing the runtime update means a reload, whose
		// failure leaves the old worker serving (tested in haproxy).
		f.proc.applyErr = errors.New("add server: invalid option")
		defer func() { f.proc.applyErr = nil }()
		res, err = f.a.apply(ctx, f.render(t, webApp(31000, 31003), apiApp()), "")
		require.NoError(t, err)
		assert.Equal(t, actionReload, res.action)
		calls := f.proc.taken()
		require.Len(t, calls, 2)
		assert.Contains(t, calls[1], "runtime API update failed")
	})

	t.Run("forced reload", func(t *testing.T) {
		res, err := f.a.apply(ctx, f.a.running(), "signal usr1")
		require.NoError(t, err)
		assert.Equal(t, actionReload, res.action)
		assert.Equal(t, []string{"reload: signal usr1"}, f.proc.taken())
	})
}

func TestApplierMinReloadInterval(t *testing.T) {
	f := newApplierFixture(t, lb.Options{})
	f.a.minInterval = time.Hour
	require.NoError(t, f.a.start(t.Context(), f.render(t, webApp(31000))))
	f.proc.taken()
	// Servers-only changes are not held back ...
	res, err := f.a.apply(t.Context(), f.render(t, webApp(31000, 31001)), "")
	require.NoError(t, err)
	assert.Equal(t, actionRuntime, res.action)
	// ... structural ones are.
	_, err = f.a.apply(t.Context(), f.render(t, webApp(31000, 31001), apiApp()), "")
	var soon *tooSoonError
	require.ErrorAs(t, err, &soon)
	assert.Greater(t, soon.wait, 59*time.Minute)
}

func TestApplierMaps(t *testing.T) {
	f := newApplierFixture(t, lb.Options{HAProxyMap: true})
	require.NoError(t, f.a.start(t.Context(), f.render(t, webApp(31000))))
	b, err := os.ReadFile(filepath.Join(f.a.mapDir, "domain2backend.map"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "www.example.com")
	f.proc.taken()

	other := webApp(31000)
	other.Labels["HAPROXY_0_VHOST"] = "other.example.com"
	res, err := f.a.apply(t.Context(), f.render(t, other), "")
	require.NoError(t, err)
	assert.Equal(t, actionReload, res.action, "map changes need a reload")
	b, err = os.ReadFile(filepath.Join(f.a.mapDir, "domain2backend.map"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "other.example.com")
}

func TestApplierCommandMode(t *testing.T) {
	f := newApplierFixture(t, lb.Options{})
	marker := filepath.Join(t.TempDir(), "ran")
	f.a.proc = nil
	f.a.command = "echo x >> " + marker
	require.NoError(t, f.a.start(t.Context(), f.render(t, webApp(31000))))
	res, err := f.a.apply(t.Context(), f.render(t, webApp(31000, 31001)), "")
	require.NoError(t, err)
	assert.Equal(t, actionReload, res.action, "no runtime API with --command")
	b, err := os.ReadFile(marker)
	require.NoError(t, err)
	assert.Equal(t, "x\nx\n", string(b), "command run at start and on change")
	assert.Nil(t, f.a.done())

	f.a.command = "echo oops >&2; exit 3"
	_, err = f.a.apply(t.Context(), f.render(t, webApp(31000)), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "oops")
}

func TestApplierDry(t *testing.T) {
	f := newApplierFixture(t, lb.Options{})
	var out strings.Builder
	f.a.dry, f.a.dryOut = true, &out
	require.NoError(t, f.a.start(t.Context(), f.render(t, webApp(31000))))
	res, err := f.a.apply(t.Context(), f.render(t, webApp(31000, 31001)), "")
	require.NoError(t, err)
	assert.Equal(t, actionDry, res.action)
	assert.Empty(t, f.proc.taken(), "HAProxy untouched")
	assert.NoFileExists(t, f.path)
	assert.Zero(t, f.checks)
	assert.Equal(t, 2, strings.Count(out.String(), "\nbackend web_10000\n"), "both configs printed")
}

// valueOf reads a counter or gauge.
func valueOf(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return (&harness{}).metric(t, c)
}

func TestApplierCheckErrorIsNotAVerdict(t *testing.T) {
	f := newApplierFixture(t, lb.Options{})
	require.NoError(t, f.a.start(t.Context(), f.render(t, webApp(31000))))
	f.proc.taken()
	f.a.check = func(ctx context.Context, cfg []byte) error { return errors.New("exec: haproxy: not found") }
	next := f.render(t, webApp(31000), apiApp())
	_, err := f.a.apply(t.Context(), next, "")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrValidation, "retried by the loop, not remembered as invalid")
	assert.Zero(t, valueOf(t, f.a.m.validationFailures))
	assert.Empty(t, f.proc.taken(), "nothing applied")

	f.a.check = func(ctx context.Context, cfg []byte) error { return nil }
	res, err := f.a.apply(t.Context(), next, "")
	require.NoError(t, err)
	assert.Equal(t, actionReload, res.action)
}

func TestApplierFlushRacesWithChanges(t *testing.T) {
	ctx := t.Context()
	f := newApplierFixture(t, lb.Options{})
	require.NoError(t, f.a.start(ctx, f.render(t, webApp(31000))))

	// A runtime change, its flush check started; another runtime change
	// lands before the check returns: the checked snapshot is written,
	// and the newer state still waits for its own flush.
	first := f.render(t, webApp(31000, 31001))
	_, err := f.a.apply(ctx, first, "")
	require.NoError(t, err)
	run, done := f.a.beginFlush()
	require.NotNil(t, run)
	checkErr := run(ctx)
	second := f.render(t, webApp(31000, 31001, 31002))
	res, err := f.a.apply(ctx, second, "")
	require.NoError(t, err)
	require.Equal(t, actionRuntime, res.action)
	require.NoError(t, done(ctx, checkErr))
	assert.Equal(t, string(first.Config), f.onDisk(t))
	assert.True(t, f.a.pendingFlush(), "the second change still waits")
	require.NoError(t, f.a.flush(ctx))
	assert.Equal(t, string(second.Config), f.onDisk(t))

	// A reload while a flush check runs: the stale snapshot must not
	// overwrite the newer file.
	third := f.render(t, webApp(31000, 31002))
	_, err = f.a.apply(ctx, third, "")
	require.NoError(t, err)
	run, done = f.a.beginFlush()
	checkErr = run(ctx)
	structural := f.render(t, webApp(31000, 31002), apiApp())
	res, err = f.a.apply(ctx, structural, "")
	require.NoError(t, err)
	require.Equal(t, actionReload, res.action)
	require.NoError(t, done(ctx, checkErr))
	assert.Equal(t, string(structural.Config), f.onDisk(t), "newer file kept")
	assert.False(t, f.a.pendingFlush())
}

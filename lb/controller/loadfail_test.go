package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
	"github.com/switchyard/switchyard/templates"
)

func TestLoadFailure(t *testing.T) {
	bind := "[ALERT] Binding [/etc/haproxy/haproxy.cfg:17] for frontend web_10002: cannot bind socket (Address already in use) for [0.0.0.0:10002]"
	tests := []struct {
		name string
		err  error
		want []haproxy.Alert
	}{
		{
			name: "reload that cannot bind",
			err: fmt.Errorf("reload haproxy: %w", &haproxy.ReloadError{Reason: "x", Lines: []string{
				bind, "[ALERT] [haproxy.main()] Some protocols failed to start their listeners! Exiting."}}),
			want: []haproxy.Alert{
				{Line: 17, Text: "Binding for frontend web_10002: cannot bind socket (Address already in use) for [0.0.0.0:10002]"},
				{Text: "[haproxy.main()] Some protocols failed to start their listeners! Exiting."},
			},
		},
		{
			name: "start that cannot bind",
			err:  &haproxy.StartError{Err: fmt.Errorf("exit status 1"), Lines: []string{"[NOTICE] haproxy version is 2.6", bind}},
			want: []haproxy.Alert{{Line: 17, Text: "Binding for frontend web_10002: cannot bind socket (Address already in use) for [0.0.0.0:10002]"}},
		},
		{
			name: "parse error at reload",
			err: &haproxy.ReloadError{Lines: []string{
				"[ALERT] config : parsing [/etc/haproxy/haproxy.cfg:9] : unknown keyword 'foo' in 'frontend' section"}},
			want: []haproxy.Alert{{Line: 9, Text: "unknown keyword 'foo' in 'frontend' section"}},
		},
		{name: "reload timed out", err: &haproxy.ReloadError{Err: context.DeadlineExceeded, Lines: []string{bind}}},
		{name: "start timed out", err: &haproxy.StartError{Err: context.DeadlineExceeded, Lines: []string{bind}}},
		{name: "binary missing", err: &haproxy.StartError{Err: os.ErrNotExist}},
		{name: "other error", err: ErrValidation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, loadFailure(tc.err))
		})
	}
}

// TestLoadBlameBacksOff: a port blamed for a load failure is left out,
// then tried again after a delay that doubles while it keeps failing.
func TestLoadBlameBacksOff(t *testing.T) {
	rc := newRealCheck(t)
	s := newScreen(rc.rend, rc.a)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	apps := []marathon.App{exposed("/good", 10000, nil), exposed("/busy", 10002, nil)}
	r, err := s.render(apps)
	require.NoError(t, err)
	line := lineOf(t, r.Config, "bind *:10002")

	fail := func(r rendered) rendered {
		t.Helper()
		iso, err := s.isolateLoad(t.Context(), r, []haproxy.Alert{{Line: line, Text: "Binding for frontend busy_10002: cannot bind socket"}}, false)
		require.NoError(t, err)
		require.Len(t, iso.blamed, 1)
		assert.Equal(t, "/busy", iso.blamed[0].AppID)
		assert.Equal(t, loadFailedReason+"Binding for frontend busy_10002: cannot bind socket", iso.blamed[0].Reason)
		assert.True(t, iso.blamed[0].Rejected)
		assert.NotContains(t, string(iso.next.Config), "busy_10002")
		return iso.next
	}
	fail(r)
	assert.Equal(t, now.Add(loadRetryMin), s.nextRetry())

	// Before the retry: left out, with its reason.
	now = now.Add(loadRetryMin - time.Second)
	r, err = s.render(apps)
	require.NoError(t, err)
	assert.NotContains(t, string(r.Config), "busy_10002")
	require.Len(t, r.Skipped, 1)
	assert.Contains(t, r.Skipped[0].Reason, "cannot bind socket")

	// Due: tried again; it fails again and waits twice as long.
	now = now.Add(time.Second)
	r, err = s.render(apps)
	require.NoError(t, err)
	require.Contains(t, string(r.Config), "busy_10002")
	assert.True(t, s.nextRetry().IsZero(), "nothing else waits")
	s.rounds = 0
	fail(r)
	assert.Equal(t, now.Add(2*loadRetryMin), s.nextRetry())

	// Due again, and this time HAProxy loads it: forgotten.
	now = now.Add(2 * loadRetryMin)
	r, err = s.render(apps)
	require.NoError(t, err)
	require.Contains(t, string(r.Config), "busy_10002")
	s.loaded()
	assert.Empty(t, s.bad)
	assert.True(t, s.nextRetry().IsZero())
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lineOf returns the 1-based line of cfg holding text.
func lineOf(t *testing.T, cfg []byte, text string) int {
	t.Helper()
	for i, l := range strings.Split(string(cfg), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("no line %q in\n%s", text, cfg)
	return 0
}

// liveLB is a Controller run with a real HAProxy (in a network namespace).
type liveLB struct {
	c    *Controller
	src  *fakeSource
	reg  *prometheus.Registry
	path string
	logs *syncWriter
	errc chan error
	stop func() error // stops the controller and returns Run's error
}

func startLive(t *testing.T, path string, tmplDir string, apps ...marathon.App) *liveLB {
	t.Helper()
	l := &liveLB{src: newFakeSource(apps...), reg: prometheus.NewRegistry(), path: path, logs: &syncWriter{}, errc: make(chan error, 1)}
	c, err := New(Config{
		Marathon: l.src, Registry: l.reg, ConfigPath: path, HAProxyBinary: haproxytest.Binary(t), TemplatesDir: tmplDir,
		Options: lb.Options{Groups: []string{"external"}},
		Logger:  newTextLogger(l.logs),
	})
	require.NoError(t, err)
	l.c = c
	ctx, cancel := context.WithCancel(context.Background())
	go func() { l.errc <- c.Run(ctx) }()
	var once sync.Once
	var runErr error
	l.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-l.errc:
			case <-time.After(20 * time.Second):
				runErr = errors.New("controller did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := l.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", l.logs.String())
		}
	})
	return l
}

// set changes the apps and tells the controller.
func (l *liveLB) set(apps ...marathon.App) {
	l.src.set(apps...)
	l.src.publish(marathon.EventAPIPost)
}

func (l *liveLB) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := l.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

// skipped reads /_switchyard/skipped from the admin server.
func (l *liveLB) skipped(t *testing.T) (reasons map[string]string, configError string) {
	t.Helper()
	resp, err := http.Get("http://" + l.c.AdminAddr() + "/_switchyard/skipped")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Skipped []struct {
			AppID  string `json:"appId"`
			Reason string `json:"reason"`
		} `json:"skipped"`
		ConfigError string `json:"configError"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	reasons = map[string]string{}
	for _, s := range body.Skipped {
		reasons[s.AppID] = s.Reason
	}
	return reasons, body.ConfigError
}

// answers reports whether 127.0.0.1:port answers an HTTP request with
// body (a prefix of it).
func answers(port int, path, body string) bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(string(b), body)
}

// serve runs an HTTP server on 127.0.0.1 answering body; it returns its port.
func serve(t *testing.T, body string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func served(id string, servicePort int, body string, t *testing.T, labels map[string]string) marathon.App {
	l := map[string]string{"HAPROXY_GROUP": "external"}
	for k, v := range labels {
		l[k] = v
	}
	return marathontest.App(id, marathontest.WithLabels(l), marathontest.WithServicePorts(servicePort),
		marathontest.WithTask("127.0.0.1", serve(t, body)))
}

// hold binds port on every address, as another process would.
func hold(t *testing.T, port int) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func TestBusyServicePort(t *testing.T) {
	if haproxytest.InNetns(t) {
		return
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	ln := hold(t, 10002)
	l := startLive(t, path, "", served("/good", 10000, "GOOD-1", t, nil), served("/busy", 10002, "BUSY", t, nil))

	// At start: HAProxy cannot bind :10002; the rest starts.
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-1") }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { r, _ := l.skipped(t); return r["/busy"] != "" }, 10*time.Second, 10*time.Millisecond)
	reasons, cerr := l.skipped(t)
	assert.Contains(t, reasons["/busy"], "cannot bind socket", "HAProxy's message on /_switchyard/skipped")
	assert.Empty(t, cerr)
	assert.Equal(t, 1.0, l.metric(t, "switchyard_lb_invalid_apps"))
	assert.GreaterOrEqual(t, l.metric(t, "switchyard_lb_load_failures_total"), 1.0)
	assert.Contains(t, l.logs.String(), `app_id=/busy`)

	// Later changes of the other app go through while :10002 stays busy,
	// and the busy port is tried again (one failed reload, blamed again).
	for i := 2; i <= 3; i++ {
		body := fmt.Sprintf("GOOD-%d", i)
		l.set(served("/good", 10000, body, t, nil), served("/busy", 10002, "BUSY", t, map[string]string{"HAPROXY_0_BALANCE": "leastconn"}))
		require.Eventually(t, func() bool { return answers(10000, "/", body) }, 20*time.Second, 10*time.Millisecond, body)
	}
	assert.Equal(t, 1.0, l.metric(t, "switchyard_lb_load_failures_total"),
		"only the start failed: lb found the busy port before reloading")
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(onDisk), "busy_10002", "the config file is the one loaded")
	assert.Contains(t, string(onDisk), "good_10000")

	// The port frees: the busy app is routed once its retry is due.
	require.NoError(t, ln.Close())
	require.Eventually(t, func() bool { return answers(10002, "/", "BUSY") }, loadRetryMax, 20*time.Millisecond)
	require.Eventually(t, func() bool { r, _ := l.skipped(t); return len(r) == 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, l.metric(t, "switchyard_lb_invalid_apps"))
}

// TestReloadFailureIsBlamed: a failure that only HAProxy's reload shows
// (here a bind address this host does not have) is blamed on its app
// port, whose frontend is left out while the rest applies.
func TestReloadFailureIsBlamed(t *testing.T) {
	if haproxytest.InNetns(t) {
		return
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	l := startLive(t, path, "", served("/good", 10000, "GOOD-1", t, nil))
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-1") }, 20*time.Second, 10*time.Millisecond)
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	nowhere := served("/nowhere", 10003, "NOWHERE", t, map[string]string{"HAPROXY_0_BIND_ADDR": "10.99.99.99"})
	l.set(served("/good", 10000, "GOOD-2", t, map[string]string{"HAPROXY_0_BALANCE": "leastconn"}), nowhere)
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-2") }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { r, _ := l.skipped(t); return r["/nowhere"] != "" }, 10*time.Second, 10*time.Millisecond)
	reasons, _ := l.skipped(t)
	assert.Contains(t, reasons["/nowhere"], loadFailedReason+"Binding for frontend nowhere_10003: cannot bind socket")
	assert.Equal(t, 1.0, l.metric(t, "switchyard_lb_load_failures_total"))
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(onDisk), "nowhere_10003", "the file is the configuration HAProxy runs")
	assert.NotEqual(t, string(before), string(onDisk))

	// The next change does not try the port again before its retry.
	l.set(served("/good", 10000, "GOOD-3", t, map[string]string{"HAPROXY_0_BALANCE": "leastconn"}), nowhere)
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-3") }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, l.metric(t, "switchyard_lb_load_failures_total"))
}

// healthy reports whether HAProxy's health endpoint answers on the stats
// port.
func healthy() bool {
	return answers(9090, "/_haproxy_health_check", "")
}

// TestFirstConfigFails: when the first configuration fails and no app
// port can be blamed, lb does not exit: HAProxy serves the last good
// configuration or no apps (stats and health endpoints up), the error is
// reported, and the next change is tried.
func TestFirstConfigFails(t *testing.T) {
	if haproxytest.InNetns(t) {
		return
	}
	brokenHead := templates.Default().Get("HAPROXY_HEAD") + "  frobnicate yes\n"

	t.Run("only_app_bad_then_another", func(t *testing.T) {
		bad := served("/bad", 10001, "BAD", t, map[string]string{"HAPROXY_0_BIND_OPTIONS": "foo"})
		l := startLive(t, filepath.Join(t.TempDir(), "haproxy.cfg"), "", bad)
		require.Eventually(t, healthy, 20*time.Second, 10*time.Millisecond, "HAProxy serves with no apps")
		require.Eventually(t, func() bool { return l.metric(t, "switchyard_lb_config_failing") == 1 }, 10*time.Second, 10*time.Millisecond)
		_, cerr := l.skipped(t)
		assert.Contains(t, cerr, "unknown keyword 'foo'", "HAProxy's message on /_switchyard/skipped")
		assert.Contains(t, l.logs.String(), "HAProxy serves a fallback")
		assert.False(t, answers(10001, "/", "BAD"))

		// The next change: the bad app is now blamed among others.
		l.set(bad, served("/good", 10000, "GOOD", t, nil))
		require.Eventually(t, func() bool { return answers(10000, "/", "GOOD") }, 20*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return l.metric(t, "switchyard_lb_config_failing") == 0 }, 10*time.Second, 10*time.Millisecond)
		reasons, cerr := l.skipped(t)
		assert.Contains(t, reasons["/bad"], "unknown keyword 'foo'")
		assert.Empty(t, cerr)
	})

	t.Run("broken_template_last_good", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "haproxy.cfg")
		good := served("/good", 10000, "GOOD", t, nil)
		func() {
			// A previous run leaves a good configuration behind.
			l := startLive(t, path, "", good)
			require.Eventually(t, func() bool {
				return answers(10000, "/", "GOOD") && l.metric(t, "switchyard_lb_reloads_total") == 1
			}, 20*time.Second, 10*time.Millisecond)
			require.NoError(t, l.stop())
		}()
		require.Eventually(t, func() bool { return !healthy() }, 20*time.Second, 10*time.Millisecond)

		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "HAPROXY_HEAD"), brokenHead)
		l := startLive(t, path, dir, good, served("/other", 10001, "OTHER", t, nil))
		require.Eventually(t, func() bool { return answers(10000, "/", "GOOD") }, 20*time.Second, 10*time.Millisecond,
			"the last good configuration serves")
		require.Eventually(t, func() bool { return l.metric(t, "switchyard_lb_config_failing") == 1 }, 10*time.Second, 10*time.Millisecond)
		assert.True(t, healthy())
		assert.False(t, answers(10001, "/", "OTHER"))

		// The template is fixed: the apps' configuration applies.
		writeFile(t, filepath.Join(dir, "HAPROXY_HEAD"), templates.Default().Get("HAPROXY_HEAD"))
		require.Eventually(t, func() bool { return answers(10001, "/", "OTHER") }, 20*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return l.metric(t, "switchyard_lb_config_failing") == 0 }, 10*time.Second, 10*time.Millisecond)
	})

	t.Run("broken_template_nothing_before", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "HAPROXY_HEAD"), brokenHead)
		l := startLive(t, filepath.Join(t.TempDir(), "haproxy.cfg"), dir, served("/good", 10000, "GOOD", t, nil))
		require.Eventually(t, healthy, 20*time.Second, 10*time.Millisecond, "no apps, default templates")
		require.Eventually(t, func() bool { return l.metric(t, "switchyard_lb_config_failing") == 1 }, 10*time.Second, 10*time.Millisecond)
		assert.Contains(t, l.logs.String(), "no apps and the default templates")
		assert.False(t, answers(10000, "/", "GOOD"))
	})
}

// TestFailedReloadKeepsOldWorker checks what lb relies on when it lets
// HAProxy's reload stand in for haproxy -c: on HAProxy 2.6 in master-worker
// mode, a configuration that fails to load is never loaded, and the old
// worker keeps serving the old one.
func TestFailedReloadKeepsOldWorker(t *testing.T) {
	oldPort, newPort := haproxytest.FreePort(t), haproxytest.FreePort(t)
	head := fmt.Sprintf("defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"+
		"frontend old\n  bind 127.0.0.1:%d\n  http-request return status 200 content-type text/plain string old\n", oldPort)
	path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(head), 0o644))
	p := haproxy.NewProcess(haproxy.ProcessConfig{Binary: haproxytest.Binary(t), ConfigPath: path, Logger: haproxytest.Logger(t)})
	ctx := t.Context()
	require.NoError(t, p.Start(ctx))
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	before, err := p.PIDs(ctx)
	require.NoError(t, err)

	for _, bad := range []string{
		"frontend new\n  bind 127.0.0.1:%d foo\n  http-request return status 200 content-type text/plain string new\n",
		"frontend new\n  bind 127.0.0.1:%d\n  frobnicate yes\n",
		"frontend new\n  bind 127.0.0.1:%d\n  use_backend nowhere\n",
	} {
		// The old frontend changes too: were the file loaded, it would
		// answer "changed".
		cfg := strings.Replace(head, "string old", "string changed", 1) + fmt.Sprintf(bad, newPort)
		require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
		err := p.Reload(ctx, "bad configuration")
		require.Error(t, err, bad)
		require.NotNil(t, loadFailure(err), "HAProxy's messages: %v", err)
		assert.True(t, answers(oldPort, "/", "old"), "the old configuration serves")
		assert.False(t, answers(newPort, "/", "new"), "nothing of the new one")
		after, err := p.PIDs(ctx)
		require.NoError(t, err)
		assert.Equal(t, before[1], after[1], "the same worker")
	}

	require.NoError(t, os.WriteFile(path, []byte(head+fmt.Sprintf(
		"frontend new\n  bind 127.0.0.1:%d\n  http-request return status 200 content-type text/plain string new\n", newPort)), 0o644))
	require.NoError(t, p.Reload(ctx, "good configuration"), "a good reload after failed ones")
	require.Eventually(t, func() bool { return answers(newPort, "/", "new") }, 10*time.Second, 10*time.Millisecond)
}

// TestBadAppReloadedUnchecked: lb reloads without haproxy -c first; a bad
// app makes the reload fail, haproxy -c then blames it (not a load
// failure: it stays out until its labels change), and the rest applies.
func TestBadAppReloadedUnchecked(t *testing.T) {
	if haproxytest.InNetns(t) {
		return
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	l := startLive(t, path, "", served("/good", 10000, "GOOD-1", t, nil))
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-1") }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return l.metric(t, "switchyard_lb_reloads_total") == 1 }, 10*time.Second, 10*time.Millisecond)

	bad := served("/bad", 10001, "BAD", t, map[string]string{"HAPROXY_0_BIND_OPTIONS": "foo"})
	l.set(served("/good", 10000, "GOOD-2", t, map[string]string{"HAPROXY_0_BALANCE": "leastconn"}), bad)
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-2") }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { r, _ := l.skipped(t); return r["/bad"] != "" }, 10*time.Second, 10*time.Millisecond)
	reasons, _ := l.skipped(t)
	assert.Contains(t, reasons["/bad"], rejectedReason)
	assert.Contains(t, reasons["/bad"], "unknown keyword 'foo'")
	assert.Equal(t, 1.0, l.metric(t, "switchyard_lb_validation_failures_total"))
	assert.Zero(t, l.metric(t, "switchyard_lb_load_failures_total"), "a rejected configuration is not a load failure")
	assert.False(t, answers(10001, "/", "BAD"))
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(onDisk), "bad_10001")

	// Known bad: the next change neither reloads with it nor checks it.
	l.set(served("/good", 10000, "GOOD-3", t, map[string]string{"HAPROXY_0_BALANCE": "first"}), bad)
	require.Eventually(t, func() bool { return answers(10000, "/", "GOOD-3") }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, l.metric(t, "switchyard_lb_validation_failures_total"))
}

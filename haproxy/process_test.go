package haproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/haproxy/runtimeapi"
)

// backend is a tiny HTTP server answering its own name.
type backend struct {
	name string
	srv  *httptest.Server
	port int
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return &backend{name: name, srv: srv, port: port}
}

func (b *backend) serverLine() string {
	return fmt.Sprintf("  server %s 127.0.0.1:%d check inter 1s fall 3\n", b.name, b.port)
}

// config renders a test configuration: one frontend on port, one backend with
// the given servers, and extra lines in the frontend.
func config(port int, frontendExtra string, servers ...*backend) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `global
  maxconn 1000

defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend fe
  bind 127.0.0.1:%d
%s  default_backend be

backend be
  balance roundrobin
`, port, frontendExtra)
	for _, s := range servers {
		sb.WriteString(s.serverLine())
	}
	return sb.String()
}

func get(t *testing.T, c *http.Client, port int) string {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "status of GET :%d (body %q)", port, body)
	return string(body)
}

// seen returns which backends answered n requests.
func seen(t *testing.T, c *http.Client, port, n int) map[string]int {
	t.Helper()
	m := map[string]int{}
	for range n {
		m[get(t, c, port)]++
	}
	return m
}

func configPath(t *testing.T, p *haproxy.Process) string {
	t.Helper()
	// haproxytest.Start puts the master socket next to the configuration.
	return filepath.Join(filepath.Dir(p.Runtime().Path()), "haproxy.cfg")
}

func masterPID(t *testing.T, p *haproxy.Process) int {
	t.Helper()
	pids, err := p.PIDs(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, pids)
	return pids[0]
}

func TestApplyAddRemoveWithoutReload(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := haproxytest.FreePort(t)
	oldCfg := config(port, "", a)
	p := haproxytest.Start(t, oldCfg)
	ctx := t.Context()
	client := &http.Client{Timeout: 5 * time.Second}

	require.Equal(t, map[string]int{"a": 4}, seen(t, client, port, 4))
	pidsBefore, err := p.PIDs(ctx)
	require.NoError(t, err)
	require.Len(t, pidsBefore, 2, "master and one worker")

	// Scale up: b joins at runtime.
	newCfg := config(port, "", a, b)
	ch, err := haproxy.Diff([]byte(oldCfg), []byte(newCfg))
	require.NoError(t, err)
	require.False(t, ch.Reload, "adding a server needs no reload: %v", ch)
	require.Len(t, ch.Add, 1)
	require.NoError(t, p.Apply(ctx, ch))
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, seen(t, client, port, 10), "round robin over a and b")

	states, err := p.Runtime().On("@1").ShowServersState(ctx, "be")
	require.NoError(t, err)
	require.Len(t, states, 2)
	assert.False(t, states[1].Maint(), "added server is in service: %+v", states[1])

	// Weight change at runtime.
	weighted := strings.Replace(newCfg, "fall 3\n  server b", "fall 3 weight 3\n  server b", 1)
	ch, err = haproxy.Diff([]byte(newCfg), []byte(weighted))
	require.NoError(t, err)
	require.Len(t, ch.Update, 1, "weight change: %v", ch)
	require.NoError(t, p.Apply(ctx, ch))
	states, err = p.Runtime().On("@1").ShowServersState(ctx, "be")
	require.NoError(t, err)
	assert.Equal(t, 3, states[0].UWeight, "weight of a")

	// Scale down: a leaves. Keep-alive connections through HAProxy stay up.
	onlyB := config(port, "", b)
	ch, err = haproxy.Diff([]byte(weighted), []byte(onlyB))
	require.NoError(t, err)
	require.Len(t, ch.Remove, 1)
	require.NoError(t, p.Apply(ctx, ch))
	assert.Equal(t, map[string]int{"b": 10}, seen(t, client, port, 10), "only b after a was removed")
	require.Eventually(t, func() bool {
		states, err := p.Runtime().On("@1").ShowServersState(ctx, "be")
		return err == nil && len(states) == 1 && states[0].Name == "b"
	}, 10*time.Second, 50*time.Millisecond, "a is deleted once idle")

	pidsAfter, err := p.PIDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, pidsBefore, pidsAfter, "no reload happened")

	// Removing a server that is already gone is not an error.
	require.NoError(t, p.Apply(ctx, haproxy.Change{Remove: []haproxy.Server{{Backend: "be", Name: "ghost", Address: "127.0.0.1", Port: 1}}}))

	// After a reload, runtime operations reach the new worker.
	reloaded := config(port, "  http-response set-header X-Reloaded yes\n", b)
	require.NoError(t, haproxy.WriteFileAtomic(configPath(t, p), []byte(reloaded), 0o644))
	require.NoError(t, p.Reload(ctx, "frontend fe changed"))
	back := config(port, "  http-response set-header X-Reloaded yes\n", b, a)
	ch, err = haproxy.Diff([]byte(reloaded), []byte(back))
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, ch))
	assert.Equal(t, map[string]int{"a": 5, "b": 5}, seen(t, client, port, 10), "a is back after the reload")

	// A failing operation is reported so the caller can reload instead.
	err = p.Apply(ctx, haproxy.Change{Add: []haproxy.Server{{Backend: "nope", Name: "x", Address: "127.0.0.1", Port: 1}}})
	var ce *runtimeapi.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Response, "No such backend")
}

func TestReloadZeroDowntime(t *testing.T) {
	if testing.Short() {
		t.Skip("10 reloads under load; skipped with -short")
	}
	a := newBackend(t, "a")
	port := haproxytest.FreePort(t)
	p := haproxytest.Start(t, config(port, "", a))
	path := configPath(t, p)
	master := masterPID(t, p)

	ctx, cancel := context.WithCancel(t.Context())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	loop := func(c *http.Client) {
		defer wg.Done()
		for ctx.Err() == nil {
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				continue
			}
			ok.Add(1)
		}
	}
	keepAlive := &http.Client{Timeout: 5 * time.Second}
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	wg.Add(3)
	go loop(keepAlive)
	go loop(keepAlive)
	go loop(fresh)

	for i := range 10 {
		cfg := config(port, fmt.Sprintf("  http-response set-header X-Generation %d\n", i), a)
		require.NoError(t, haproxy.WriteFileAtomic(path, []byte(cfg), 0o644))
		before := ok.Load()
		require.NoError(t, p.Reload(t.Context(), fmt.Sprintf("test reload %d", i)))
		require.Eventually(t, func() bool { return ok.Load() > before+5 }, 5*time.Second, 5*time.Millisecond,
			"traffic flows after reload %d", i)
	}
	cancel()
	wg.Wait()

	assert.Zero(t, failed.Load(), "failed requests during reloads (first: %v)", firstErr.Load())
	assert.Greater(t, ok.Load(), int64(100), "requests served")
	assert.Equal(t, master, masterPID(t, p), "the master survives reloads")
	resp, err := keepAlive.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "9", resp.Header.Get("X-Generation"), "the last configuration is live")
	t.Logf("%d requests served across 10 reloads, %d failed", ok.Load(), failed.Load())
}

func TestInvalidConfigIsNeverLoaded(t *testing.T) {
	a := newBackend(t, "a")
	port := haproxytest.FreePort(t)
	good := config(port, "", a)
	p := haproxytest.Start(t, good)
	path := configPath(t, p)
	bin := haproxytest.Binary(t)
	client := &http.Client{Timeout: 5 * time.Second}
	ctx := t.Context()

	bad := strings.Replace(good, "  balance roundrobin\n", "  balance roundrobin\n  frobnicate yes\n", 1)
	err := haproxy.Check(ctx, bin, []byte(bad))
	var ce *haproxy.CheckError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, haproxy.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "unknown keyword 'frobnicate'", "HAProxy's own message")
	require.NoError(t, haproxy.Check(ctx, bin, []byte(good)))

	// Had it reached the disk anyway, the reload fails and the old worker
	// keeps serving.
	require.NoError(t, haproxy.WriteFileAtomic(path, []byte(bad), 0o644))
	err = p.Reload(ctx, "bad config")
	require.ErrorIs(t, err, haproxy.ErrReloadFailed)
	assert.Contains(t, err.Error(), "frobnicate", "reload error carries HAProxy's alert")
	assert.Equal(t, "a", get(t, client, port), "old worker still serves")

	require.NoError(t, haproxy.WriteFileAtomic(path, []byte(good), 0o644))
	require.NoError(t, p.Reload(ctx, "fixed config"), "a valid reload after a failed one")
	assert.Equal(t, "a", get(t, client, port))
}

func TestStartFailureExplainsWhy(t *testing.T) {
	bin := haproxytest.Binary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })
	const head = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n\n"
	tests := []struct {
		name     string
		cfg      string
		wantLine string // from HAProxy
		wantHint string // ours
	}{
		{
			name: "maxconn above the open files limit",
			// Just past what any process may open (fs.nr_open): HAProxy
			// fails at once. A far larger value made it allocate over a
			// gigabyte first, which took seconds on a loaded machine.
			cfg: fmt.Sprintf("global\n  maxconn %d\n\n", nrOpen(t)) + head +
				fmt.Sprintf("frontend fe\n  bind 127.0.0.1:%d\n", haproxytest.FreePort(t)),
			wantLine: "FD limit",
			wantHint: "ulimit -n",
		},
		{
			name:     "port in use",
			cfg:      head + fmt.Sprintf("frontend fe\n  bind %s\n", busy.Addr()),
			wantLine: "Address already in use",
			wantHint: "already in use",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
			require.NoError(t, os.WriteFile(path, []byte(tc.cfg), 0o644))
			require.NoError(t, haproxy.Check(t.Context(), bin, []byte(tc.cfg)), "haproxy -c accepts it: only starting fails")

			p := haproxy.NewProcess(haproxy.ProcessConfig{Binary: bin, ConfigPath: path, Logger: haproxytest.Logger(t)})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := p.Start(ctx)
			var se *haproxy.StartError
			require.ErrorAs(t, err, &se)
			require.ErrorIs(t, err, haproxy.ErrStartFailed)
			assert.Contains(t, err.Error(), tc.wantLine, "HAProxy's reason is in the error")
			assert.Contains(t, se.Hint(), tc.wantHint)
			t.Logf("start error: %v", err)
			select {
			case <-p.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done not closed after a failed start")
			}
		})
	}
}

// nrOpen is the kernel's cap on open files per process (fs.nr_open).
func nrOpen(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		return 1 << 20 // the kernel's default
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return n
}

func TestStopLeavesNoProcess(t *testing.T) {
	a := newBackend(t, "a")
	p := haproxytest.Start(t, config(haproxytest.FreePort(t), "", a))
	pids, err := p.PIDs(t.Context())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.Stop(ctx))
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	for _, pid := range pids {
		err := syscall.Kill(pid, 0)
		assert.True(t, errors.Is(err, syscall.ESRCH), "process %d still exists after Stop (kill 0: %v)", pid, err)
	}
	require.NoError(t, p.Stop(ctx), "Stop is idempotent")
}

func TestApplyRemoveKeepsActiveConnections(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "a")
	}))
	t.Cleanup(slow.Close)
	u, err := url.Parse(slow.URL)
	require.NoError(t, err)
	aPort, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	a := &backend{name: "a", srv: slow, port: aPort}
	b := newBackend(t, "b")
	port := haproxytest.FreePort(t)
	cfgA := config(port, "", a)
	p := haproxytest.Start(t, cfgA)
	ctx := t.Context()
	w := p.Runtime().On("@1")
	t.Cleanup(func() { // before HAProxy's soft stop waits for the request
		select {
		case <-release:
		default:
			close(release)
		}
	})

	// A long request is in flight on a.
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/slow", port))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- result{body: string(body), err: err}
	}()
	require.Eventually(t, func() bool {
		out, err := w.Execute(ctx, "show stat")
		return err == nil && strings.Contains(out, "be,a,0,0,1,") // scur=1
	}, 5*time.Second, 10*time.Millisecond, "slow request reached a")

	// The task moves: b replaces a.
	cfgB := config(port, "", b)
	ch, err := haproxy.Diff([]byte(cfgA), []byte(cfgB))
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, ch))
	client := &http.Client{Timeout: 5 * time.Second}
	assert.Equal(t, map[string]int{"b": 5}, seen(t, client, port, 5), "new requests go to b")
	states, err := w.ShowServersState(ctx, "be")
	require.NoError(t, err)
	require.Len(t, states, 2, "a is kept while its request runs")
	assert.True(t, states[0].Maint(), "a is in maintenance")

	// Moving back to a while it drains revives it instead of adding it.
	ch, err = haproxy.Diff([]byte(cfgB), []byte(cfgA))
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, ch))
	states, err = w.ShowServersState(ctx, "be")
	require.NoError(t, err)
	require.Len(t, states, 1, "b had no connection left and was deleted at once")
	assert.Equal(t, "a", states[0].Name)
	assert.False(t, states[0].Maint(), "a is back in service")
	ch, err = haproxy.Diff([]byte(cfgA), []byte(cfgB))
	require.NoError(t, err)
	require.NoError(t, p.Apply(ctx, ch))

	// The in-flight request completes normally, then a goes away.
	close(release)
	select {
	case r := <-done:
		require.NoError(t, r.err, "the active connection was not killed")
		assert.Equal(t, "a", r.body)
	case <-time.After(10 * time.Second):
		t.Fatal("slow request did not finish")
	}
	require.Eventually(t, func() bool {
		states, err := w.ShowServersState(ctx, "be")
		return err == nil && len(states) == 1 && states[0].Name == "b"
	}, 15*time.Second, 50*time.Millisecond, "a deleted once idle")
}

// statRow returns the "show stat" columns of one server as a map.
func statRow(t *testing.T, p *haproxy.Process, backend, server string) map[string]string {
	t.Helper()
	out, err := p.Runtime().On("@1").Execute(t.Context(), "show stat")
	require.NoError(t, err)
	var header []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "# ") {
			header = strings.Split(strings.TrimPrefix(line, "# "), ",")
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 2 || f[0] != backend || f[1] != server {
			continue
		}
		row := map[string]string{}
		for i, name := range header {
			if i < len(f) {
				row[name] = f[i]
			}
		}
		return row
	}
	t.Fatalf("no stat row for %s/%s in %q", backend, server, out)
	return nil
}

// TestApplyMatchesReload checks that a server added at runtime is the same
// server HAProxy builds from the configuration file, default-server
// settings included.
func TestApplyMatchesReload(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := haproxytest.FreePort(t)
	withDefaults := func(cfg string) string {
		return strings.Replace(cfg, "  timeout server 10s\n",
			"  timeout server 10s\n  default-server init-addr last,libc,none rise 4 fall 5 weight 7\n", 1)
	}
	oldCfg := withDefaults(config(port, "", a))
	newCfg := withDefaults(config(port, "", a, b))
	p := haproxytest.Start(t, oldCfg)
	ch, err := haproxy.Diff([]byte(oldCfg), []byte(newCfg))
	require.NoError(t, err)
	require.Len(t, ch.Add, 1, "runtime change: %v", ch)
	require.NoError(t, p.Apply(t.Context(), ch))
	compared := []string{"weight", "check_rise", "check_fall", "status", "addr", "mode", "act", "bck"}
	runtime := statRow(t, p, "be", "b")

	require.NoError(t, haproxy.WriteFileAtomic(configPath(t, p), []byte(newCfg), 0o644))
	require.NoError(t, p.Reload(t.Context(), "compare"))
	configured := statRow(t, p, "be", "b")
	for _, col := range compared {
		assert.Equal(t, configured[col], runtime[col], "column %s of the runtime-added server", col)
	}
	assert.Equal(t, "7", runtime["weight"], "default-server weight applied")
	assert.Equal(t, "4", runtime["check_rise"], "default-server rise applied")
	assert.Equal(t, "3", runtime["check_fall"], "the server line wins over default-server")
}

// TestStopDuringReload: Stop called while a reload is in flight (through
// Reload, or requested on the master CLI behind the Process's back) returns
// promptly and leaves no HAProxy process. A master re-executing itself
// forgets a stop signal received meanwhile; Stop used to wait for its
// whole timeout then.
func TestStopDuringReload(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration // between the start of the reload and Stop
		external bool          // reload on the master CLI, not Process.Reload
	}{
		{name: "at once", delay: 0},
		{name: "1ms", delay: time.Millisecond},
		{name: "5ms", delay: 5 * time.Millisecond},
		{name: "20ms", delay: 20 * time.Millisecond},
		{name: "master CLI reload", delay: 2 * time.Millisecond, external: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newBackend(t, "a")
			port := haproxytest.FreePort(t)
			p := haproxytest.Start(t, config(port, "", a))
			master := masterPID(t, p)

			reloadErr := make(chan error, 1)
			if tt.external {
				require.NoError(t, p.Runtime().Reload(t.Context()))
				reloadErr <- nil
			} else {
				go func() { reloadErr <- p.Reload(context.Background(), "concurrent with Stop") }()
			}
			time.Sleep(tt.delay)

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			err := p.Stop(ctx)
			took := time.Since(start)
			require.NoError(t, err, "Stop during a reload")
			assert.Less(t, took, 3*time.Second, "Stop during a reload is prompt")
			t.Logf("Stop took %s", took)

			select {
			case err := <-reloadErr:
				if err != nil {
					assertNotRunning(t, err, "a reload interrupted by Stop")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Reload did not return after Stop")
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("Done not closed after Stop")
			}
			// Workers share the master's process group.
			err = syscall.Kill(-master, 0)
			assert.True(t, errors.Is(err, syscall.ESRCH), "process group %d still has a process after Stop (kill 0: %v)", master, err)
			assert.False(t, dialable(port), "port %d still accepts connections after Stop", port)

			assertNotRunning(t, p.Reload(t.Context(), "after Stop"), "Reload after Stop")
		})
	}
}

// assertNotRunning asserts that err is a reload failing because HAProxy is
// not running (any more).
func assertNotRunning(t *testing.T, err error, what string) {
	t.Helper()
	var re *haproxy.ReloadError
	if assert.ErrorAs(t, err, &re, what) {
		assert.ErrorIs(t, re.Err, haproxy.ErrNotRunning, what)
	}
}

// dialable reports whether something accepts connections on 127.0.0.1:port.
func dialable(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 500*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

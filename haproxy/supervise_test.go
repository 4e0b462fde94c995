package haproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
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
)

// previousLBEnv makes the test binary act as a previous lb (see TestMain):
// it starts HAProxy on the configuration file named by the variable, prints
// "ready <master pid>" and waits to be killed.
const (
	previousLBEnv     = "SWITCHYARD_HAPROXY_PREVIOUS_LB"
	previousLBArgsEnv = "SWITCHYARD_HAPROXY_PREVIOUS_LB_ARGS"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(previousLBEnv); path != "" {
		os.Exit(previousLB(path))
	}
	os.Exit(m.Run())
}

func previousLB(path string) int {
	cfg := haproxy.ProcessConfig{Binary: os.Getenv(haproxytest.BinaryEnv), ConfigPath: path}
	if a := os.Getenv(previousLBArgsEnv); a != "" {
		cfg.ExtraArgs = strings.Fields(a)
	}
	p := haproxy.NewProcess(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pids, err := p.PIDs(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ready %d\n", pids[0])
	select {} // until killed
}

// startPreviousLB runs a previous lb on path and kills it with SIGKILL,
// leaving its HAProxy running, whose master pid it returns.
func startPreviousLB(t *testing.T, path string, extraArgs ...string) int {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), previousLBEnv+"="+path, previousLBArgsEnv+"="+strings.Join(extraArgs, " "),
		haproxytest.BinaryEnv+"="+haproxytest.Binary(t))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "previous lb did not start")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
	require.NoError(t, err, "previous lb said %q", line)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) }) // in case the test fails early
	return pid
}

// newProcess returns a Process on path whose restarts are sent on the
// returned channel, stopped when the test ends.
func newProcess(t *testing.T, path string) (*haproxy.Process, <-chan struct{}) {
	t.Helper()
	restarts := make(chan struct{}, 16)
	p := haproxy.NewProcess(haproxy.ProcessConfig{
		Binary: haproxytest.Binary(t), ConfigPath: path, Logger: haproxytest.Logger(t),
		OnRestart: func(cfg []byte) {
			assert.Contains(t, string(cfg), "frontend fe", "the configuration HAProxy restarted with")
			restarts <- struct{}{}
		},
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, p.Stop(ctx))
	})
	return p, restarts
}

func writeConfig(t *testing.T, path, cfg string) {
	t.Helper()
	require.NoError(t, haproxy.WriteFileAtomic(path, []byte(cfg), 0o644))
}

func waitRestart(t *testing.T, restarts <-chan struct{}) {
	t.Helper()
	select {
	case <-restarts:
	case <-time.After(30 * time.Second):
		t.Fatal("HAProxy not restarted")
	}
}

// noProcessLeft waits until no HAProxy process runs path.
func noProcessLeft(t *testing.T, path string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(haproxytest.Processes(path)) == 0 },
		10*time.Second, 10*time.Millisecond, "HAProxy processes left for %s: %v", path, haproxytest.Processes(path))
}

// load sends requests to port from a few goroutines until stop is called,
// which returns the number of requests and of failures.
func load(t *testing.T, port int) (stop func() (total, failed int64)) {
	t.Helper()
	var n, fails atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
				n.Add(1)
				if err != nil {
					fails.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fails.Add(1)
				}
			}
		}()
	}
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return n.Load(), fails.Load()
	}
}

func TestDaemonInConfigIsIgnored(t *testing.T) {
	a := newBackend(t, "a")
	port := haproxytest.FreePort(t)
	cfg := strings.Replace(config(port, "", a), "global\n", "global\n  daemon\n", 1)
	require.Contains(t, cfg, "daemon")
	path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
	writeConfig(t, path, cfg)
	p, _ := newProcess(t, path)
	require.NoError(t, p.Start(t.Context()))

	assert.Equal(t, "a", get(t, &http.Client{Timeout: 5 * time.Second}, port))
	masters := haproxytest.Masters(path)
	require.Equal(t, []int{masterPID(t, p)}, masters, "one master, the one Process runs")
	ppid, err := parentPID(masters[0])
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), ppid, "the master stays our child: it did not daemonize")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.Stop(ctx))
	noProcessLeft(t, path)
}

func parentPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return strconv.Atoi(f[1])
}

func TestRestartsWhenKilled(t *testing.T) {
	for _, victim := range []string{"worker", "master"} {
		t.Run(victim, func(t *testing.T) {
			a := newBackend(t, "a")
			port := haproxytest.FreePort(t)
			path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
			writeConfig(t, path, config(port, "", a))
			p, restarts := newProcess(t, path)
			require.NoError(t, p.Start(t.Context()))
			pids, err := p.PIDs(t.Context())
			require.NoError(t, err)
			require.Len(t, pids, 2, "master and worker")

			kill := pids[0]
			if victim == "worker" {
				kill = pids[1]
			}
			require.NoError(t, syscall.Kill(kill, syscall.SIGKILL))
			waitRestart(t, restarts)

			after, err := p.PIDs(t.Context())
			require.NoError(t, err)
			assert.NotEqual(t, pids[0], after[0], "a new master")
			assert.Equal(t, []int{after[0]}, haproxytest.Masters(path), "exactly one master")
			assert.Equal(t, "a", get(t, &http.Client{Timeout: 5 * time.Second}, port), "serving again")
			require.NoError(t, p.Reload(t.Context(), "after restart"), "the restarted master reloads")
			select {
			case <-p.Done():
				t.Fatal("Done closed by a restart")
			default:
			}
		})
	}
}

func TestStartTakesOverPreviousMaster(t *testing.T) {
	for _, tc := range []struct {
		name          string
		removePIDFile bool
	}{
		{name: "found through the pid file"},
		{name: "found through the master socket", removePIDFile: true},
	} {
		t.Run(tc.name, func(t *testing.T) { testTakeOver(t, tc.removePIDFile) })
	}
}

func testTakeOver(t *testing.T, removePIDFile bool) {
	a := newBackend(t, "a")
	port, port2 := haproxytest.FreePort(t), haproxytest.FreePort(t)
	path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
	writeConfig(t, path, config(port, "", a))
	old := startPreviousLB(t, path)
	require.Equal(t, []int{old}, haproxytest.Masters(path), "the killed lb's HAProxy keeps running")

	if removePIDFile {
		require.NoError(t, os.Remove(filepath.Join(filepath.Dir(path), "haproxy.pid")))
	}
	stop := load(t, port)
	// The new lb writes its configuration, then starts.
	writeConfig(t, path, config(port, "", a)+fmt.Sprintf("\nfrontend fe2\n  bind 127.0.0.1:%d\n  default_backend be\n", port2))
	p, restarts := newProcess(t, path)
	require.NoError(t, p.Start(t.Context()))
	client := &http.Client{Timeout: 5 * time.Second}
	assert.Equal(t, "a", get(t, client, port2), "the new configuration is loaded")
	total, failed := stop()
	assert.Zero(t, failed, "requests failed during the takeover (of %d)", total)
	t.Logf("takeover: %d requests, %d failed", total, failed)
	assert.Equal(t, []int{old}, haproxytest.Masters(path), "the master was adopted, not doubled")
	assert.Equal(t, old, masterPID(t, p))

	// The adopted master is supervised too.
	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
	waitRestart(t, restarts)
	m := masterPID(t, p)
	assert.NotEqual(t, old, m)
	assert.Equal(t, []int{m}, haproxytest.Masters(path))
	assert.Equal(t, "a", get(t, client, port2))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.Stop(ctx))
	noProcessLeft(t, path)
}

func TestStartReplacesMasterWithOtherArguments(t *testing.T) {
	a := newBackend(t, "a")
	port := haproxytest.FreePort(t)
	path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
	writeConfig(t, path, config(port, "", a))
	old := startPreviousLB(t, path, "-L", "previous")

	p, _ := newProcess(t, path)
	require.NoError(t, p.Start(t.Context()))
	m := masterPID(t, p)
	assert.NotEqual(t, old, m, "a master with other arguments is not adopted")
	require.Eventually(t, func() bool {
		ms := haproxytest.Masters(path)
		return len(ms) == 1 && ms[0] == m
	}, 10*time.Second, 10*time.Millisecond, "the previous master finishes; masters: %v", haproxytest.Masters(path))
	assert.Equal(t, "a", get(t, &http.Client{Timeout: 5 * time.Second}, port))
}

func TestRestartRetriesUntilHAProxyStarts(t *testing.T) {
	a := newBackend(t, "a")
	port := haproxytest.FreePort(t)
	path := filepath.Join(haproxytest.Dir(t), "haproxy.cfg")
	good := config(port, "", a)
	writeConfig(t, path, good)
	logs := &lockedBuffer{}
	restarts := make(chan struct{}, 16)
	p := haproxy.NewProcess(haproxy.ProcessConfig{
		Binary: haproxytest.Binary(t), ConfigPath: path, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		OnRestart: func([]byte) { restarts <- struct{}{} },
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, p.Stop(ctx))
	})
	require.NoError(t, p.Start(t.Context()))
	old := masterPID(t, p)

	// The file cannot be loaded any more: restarts fail until it is fixed.
	writeConfig(t, path, good+"\nbackend broken\n  no-such-keyword\n")
	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "cannot restart haproxy") >= 2 },
		30*time.Second, 5*time.Millisecond, "failed restarts are logged and retried")
	select {
	case <-restarts:
		t.Fatal("restarted from a file HAProxy rejects")
	default:
	}
	_, err := p.PIDs(t.Context())
	require.ErrorIs(t, err, haproxy.ErrNotRunning)
	assert.Contains(t, logs.String(), "unknown keyword", "HAProxy's reason is logged")

	writeConfig(t, path, good)
	waitRestart(t, restarts)
	assert.NotEqual(t, old, masterPID(t, p))
	assert.Equal(t, "a", get(t, &http.Client{Timeout: 5 * time.Second}, port))
	assert.Len(t, haproxytest.Masters(path), 1)
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Package haproxytest helps tests run a real HAProxy: find the binary, start
// an instance from a configuration string in a temporary directory, pick free
// ports, and run a test inside a private network namespace.
//
// Missing prerequisites (the haproxy binary, root, the ip command) fail the
// test; under -short (`SHORT=1 make test`) they skip it instead. A suite
// that passes by skipping what it could not run would tell a newcomer that
// everything works when nothing was tried.
package haproxytest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/haproxy"
)

// BinaryEnv names an environment variable that overrides the haproxy binary.
const BinaryEnv = "HAPROXY_BIN"

// Unavailable fails the test because a prerequisite is missing, or skips it
// under -short. The message starts with "prerequisite missing", which
// .ci/testreport looks for.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if testing.Short() {
		t.Skipf("prerequisite missing (skipped under -short): %s", msg)
	}
	t.Fatalf("prerequisite missing: %s (make test installs it; -short skips such tests)", msg)
}

// Binary returns the path of the haproxy binary ($HAPROXY_BIN, else
// "haproxy" from PATH, else /usr/sbin/haproxy). When there is none it fails
// the test (skips it under -short).
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv(BinaryEnv); b != "" {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
		Unavailable(t, "%s=%s is not executable", BinaryEnv, b)
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	Unavailable(t, "haproxy binary not found (set %s)", BinaryEnv)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Logger returns a logger writing to the test's output that goes quiet once
// the test has finished (HAProxy may print a last line while stopping).
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered first, so it runs after later cleanups
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu     sync.Mutex // guards closed and writes to t
	t      testing.TB
	closed bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(string(b[:len(b)-1]))
	}
	return len(b), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// Dir returns a new temporary directory with a short path (unix socket paths
// are limited to 107 bytes, and test names can be long), removed at cleanup.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hx")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// Start writes cfg to haproxy.cfg in a new temporary directory, starts
// HAProxy on it in master-worker mode (master socket in the same directory)
// and stops it when the test ends. It fails the test if HAProxy does not
// start.
func Start(t testing.TB, cfg string) *haproxy.Process {
	t.Helper()
	bin := Binary(t)
	log := Logger(t)
	dir := Dir(t)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
	p := haproxy.NewProcess(haproxy.ProcessConfig{Binary: bin, ConfigPath: path, Logger: log})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop haproxy: %v", err)
		}
	})
	return p
}

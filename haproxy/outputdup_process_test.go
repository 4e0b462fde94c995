package haproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

// syncBuffer is a log destination the test reads while HAProxy's output
// goroutine writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestProcessLogsEachLineOnce runs HAProxy with its log sent to stdout,
// as our configurations do, and checks that the messages it also prints
// on stderr are logged once, at the level of their prefix.
func TestProcessLogsEachLineOnce(t *testing.T) {
	bin := haproxytest.Binary(t)
	dir := haproxytest.Dir(t)
	port := haproxytest.FreePort(t)
	path := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`global
  log stdout format raw local0 notice
defaults
  log global
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend dedup_fe
  bind 127.0.0.1:%d
  http-request return status 200
`, port)), 0o644))
	var logs syncBuffer
	p := haproxy.NewProcess(haproxy.ProcessConfig{Binary: bin, ConfigPath: path,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, p.Start(ctx))
	require.NoError(t, p.Stop(ctx))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "All workers exited") },
		10*time.Second, 10*time.Millisecond, "HAProxy's last line: %s", logs.String())

	var stopped []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "Proxy dedup_fe stopped") {
			stopped = append(stopped, l)
		}
	}
	require.Len(t, stopped, 1, "logged once:\n%s", logs.String())
	assert.Contains(t, stopped[0], "level=DEBUG", "a stopping worker's per-proxy line is not news")
	assert.Contains(t, stopped[0], `line="[WARNING] Proxy dedup_fe stopped`)
}

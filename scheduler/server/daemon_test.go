package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler"
)

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

// runDaemon runs Run on a loopback port until the test ends.
func runDaemon(t *testing.T, dataDir string) (base string, logs *lockedBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	logs = &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Scheduler: scheduler.Config{DataDir: dataDir, Leader: ln.Addr().String()},
			Logger:    slog.New(slog.NewTextHandler(logs, nil)),
		}, []Endpoint{{Listener: ln}}, ServeOptions{Grace: time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "http://" + ln.Addr().String(), logs
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAbdicateRestartsLeadershipInPlace(t *testing.T) {
	base, logs := runDaemon(t, t.TempDir())
	code, body := do(t, "POST", base+"/v2/apps", `{"id":"/kept","cmd":"sleep 1","instances":0}`)
	require.Equal(t, http.StatusCreated, code, body)

	req, err := http.NewRequest("GET", base+"/v2/events", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	events := bufio.NewReader(stream.Body)
	_, err = events.ReadString('\n')
	require.NoError(t, err)

	code, body = do(t, "DELETE", base+"/v2/leader", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Leadership abdicated")

	// The old term's event stream ends; clients reconnect.
	_, err = io.Copy(io.Discard, events)
	assert.NoError(t, err)
	// The process stays up and the new term serves the stored state.
	require.Eventually(t, func() bool {
		code, _ := do(t, "GET", base+"/v2/apps/kept", "")
		return code == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond)
	assert.Contains(t, logs.String(), "takes leadership again in place")
	assert.Contains(t, logs.String(), "term=2")
	code, _ = do(t, "GET", base+"/ping", "")
	assert.Equal(t, http.StatusOK, code)
}

func TestAbdicateWithMemoryStateKeepsLeadership(t *testing.T) {
	base, logs := runDaemon(t, "")
	code, _ := do(t, "POST", base+"/v2/apps", `{"id":"/mem","cmd":"sleep 1","instances":0}`)
	require.Equal(t, http.StatusCreated, code)
	code, _ = do(t, "DELETE", base+"/v2/leader", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, logs.String(), "leadership kept: the state is in memory only")
	code, _ = do(t, "GET", base+"/v2/apps/mem", "")
	assert.Equal(t, http.StatusOK, code)
}

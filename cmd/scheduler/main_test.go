package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/marathon"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// runScheduler runs the CLI until the returned stop is called.
func runScheduler(t *testing.T, args ...string) (base string, stop func()) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args = withStateFlag(args)
	go func() {
		done <- newApp().RunContext(ctx, append([]string{"scheduler", "--http-addr", addr, "--log-level", "warn"}, args...))
	}()
	base = "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "scheduler did not come up: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("scheduler did not stop")
		}
	}
	t.Cleanup(stop)
	return base, stop
}

func TestSchedulerCommandPersists(t *testing.T) {
	dir := t.TempDir()
	base, stop := runScheduler(t, "--data-dir", dir, "--event-keepalive", "1s", "--agent-timeout", "5s")
	resp, err := http.Post(base+"/v2/apps", "application/json", strings.NewReader(`{"id":"/kept","cmd":"sleep 1","instances":0}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	stop()

	base, _ = runScheduler(t, "--data-dir", dir)
	resp, err = http.Get(base + "/v2/apps/kept")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var r marathon.AppResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	assert.Equal(t, "/kept", r.App.ID)
	assert.Equal(t, "sleep 1", r.App.Cmd)
}

func TestBadFlags(t *testing.T) {
	err := newApp().Run([]string{"scheduler", "--log-level", "loud"})
	assert.ErrorContains(t, err, "--log-level")
	err = newApp().Run([]string{"scheduler", "--http-addr", "nonsense"})
	assert.Error(t, err)
}

func TestVersionAndLogLevelWords(t *testing.T) {
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	require.NoError(t, app.Run([]string{"scheduler", "--version"}))
	assert.Equal(t, "scheduler version "+cliutil.Version()+"\n", out.String())

	// marathon-lb's words, any case: "WARNING" used to be refused.
	_, stop := runScheduler(t, "--log-level", "WARNING")
	stop()
	err := newApp().Run([]string{"scheduler", "--log-level", "info+2"})
	assert.ErrorContains(t, err, "want DEBUG, INFO, WARNING or ERROR")
}

// withStateFlag adds --in-memory unless args say where the state goes:
// a test must never use the default data dir (/var/lib/switchyard), which
// would leak state between tests and into the machine.
func withStateFlag(args []string) []string {
	for _, a := range args {
		if a == "--data-dir" || a == "--in-memory" || a == "--zk" || strings.HasPrefix(a, "--data-dir=") || strings.HasPrefix(a, "--zk=") {
			return args
		}
	}
	return append(args, "--in-memory")
}

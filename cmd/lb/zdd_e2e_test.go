package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/marathon"
)

// taskServers plays the tasks the fake agents pretend to run: for every
// RUNNING task the scheduler lists, an HTTP server on host:port answering
// the app's cmd (e.g. "serve v1"); it stops once the task is gone.
type taskServers struct {
	mu      sync.Mutex
	servers map[string]*http.Server // by host:port
}

func runTaskServers(ctx context.Context, t *testing.T, c *zddCluster) *taskServers {
	ts := &taskServers{servers: map[string]*http.Server{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			apps, err := c.client.Apps(ctx)
			if err != nil {
				continue
			}
			ts.sync(t, apps)
		}
	}()
	t.Cleanup(func() {
		<-done
		ts.sync(t, nil)
	})
	return ts
}

func (ts *taskServers) sync(t *testing.T, apps []marathon.App) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	want := map[string]string{}
	for _, a := range apps {
		for _, tk := range a.Tasks {
			if tk.State == marathon.TaskRunning && len(tk.Ports) > 0 {
				want[net.JoinHostPort(tk.Host, fmt.Sprint(tk.Ports[0]))] = a.Cmd
			}
		}
	}
	for addr, srv := range ts.servers {
		if _, ok := want[addr]; !ok {
			// Like a task stopping: finish requests in flight, then close.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			delete(ts.servers, addr)
		}
	}
	for addr, body := range want {
		if _, ok := ts.servers[addr]; ok {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("task server %s: %v", addr, err)
			continue
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, body)
		}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		ts.servers[addr] = srv
	}
}

// TestE2EZDDWithLB runs the whole blue/green story: our scheduler, the
// real lb (HAProxy) following it, and "lb zdd --lb" switching /web from
// blue to green while a client keeps requesting the service port. No
// request may fail, and at the end every request reaches the new version.
func TestE2EZDDWithLB(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)

	c := startZDDCluster(t, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	runTaskServers(ctx, t, c)
	t.Cleanup(cancel)

	startLB(t, haproxyBin, "sse", "--marathon", c.url, "--group", "external",
		"--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"))
	waitReady(t)

	code, out := runZDD(t, c, zddAppJSON("v1"))
	require.Equal(t, 0, code, out)
	eventually(t, 30*time.Second, "blue serves on :10000", func() bool {
		r, err := get(10000, "/", "")
		return err == nil && r.body == "serve v1"
	})

	// A client requests the service port all along.
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	hammerCtx, stopHammer := context.WithCancel(context.Background())
	hammerDone := make(chan struct{})
	go func() {
		defer close(hammerDone)
		for hammerCtx.Err() == nil {
			r, err := get(10000, "/", "")
			switch {
			case err == nil && r.status == http.StatusOK && strings.HasPrefix(r.body, "serve v"):
				ok.Add(1)
			default:
				failed.Add(1)
				mu.Lock()
				failures = append(failures, fmt.Sprintf("status %d body %q err %v", r.status, r.body, err))
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	code, out = runZDD(t, c, zddAppJSON("v2"), "--lb", "http://127.0.0.1:9090", "--step-delay", "200ms")
	stopHammer()
	<-hammerDone
	t.Logf("lb zdd --lb output:\n%s", out)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "scaling old app down")
	apps := groupApps(t, c)
	require.Len(t, apps, 1)
	require.Contains(t, apps, "/web-green")

	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests during the switch: %d ok, %d failed", ok.Load(), failed.Load())
	assert.Greater(t, ok.Load(), int64(20), "the client kept requesting")
	assert.Zero(t, failed.Load(), "failed requests during the switch: %v", failures)
	eventually(t, 10*time.Second, "only green answers", func() bool {
		for range 10 {
			if r, err := get(10000, "/", ""); err != nil || r.body != "serve v2" {
				return false
			}
		}
		return true
	})
}

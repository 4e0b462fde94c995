package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/server"
)

// env is a running scheduler behind httptest with fake agents.
type env struct {
	t      *testing.T
	dir    string
	srv    *httptest.Server
	sched  *scheduler.Scheduler
	agents []*schedulertest.FakeAgent
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	wg     sync.WaitGroup
}

type envOpts struct {
	agents       int
	dir          string
	agentTimeout time.Duration
	keepalive    time.Duration
	healthy      func(string) bool
}

func startScheduler(t *testing.T, o envOpts) (*httptest.Server, *scheduler.Scheduler, context.CancelFunc, chan error) {
	t.Helper()
	if o.agentTimeout == 0 {
		o.agentTimeout = 2 * time.Second
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{
			DataDir:           o.dir,
			AgentTimeout:      o.agentTimeout,
			ReconcileInterval: 20 * time.Millisecond,
			Leader:            "127.0.0.1:8080",
		},
		EventKeepalive: o.keepalive,
		Logger:         logger,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(_ net.Listener) context.Context { return ctx }
	srv.Start()
	return srv, sched, cancel, done
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	e := &env{t: t, dir: o.dir}
	e.srv, e.sched, e.cancel, e.done = startScheduler(t, o)
	agentCtx, stopAgents := context.WithCancel(context.Background())
	for i := range o.agents {
		a := schedulertest.NewFakeAgent(e.sched, fmt.Sprintf("agent%d", i))
		a.Healthy = o.healthy
		a.Wait = 100 * time.Millisecond
		e.agents = append(e.agents, a)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			_ = a.Run(agentCtx)
		}()
	}
	t.Cleanup(func() {
		stopAgents()
		e.wg.Wait()
		e.stop()
	})
	if o.agents > 0 {
		e.waitFor("agents registered", func() bool {
			for _, a := range e.agents {
				if a.ID() == "" {
					return false
				}
			}
			return true
		})
	}
	return e
}

// stop ends the scheduler and its HTTP server.
func (e *env) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.srv.Close()
	require.NoError(e.t, <-e.done)
	e.cancel = nil
}

// restart stops the scheduler and starts a new one on the same data dir;
// the fake agents reattach to it.
func (e *env) restart(o envOpts) {
	e.stop()
	o.dir = e.dir
	srv, sched, cancel, done := startScheduler(e.t, o)
	e.mu.Lock()
	e.srv, e.sched, e.cancel, e.done = srv, sched, cancel, done
	e.mu.Unlock()
	for _, a := range e.agents {
		a.Reattach(sched)
	}
}

func (e *env) do(method, path string, body any) (int, []byte, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(e.t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, data, resp.Header
}

// doJSON performs a request, checks the status and decodes the body.
func (e *env) doJSON(method, path string, body any, wantCode int, out any) http.Header {
	e.t.Helper()
	code, data, hdr := e.do(method, path, body)
	require.Equal(e.t, wantCode, code, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(data, out), "%s %s: %s", method, path, data)
	}
	return hdr
}

func (e *env) app(id string) marathon.App {
	e.t.Helper()
	var r marathon.AppResponse
	e.doJSON("GET", "/v2/apps"+id, nil, http.StatusOK, &r)
	return r.App
}

// running returns the ids of the app's running tasks, or nil when the app
// does not exist.
func (e *env) running(id string) []string {
	e.t.Helper()
	code, data, _ := e.do("GET", "/v2/apps"+id+"/tasks", nil)
	if code != http.StatusOK {
		return nil
	}
	var r marathon.TasksResponse
	require.NoError(e.t, json.Unmarshal(data, &r))
	var ids []string
	for _, t := range r.Tasks {
		if t.State == marathon.TaskRunning {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

func (e *env) deployments() []marathon.Deployment {
	e.t.Helper()
	var ds []marathon.Deployment
	e.doJSON("GET", "/v2/deployments", nil, http.StatusOK, &ds)
	return ds
}

// settled waits until the app has n running tasks, n tasks in all, and no
// deployment runs.
func (e *env) settled(id string, n int) []string {
	e.t.Helper()
	var ids []string
	e.waitFor(fmt.Sprintf("%s settled at %d", id, n), func() bool {
		ids = e.running(id)
		var all marathon.TasksResponse
		e.doJSON("GET", "/v2/apps"+id+"/tasks", nil, http.StatusOK, &all)
		return len(ids) == n && len(all.Tasks) == n && len(e.deployments()) == 0
	})
	return ids
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

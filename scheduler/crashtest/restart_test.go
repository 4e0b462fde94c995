package crashtest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/server"
)

// lockedBuffer collects logs from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// TestCleanRestart stops a scheduler and an agent cleanly (both at once,
// as the all-in-one does) and starts them again on their data
// directories. Whether the agent leaves its tasks running (they are
// adopted) or kills them on the way out (they are replaced), no task is
// reported lost or failed and the app records no task failure.
func TestCleanRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	for _, killTasks := range []bool{false, true} {
		name := "keep tasks"
		if killTasks {
			name = "kill tasks on stop"
		}
		t.Run(name, func(t *testing.T) {
			schedDir, agentDir := t.TempDir(), t.TempDir()
			owner, err := filepath.Abs(agentDir)
			require.NoError(t, err)
			t.Cleanup(func() { killMarked(owner) })
			var agentLogs lockedBuffer
			start := func() (*api, func()) {
				h, sched, err := server.New(server.Config{
					Scheduler: scheduler.Config{DataDir: schedDir, ReconcileInterval: 20 * time.Millisecond, Leader: "127.0.0.1:8080"},
					Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
				require.NoError(t, err)
				ctx, cancel := context.WithCancel(context.Background())
				srv := httptest.NewUnstartedServer(h)
				srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
				srv.Start()
				ag, err := agent.New(agent.Config{
					SchedulerURL: srv.URL, Hostname: "localhost", Address: "127.0.0.1",
					Resources: agentapi.Resources{CPUs: 4, Mem: 4096, Ports: []agentapi.PortRange{{Begin: 42000, End: 42100}}},
					DataDir:   agentDir, Drivers: map[string]driver.Driver{process.Name: process.New(process.Config{})},
					PollWait: 200 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
					KillTasksOnStop: killTasks, Logger: slog.New(slog.NewTextHandler(&agentLogs, nil)),
					AllowRootTasks: true, // tasks run as the test's user
				})
				require.NoError(t, err)
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); assert.NoError(t, sched.Run(ctx)) }()
				go func() { defer wg.Done(); assert.NoError(t, ag.Run(ctx)) }()
				var once sync.Once
				stop := func() {
					once.Do(func() {
						cancel()
						wg.Wait()
						srv.Close()
					})
				}
				t.Cleanup(stop)
				return newAPI(srv.URL), stop
			}
			running := func(c *api, n int) (marathon.App, []string) {
				t.Helper()
				var app marathon.App
				require.Eventually(t, func() bool {
					var body struct {
						App marathon.App `json:"app"`
					}
					if code, err := c.do(http.MethodGet, "/v2/apps/web", nil, &body); err != nil || code != http.StatusOK {
						return false
					}
					app = body.App
					if app.TasksRunning != n || len(app.Tasks) != n || len(app.Deployments) != 0 {
						return false
					}
					// The agent runs exactly these tasks.
					procs, _ := markedProcs(owner)
					var ids []string
					for _, tk := range app.Tasks {
						if procs[tk.ID] != 1 {
							return false
						}
						ids = append(ids, tk.ID)
					}
					return len(procs) == n
				}, 30*time.Second, 20*time.Millisecond)
				var ids []string
				for _, tk := range app.Tasks {
					ids = append(ids, tk.ID)
				}
				sort.Strings(ids)
				return app, ids
			}

			c, stop := start()
			code, err := c.do(http.MethodPost, "/v2/apps", map[string]any{
				"id": "/web", "cmd": "exec sleep 600", "instances": 2, "cpus": 0.1, "mem": 16}, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, code)
			_, before := running(c, 2)
			stop()

			c, _ = start()
			app, after := running(c, 2)
			assert.Nil(t, app.LastTaskFailure, "no task failed or was lost")
			assert.NotContains(t, agentLogs.String(), "task not recovered")
			if killTasks {
				assert.Empty(t, slices.DeleteFunc(slices.Clone(after), func(id string) bool { return !slices.Contains(before, id) }),
					"killed tasks are replaced")
			} else {
				assert.Equal(t, before, after, "the same tasks are adopted")
			}
		})
	}
}

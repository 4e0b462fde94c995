package crashtest

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/server"
)

// TestAgentKilledDuringStarts kills a real agent process (SIGKILL) at a
// random point after each scale-up and scale-down of an app and restarts
// it on the same data directory. After every settle the app runs exactly
// its instances, each task by exactly one process, no process runs that
// the scheduler does not know (an orphan), and no task was failed (a task
// that was starting when the agent died is adopted or started again).
func TestAgentKilledDuringStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts real processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))

	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{DataDir: t.TempDir(), ReconcileInterval: 20 * time.Millisecond, AgentTimeout: 10 * time.Second,
			Leader: "127.0.0.1:8080"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	t.Cleanup(func() {
		cancel()
		srv.Close()
		<-done
	})

	dataDir := t.TempDir()
	owner, err := filepath.Abs(dataDir)
	require.NoError(t, err)
	t.Cleanup(func() { killMarked(owner) })
	startAgent := func() *role { return startRole(t, "agent", envURL+"="+srv.URL, envDir+"="+dataDir) }
	ag := startAgent()

	c := newAPI(srv.URL)
	code, err := c.do(http.MethodPost, "/v2/apps", map[string]any{
		"id": "/burst", "cmd": "exec sleep 600", "instances": 0, "cpus": 0.01, "mem": 1,
		"taskKillGracePeriodSeconds": 1,
	}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code)

	scale := func(n int) {
		t.Helper()
		code, err := c.do(http.MethodPut, "/v2/apps/burst?force=true", map[string]any{"instances": n}, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}
	crash := func(maxDelay time.Duration) {
		// The crash point: somewhere in the burst of starts or kills.
		time.Sleep(time.Duration(rnd.Int64N(int64(maxDelay))))
		ag.kill9()
		ag = startAgent()
	}
	settled := func(n int) {
		t.Helper()
		var last string
		var failure *marathon.TaskFailure
		ok := assert.Eventually(t, func() bool {
			var body struct {
				App marathon.App `json:"app"`
			}
			if code, err := c.do(http.MethodGet, "/v2/apps/burst", nil, &body); err != nil || code != http.StatusOK {
				last = "app not readable"
				return false
			}
			var ids []string
			for _, tk := range body.App.Tasks {
				if tk.State != marathon.TaskRunning {
					last = "task " + tk.ID + " is " + tk.State
					return false
				}
				ids = append(ids, tk.ID)
			}
			if len(ids) != n || len(body.App.Deployments) > 0 {
				last = "tasks or deployments pending"
				return false
			}
			procs, _ := markedProcs(owner)
			var running []string
			for id, k := range procs {
				if k != 1 {
					last = "duplicate processes for " + id
					return false
				}
				running = append(running, id)
			}
			sort.Strings(ids)
			sort.Strings(running)
			if !slices.Equal(ids, running) {
				last = "processes differ from the scheduler's tasks"
				return false
			}
			failure = body.App.LastTaskFailure
			return true
		}, 60*time.Second, 20*time.Millisecond)
		if !ok {
			t.Fatalf("not settled at %d instances: %s", n, last)
		}
		require.Nil(t, failure, "no task failed")
	}

	const trials = 20
	for i := range trials {
		n := 4 + rnd.IntN(9)
		scale(n)
		crash(600 * time.Millisecond)
		settled(n)
		scale(0)
		if i%2 == 1 {
			crash(300 * time.Millisecond)
		}
		settled(0)
	}
}

package crashtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// outcome is what the client knows of one app after its last request.
type outcome struct {
	exists bool   // the last acknowledged write created/updated (true) or deleted it
	label  string // its GEN label after the last acknowledged write
	sure   bool   // false when the last request got no answer (its effect is unknown)
}

// TestSchedulerKilledDuringWrites kills a real scheduler process
// (SIGKILL) in the middle of a storm of concurrent creates, updates and
// deletes, restarts it on the same data directory, and checks that every
// acknowledged write survived: acknowledged creates and updates are there
// with their last acknowledged content, acknowledged deletes are gone. A
// real agent runs the apps' tasks (every fifth app has one instance):
// once settled, each app runs its instances, each task by one process,
// and no process runs that the scheduler does not know.
func TestSchedulerKilledDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts real processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 2))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	c := newAPI("http://" + addr)
	start := func() *role {
		r := startRole(t, "scheduler", envDir+"="+dir, envAddr+"="+addr)
		require.Eventually(t, func() bool {
			code, err := c.do(http.MethodGet, "/ping", nil, nil)
			return err == nil && code == http.StatusOK
		}, 30*time.Second, 10*time.Millisecond, "scheduler did not come up")
		return r
	}
	sched := start()
	agentDir := t.TempDir()
	owner, err := filepath.Abs(agentDir)
	require.NoError(t, err)
	t.Cleanup(func() { killMarked(owner) })
	startRole(t, "agent", envURL+"=http://"+addr, envDir+"="+agentDir)

	var mu sync.Mutex
	apps := map[string]outcome{}
	acked := 0
	const trials, workers = 10, 6
	for trial := range trials {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wr := rand.New(rand.NewPCG(seed, uint64(trial*workers+w+10)))
				var mine []string
				for n := 0; ; n++ {
					var id, method, path, gen string
					var body any
					switch op := wr.IntN(4); {
					case op < 2 || len(mine) == 0:
						id = fmt.Sprintf("/storm/t%d-w%d-%d", trial, w, n)
						gen = strconv.Itoa(n)
						method, path = http.MethodPost, "/v2/apps"
						body = map[string]any{"id": id, "cmd": "exec sleep 600", "instances": min(n%5, 1) ^ 1, "cpus": 0.01, "mem": 1,
							"taskKillGracePeriodSeconds": 1, "labels": map[string]string{"GEN": gen}}
						mine = append(mine, id)
					case op == 2:
						id = mine[wr.IntN(len(mine))]
						gen = strconv.Itoa(n)
						method, path = http.MethodPut, "/v2/apps"+id+"?force=true"
						body = map[string]any{"labels": map[string]string{"GEN": gen}}
					default:
						i := wr.IntN(len(mine))
						id = mine[i]
						mine = append(mine[:i], mine[i+1:]...)
						method, path = http.MethodDelete, "/v2/apps"+id+"?force=true"
					}
					code, err := c.do(method, path, body, nil)
					mu.Lock()
					prev := apps[id]
					switch {
					case err != nil:
						// No answer: the write may or may not have happened.
						apps[id] = outcome{exists: prev.exists, label: prev.label}
					case code < 300:
						acked++
						apps[id] = outcome{exists: method != http.MethodDelete, label: gen, sure: true}
					case code >= 500:
						// A 5xx means not applied: the previous state holds.
					default:
						t.Errorf("%s %s: status %d", method, path, code)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(100+rnd.IntN(500)) * time.Millisecond) // the crash point
		sched.kill9()
		wg.Wait()
		sched = start()

		var got []marathon.App
		var body struct {
			Apps []marathon.App `json:"apps"`
		}
		code, err := c.do(http.MethodGet, "/v2/apps", nil, &body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		got = body.Apps
		have := map[string]string{}
		for _, a := range got {
			have[a.ID] = a.Labels["GEN"]
		}
		mu.Lock()
		for id, o := range apps {
			if !o.sure {
				continue
			}
			label, ok := have[id]
			if !assert.Equal(t, o.exists, ok, "trial %d: app %s exists", trial, id) {
				continue
			}
			if o.exists {
				assert.Equal(t, o.label, label, "trial %d: app %s has its last acknowledged update", trial, id)
			}
		}
		mu.Unlock()
		tasksSettled(t, c, owner)
	}
	t.Logf("%d acknowledged writes checked across %d scheduler kills", acked, trials)
	require.Positive(t, acked)
}

// tasksSettled waits until every app runs exactly its instances, one
// marked process per task, and no marked process is unknown to the
// scheduler (no orphan, no duplicate).
func tasksSettled(t *testing.T, c *api, owner string) {
	t.Helper()
	var last string
	ok := assert.Eventually(t, func() bool {
		var body struct {
			Apps []marathon.App `json:"apps"`
		}
		if code, err := c.do(http.MethodGet, "/v2/apps?embed=apps.tasks", nil, &body); err != nil || code != http.StatusOK {
			last = "apps not readable"
			return false
		}
		want := map[string]bool{}
		for _, a := range body.Apps {
			if len(a.Tasks) != a.Instances || a.TasksRunning != a.Instances {
				var states []string
				for _, tk := range a.Tasks {
					states = append(states, tk.ID+"="+tk.State)
				}
				procs, _ := markedProcs(owner)
				last = fmt.Sprintf("%s runs %d of %d: %v; processes %v", a.ID, a.TasksRunning, a.Instances, states, procs)
				return false
			}
			for _, tk := range a.Tasks {
				want[tk.ID] = true
			}
		}
		procs, _ := markedProcs(owner)
		for id, n := range procs {
			if n != 1 || !want[id] {
				last = fmt.Sprintf("task %s has %d processes, known %v", id, n, want[id])
				return false
			}
		}
		if len(procs) != len(want) {
			last = fmt.Sprintf("%d processes for %d tasks", len(procs), len(want))
			return false
		}
		return true
	}, 60*time.Second, 50*time.Millisecond)
	if !ok {
		t.Fatalf("tasks not settled: %s", last)
	}
}

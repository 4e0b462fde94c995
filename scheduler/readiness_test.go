package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/state"
)

// taskServers stands in for the tasks' HTTP endpoints: one httptest server
// per host port the fake agent offers. Each answers 503 to its first
// readiness probes and 200 from probe number readyAfter on.
type taskServers struct {
	readyAfter int

	mu      sync.Mutex
	probes  map[int]int       // port -> probes answered
	readyAt map[int]time.Time // port -> first 200
}

func newTaskServers(t *testing.T, n, readyAfter int) (*taskServers, []agentapi.PortRange) {
	t.Helper()
	ts := &taskServers{readyAfter: readyAfter, probes: map[int]int{}, readyAt: map[int]time.Time{}}
	var ranges []agentapi.PortRange
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/ready" {
				http.NotFound(w, r)
				return
			}
			ts.mu.Lock()
			ts.probes[port]++
			ready := ts.probes[port] >= ts.readyAfter
			if ready && ts.readyAt[port].IsZero() {
				ts.readyAt[port] = time.Now()
			}
			ts.mu.Unlock()
			w.Header().Set("Content-Type", "text/plain")
			if !ready {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprint(w, "warming up")
				return
			}
			_, _ = fmt.Fprint(w, "ready")
		}))
		_ = srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		ranges = append(ranges, agentapi.PortRange{Begin: port, End: port})
	}
	return ts, ranges
}

// readyCount counts the ports that answered ready. Only tasks with a
// readiness check are probed, and a new task may reuse the port of a
// killed old one, so this is the number of new tasks that answered ready.
func (ts *taskServers) readyCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.readyAt)
}

func (ts *taskServers) probeCount(port int) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.probes[port]
}

// runScheduler runs s and a fake agent offering ports until the test ends.
func runScheduler(t *testing.T, s *Scheduler, ports []agentapi.PortRange) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	agent := schedulertest.NewFakeAgent(s, "127.0.0.1")
	agent.Resources.Ports = ports
	agent.Wait = 50 * time.Millisecond
	wg.Go(func() { assert.NoError(t, s.Run(ctx)) })
	wg.Go(func() { _ = agent.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func TestRollingRestartWaitsForReadiness(t *testing.T) {
	const readyAfter = 2 // probes until a new task answers ready
	tests := []struct {
		name     string
		strategy marathon.UpgradeStrategy
		peakNew  int // new tasks launched before any old one may die
	}{
		{"side by side 1,1", marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}, 2},
		{"one at a time 1,0", marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 0}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			servers, ports := newTaskServers(t, 4, readyAfter)
			s, err := New(Config{Leader: "h:8080", Logger: quiet(), ReconcileInterval: 20 * time.Millisecond})
			require.NoError(t, err)
			events, unsubscribe := s.Subscribe("test")
			t.Cleanup(unsubscribe)
			runScheduler(t, s, ports)
			ctx := t.Context()

			v1 := hostApp("/r", 0)
			v1.PortDefinitions[0].Name = "http-api"
			v1.Instances, v1.CPUs, v1.Mem, v1.BackoffFactor = 2, 0.1, 16, 1
			v1.UpgradeStrategy = &tc.strategy
			v1.KillSelection = "YOUNGEST_FIRST"
			_, err = s.CreateApp(ctx, v1, false, "", "")
			require.NoError(t, err)
			old := waitSettled(t, s, "/r", 2)
			var oldIDs []string
			var oldPorts []int
			for _, task := range old {
				oldIDs = append(oldIDs, task.ID)
				oldPorts = append(oldPorts, task.Ports...)
			}
			for _, p := range oldPorts {
				assert.Zero(t, servers.probeCount(p), "v1 has no readiness check: never probed")
			}

			// Watch kills of old tasks: each must follow a new task's
			// first ready answer.
			type kill struct{ readyNew, killedOld int }
			kills := make(chan kill, 8)
			watchCtx, stopWatch := context.WithCancel(ctx)
			var watch sync.WaitGroup
			watch.Go(func() {
				killed := 0
				for {
					select {
					case <-watchCtx.Done():
						return
					case ev, ok := <-events:
						if !ok {
							return
						}
						if ev.Type != marathon.EventStatusUpdate {
							continue
						}
						var su marathon.StatusUpdateEvent
						if json.Unmarshal(ev.Data, &su) != nil || su.TaskStatus != marathon.TaskKilled || !slices.Contains(oldIDs, su.TaskID) {
							continue
						}
						killed++
						kills <- kill{readyNew: servers.readyCount(), killedOld: killed}
					}
				}
			})
			t.Cleanup(func() { stopWatch(); watch.Wait() })

			v2 := v1
			v2.ReadinessChecks = []marathon.ReadinessCheck{{Name: "readinessCheck", Protocol: "HTTP", Path: "/ready", PortName: "http-api",
				IntervalSeconds: 2, TimeoutSeconds: 1, HTTPStatusCodesForReady: []int{200}, PreserveLastResponse: true}}
			_, _, err = s.UpdateApp(ctx, "/r", func(*marathon.App) (marathon.App, error) { return v2, nil }, false, "", "")
			require.NoError(t, err)

			// The new tasks run and answered 503 once: they are reported
			// not ready, and both old tasks still run.
			var results []marathon.ReadinessCheckResult
			require.Eventually(t, func() bool {
				results, _ = s.ReadinessResults(ctx, "/r")
				if len(results) != tc.peakNew {
					return false
				}
				for _, r := range results {
					if r.LastResponse == nil {
						return false
					}
				}
				return true
			}, 5*time.Second, 10*time.Millisecond, "first probes of the new tasks")
			for _, r := range results {
				assert.Equal(t, "readinessCheck", r.Name)
				assert.False(t, r.Ready)
				assert.NotContains(t, oldIDs, r.TaskID)
				assert.Equal(t, &marathon.ReadinessCheckResponse{Status: 503, ContentType: "text/plain", Body: "warming up"}, r.LastResponse)
			}
			running, err := s.ListTasks(ctx, "/r")
			require.NoError(t, err)
			for _, id := range oldIDs {
				assert.True(t, slices.ContainsFunc(running, func(task marathon.Task) bool { return task.ID == id }), "old task %s still runs", id)
			}

			// The restart completes: every old kill came after as many
			// new ready answers.
			final := waitSettled(t, s, "/r", 2)
			for _, task := range final {
				assert.NotContains(t, oldIDs, task.ID)
				require.Len(t, task.Ports, 1)
				assert.GreaterOrEqual(t, servers.probeCount(task.Ports[0]), readyAfter)
			}
			for i := range 2 {
				select {
				case k := <-kills:
					assert.GreaterOrEqual(t, k.readyNew, k.killedOld, "old task killed before a new one was ready (kill %d)", i+1)
				case <-time.After(5 * time.Second):
					t.Fatalf("kill %d of an old task not seen", i+1)
				}
			}
			require.Eventually(t, func() bool {
				r, _ := s.ReadinessResults(ctx, "/r")
				return len(r) == 0
			}, 2*time.Second, 10*time.Millisecond, "results are dropped when the deployment ends")
		})
	}
}

// waitSettled waits until app has no deployment and exactly n running
// tasks, and returns them.
func waitSettled(t *testing.T, s *Scheduler, appID string, n int) []marathon.Task {
	t.Helper()
	var tasks []marathon.Task
	require.Eventually(t, func() bool {
		ds, _ := s.ListDeployments(context.Background())
		if len(ds) > 0 {
			return false
		}
		tasks, _ = s.ListTasks(context.Background(), appID)
		if len(tasks) != n {
			return false
		}
		for _, task := range tasks {
			if task.State != marathon.TaskRunning {
				return false
			}
		}
		return true
	}, 15*time.Second, 10*time.Millisecond, "app %s settled at %d tasks", appID, n)
	return tasks
}

func TestReadinessURL(t *testing.T) {
	s := newTestScheduler(t)
	s.store.PutAgent(&state.Agent{ID: "ag", Hostname: "node1", Address: "10.0.0.7"})
	hostPort := func(p int) *int { return &p }
	rc := marathon.ReadinessCheck{Protocol: "HTTPS", Path: "/ready", PortName: "web"}
	hostDef := &marathon.App{PortDefinitions: []marathon.PortDefinition{{Name: "admin"}, {Name: "web"}}}
	bridgeDef := &marathon.App{Networks: []marathon.Network{{Mode: "container/bridge"}}, Container: &marathon.Container{
		PortMappings: []marathon.PortMapping{{Name: "web", ContainerPort: 8080, HostPort: hostPort(0)}}}}
	overlayDef := &marathon.App{Networks: []marathon.Network{{Mode: "container", Name: "overlay"}}, Container: &marathon.Container{
		PortMappings: []marathon.PortMapping{{Name: "web", ContainerPort: 8080}}}}
	tests := []struct {
		name    string
		def     *marathon.App
		task    state.Task
		want    string
		wantErr string
	}{
		{"host mode uses the agent address", hostDef, state.Task{AgentID: "ag", Host: "node1", HostPorts: []int{31001, 31002}},
			"https://10.0.0.7:31002/ready", ""},
		{"unknown agent falls back to the host", hostDef, state.Task{AgentID: "gone", Host: "node9", HostPorts: []int{31001, 31002}},
			"https://node9:31002/ready", ""},
		{"bridge uses the host port", bridgeDef, state.Task{AgentID: "ag", HostPorts: []int{31005}},
			"https://10.0.0.7:31005/ready", ""},
		{"container network uses the task IP", overlayDef, state.Task{AgentID: "ag", HostPorts: []int{0},
			IPAddresses: []marathon.TaskIPAddress{{IPAddress: "172.18.0.4"}}}, "https://172.18.0.4:8080/ready", ""},
		{"container network before an IP is known", overlayDef, state.Task{AgentID: "ag", HostPorts: []int{0}}, "", "no address"},
		{"no such port", &marathon.App{}, state.Task{}, "", "no port named"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.readinessURL(&tc.task, tc.def, rc)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestProbeOnce(t *testing.T) {
	s := newTestScheduler(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprint(w, `{"ok":true}`)
		}
	}))
	t.Cleanup(tlsSrv.Close)
	tests := []struct {
		name      string
		path      string
		codes     []int
		timeout   time.Duration
		wantReady bool
		wantCode  int
	}{
		{"https without verification", "/", []int{200}, time.Second, true, 200},
		{"status not listed", "/", []int{204}, time.Second, false, 200},
		{"redirect is an answer", "/moved", []int{302}, time.Second, true, 302},
		{"timeout", "/slow", []int{200}, 50 * time.Millisecond, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready, resp, err := s.probeOnce(t.Context(), tlsSrv.URL+tc.path, tc.timeout, tc.codes)
			assert.Equal(t, tc.wantReady, ready)
			if tc.wantCode == 0 {
				assert.Error(t, err)
				assert.Nil(t, resp)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantCode, resp.Status)
		})
	}
}

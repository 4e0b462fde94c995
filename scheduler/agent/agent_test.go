package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// fakeScheduler is a minimal in-memory agentapi.Scheduler for one agent.
type fakeScheduler struct {
	mu        sync.Mutex
	changed   chan struct{}
	index     uint64
	tasks     []agentapi.Assignment
	unknown   []string
	polls     int
	known     map[string]bool
	tokens    map[string]string // agent id -> token given at registration
	registers []agentapi.RegisterRequest
	statuses  []agentapi.TaskStatus
}

func newFakeScheduler(t *testing.T) (*fakeScheduler, string) {
	f := &fakeScheduler{changed: make(chan struct{}), known: map[string]bool{}, tokens: map[string]string{}}
	srv := httptest.NewServer(agentapi.NewHandler(f, agentapi.HandlerConfig{}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeScheduler) Register(_ context.Context, req agentapi.RegisterRequest) (agentapi.RegisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.registers = append(f.registers, req)
	id := req.AgentID
	if id == "" {
		id = "agent-" + strconv.Itoa(len(f.registers))
	}
	if tok, ok := f.tokens[id]; ok && f.known[id] && tok != req.AgentToken {
		return agentapi.RegisterResponse{}, agentapi.ErrForbidden
	}
	f.known[id] = true
	f.tokens[id] = "tok-" + id
	return agentapi.RegisterResponse{AgentID: id, AgentToken: f.tokens[id], HeartbeatTimeout: agentapi.Duration(time.Second)}, nil
}

// AuthenticateAgent wants the token given at registration.
func (f *fakeScheduler) AuthenticateAgent(_ context.Context, id, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known[id] {
		return agentapi.ErrUnknownAgent
	}
	if f.tokens[id] != token {
		return agentapi.ErrForbidden
	}
	return nil
}

func (f *fakeScheduler) Assignments(ctx context.Context, agentID string, after uint64, wait time.Duration) (agentapi.AssignmentList, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		f.mu.Lock()
		if !f.known[agentID] {
			f.mu.Unlock()
			return agentapi.AssignmentList{}, agentapi.ErrUnknownAgent
		}
		list := agentapi.AssignmentList{Index: f.index, Tasks: slices.Clone(f.tasks), Unknown: slices.Clone(f.unknown)}
		f.polls++
		ch := f.changed
		f.mu.Unlock()
		if list.Index > after {
			return list, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return list, nil
		case <-ctx.Done():
			return agentapi.AssignmentList{}, ctx.Err()
		}
	}
}

func (f *fakeScheduler) ReportStatus(_ context.Context, r agentapi.StatusReport) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known[r.AgentID] {
		return agentapi.ErrUnknownAgent
	}
	f.statuses = append(f.statuses, r.Statuses...)
	return nil
}

func (f *fakeScheduler) assign(tasks ...agentapi.Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.tasks = tasks
	close(f.changed)
	f.changed = make(chan struct{})
}

// forgetTasks is a scheduler that lost its state: it assigns nothing and
// lists ids as unknown.
func (f *fakeScheduler) forgetTasks(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.tasks, f.unknown = nil, ids
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeScheduler) pollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls
}

func (f *fakeScheduler) forgetAgents() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = map[string]bool{}
}

// states returns the states reported for a task, in order.
func (f *fakeScheduler) states(taskID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.statuses {
		if s.TaskID == taskID {
			out = append(out, s.State)
		}
	}
	return out
}

// last returns the last status reported for a task in state ("" = any).
func (f *fakeScheduler) last(taskID, state string) (agentapi.TaskStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.statuses) - 1; i >= 0; i-- {
		s := f.statuses[i]
		if s.TaskID == taskID && (state == "" || s.State == state) {
			return s, true
		}
	}
	return agentapi.TaskStatus{}, false
}

func (f *fakeScheduler) waitState(t *testing.T, taskID, state string) agentapi.TaskStatus {
	t.Helper()
	var st agentapi.TaskStatus
	require.Eventually(t, func() bool {
		var ok bool
		st, ok = f.last(taskID, state)
		return ok
	}, 15*time.Second, 20*time.Millisecond, "task %s never reported %s; got %v", taskID, state, f.states(taskID))
	return st
}

func (f *fakeScheduler) registrations() []agentapi.RegisterRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.registers)
}

// runAgent runs an agent until the returned stop function is called (or
// the test ends) and returns it with its process driver.
func runAgent(t *testing.T, url, dataDir string, opts ...func(*agent.Config)) (*agent.Agent, *process.Driver, func()) {
	t.Helper()
	pd := process.New(process.Config{PollInterval: 20 * time.Millisecond})
	cfg := agent.Config{
		SchedulerURL: url,
		Hostname:     "localhost",
		Address:      "127.0.0.1",
		Resources:    agentapi.Resources{CPUs: 2, Mem: 1024, Ports: []agentapi.PortRange{{Begin: 31000, End: 32000}}},
		Attributes:   map[string]string{"rack": "r1"},
		DataDir:      dataDir,
		Drivers:      map[string]driver.Driver{"process": pd},
		PollWait:     200 * time.Millisecond,
		RetryMin:     20 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
		// Tests run as root; tasks run as the agent's user.
		AllowRootTasks: true,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	a, err := agent.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Error("agent did not stop")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		// Kill tasks a test left behind (the agent leaves them running).
		hs, _ := pd.ListTasks(context.Background())
		for _, h := range hs {
			_ = pd.DestroyTask(context.Background(), h.TaskID, true)
		}
	})
	return a, pd, stop
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func intp(i int) *int { return &i }

func TestTaskLifecycleWithPortAndHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	f, url := newFakeScheduler(t)
	dataDir := t.TempDir()
	runAgent(t, url, dataDir)
	port := freePort(t)
	web := agentapi.Assignment{
		TaskID: "web.1", AppID: "/web", Version: "v1",
		Cmd:       `exec python3 -m http.server "$PORT0" --bind 127.0.0.1`,
		HostPorts: []int{port}, ServicePorts: []int{10000}, PortNames: []string{"http"},
		KillGracePeriod: agentapi.Duration(2 * time.Second),
		HealthChecks: []marathon.HealthCheck{{
			Protocol: "COMMAND", Command: &marathon.CommandCheck{Value: `test -f "$MESOS_SANDBOX/healthy"`},
			IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 3,
		}},
	}
	f.assign(web)

	running := f.waitState(t, "web.1", marathon.TaskRunning)
	assert.Equal(t, []int{port}, running.HostPorts)
	assert.NotEmpty(t, running.StartedAt)
	assert.Equal(t, []marathon.TaskIPAddress{{IPAddress: "127.0.0.1", Protocol: "IPv4"}}, running.IPAddresses)
	assert.Equal(t, marathon.TaskStaging, f.states("web.1")[0])

	// The task listens on $PORT0.
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second, 50*time.Millisecond, "task never answered on PORT0")

	// The health check fails (no marker file) and the failure is reported.
	require.Eventually(t, func() bool {
		st, ok := f.last("web.1", marathon.TaskRunning)
		return ok && len(st.Health) == 1 && !st.Health[0].Alive && st.Health[0].ConsecutiveFailures >= 1
	}, 10*time.Second, 20*time.Millisecond)
	// Then it passes: alive flips and is reported.
	sandbox := filepath.Join(dataDir, "sandbox", "web.1")
	require.NoError(t, os.WriteFile(filepath.Join(sandbox, "healthy"), nil, 0o644))
	require.Eventually(t, func() bool {
		st, ok := f.last("web.1", marathon.TaskRunning)
		return ok && len(st.Health) == 1 && st.Health[0].Alive
	}, 10*time.Second, 20*time.Millisecond)
	st, _ := f.last("web.1", marathon.TaskRunning)
	assert.Equal(t, "web.1", st.Health[0].TaskID)
	assert.Equal(t, "web.marathon-1", st.Health[0].InstanceID)

	// Unassigned: killed, KILLING before KILLED, and the port is closed.
	f.assign()
	f.waitState(t, "web.1", marathon.TaskKilled)
	states := f.states("web.1")
	assert.Equal(t, []string{marathon.TaskKilling, marathon.TaskKilled}, states[len(states)-2:])
	_, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	assert.Error(t, err, "task still listening after kill")
}

func TestExitsAreTerminalAndNotRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	f, url := newFakeScheduler(t)
	dataDir := t.TempDir()
	runAgent(t, url, dataDir)
	f.assign(
		agentapi.Assignment{TaskID: "fail.1", AppID: "/fail", Cmd: "echo boom >&2; exit 3"},
		agentapi.Assignment{TaskID: "ok.1", AppID: "/ok", Cmd: "true"},
		agentapi.Assignment{TaskID: "bad.1", AppID: "/bad"}, // nothing to run
		agentapi.Assignment{TaskID: "dock.1", AppID: "/dock", Container: &marathon.Container{Docker: &marathon.Docker{Image: "x"}}},
	)
	failed := f.waitState(t, "fail.1", marathon.TaskFailed)
	assert.Contains(t, failed.Message, "Command exited with status 3")
	assert.Contains(t, failed.Message, "boom")
	f.waitState(t, "ok.1", marathon.TaskFinished)
	bad := f.waitState(t, "bad.1", marathon.TaskFailed)
	assert.Contains(t, bad.Message, "invalid task")
	dock := f.waitState(t, "dock.1", marathon.TaskFailed)
	assert.Contains(t, dock.Message, `driver "docker" is not enabled`)

	// The scheduler still lists the tasks for a while: they must not be
	// started again.
	f.assign(f.tasks...)
	time.Sleep(500 * time.Millisecond)
	for _, id := range []string{"fail.1", "ok.1"} {
		assert.Equal(t, 1, count(f.states(id), marathon.TaskStaging), "task %s restarted: %v", id, f.states(id))
	}
	// Final statuses were accepted: their records are gone.
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir(filepath.Join(dataDir, "tasks"))
		return len(ents) == 0
	}, 5*time.Second, 20*time.Millisecond)
}

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestRestartReadoptsRunningTask(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	f, url := newFakeScheduler(t)
	dataDir := t.TempDir()
	a1, pd1, stop1 := runAgent(t, url, dataDir)
	f.assign(agentapi.Assignment{TaskID: "long.1", AppID: "/long", Cmd: "sleep 300", HostPorts: []int{31999}})
	f.waitState(t, "long.1", marathon.TaskRunning)
	pid, err := pd1.PID("long.1")
	require.NoError(t, err)
	firstID := a1.ID()
	require.NotEmpty(t, firstID)

	// Agent shutdown leaves the task running.
	stop1()
	require.NoError(t, syscall.Kill(pid, 0), "task died with the agent")
	assert.NotContains(t, f.states("long.1"), marathon.TaskKilling)

	// A new agent on the same data dir re-adopts it and says so at
	// registration, under the same agent id.
	regsBefore := len(f.registrations())
	a2, pd2, _ := runAgent(t, url, dataDir)
	require.Eventually(t, func() bool { return len(f.registrations()) > regsBefore }, 10*time.Second, 20*time.Millisecond)
	reg := f.registrations()[regsBefore]
	assert.Equal(t, firstID, reg.AgentID)
	require.Len(t, reg.Tasks, 1)
	assert.Equal(t, "long.1", reg.Tasks[0].TaskID)
	assert.Equal(t, marathon.TaskRunning, reg.Tasks[0].State)
	assert.Equal(t, []int{31999}, reg.Tasks[0].HostPorts)
	pid2, err := pd2.PID("long.1")
	require.NoError(t, err)
	assert.Equal(t, pid, pid2)
	assert.Equal(t, firstID, a2.ID())

	// It is not started twice, and can still be killed.
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, 1, count(f.states("long.1"), marathon.TaskStaging))
	f.assign()
	f.waitState(t, "long.1", marathon.TaskKilled)
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 5*time.Second, 20*time.Millisecond)
}

func TestUnrecoverableTaskReportedFailed(t *testing.T) {
	f, url := newFakeScheduler(t)
	dataDir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dataDir, "tasks"), 0o755))
	rec := map[string]any{
		"assignment": agentapi.Assignment{TaskID: "gone.1", AppID: "/gone", Cmd: "sleep 1"},
		"driver":     "process",
		"handle":     driver.TaskHandle{TaskID: "gone.1", Driver: "process", State: json.RawMessage(`{"pid":999999999,"startTicks":1}`)},
	}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "tasks", "gone.1.json"), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "tasks", "junk.json"), []byte("{"), 0o644))

	runAgent(t, url, dataDir)
	st := f.waitState(t, "gone.1", marathon.TaskFailed)
	assert.Contains(t, st.Message, "lost while the agent was down")
	regs := f.registrations()
	require.NotEmpty(t, regs)
	// Nothing runs; the undelivered final status comes with the
	// registration, so the scheduler learns how the task ended.
	for _, st := range regs[0].Tasks {
		assert.Equal(t, "gone.1", st.TaskID)
		assert.Equal(t, marathon.TaskFailed, st.State)
	}
}

func TestReRegistersWhenForgotten(t *testing.T) {
	f, url := newFakeScheduler(t)
	a, _, _ := runAgent(t, url, t.TempDir())
	require.Eventually(t, func() bool { return a.ID() != "" }, 5*time.Second, 10*time.Millisecond)
	id := a.ID()
	f.forgetAgents()
	require.Eventually(t, func() bool { return len(f.registrations()) >= 2 }, 5*time.Second, 10*time.Millisecond)
	regs := f.registrations()
	assert.Equal(t, id, regs[1].AgentID)
	assert.Equal(t, "localhost", regs[1].Hostname)
	assert.Equal(t, map[string]string{"rack": "r1"}, regs[1].Attributes)
}

func TestSchedulerDownThenUp(t *testing.T) {
	// The scheduler answers 503 at first: the agent keeps retrying.
	f := &fakeScheduler{changed: make(chan struct{}), known: map[string]bool{}, tokens: map[string]string{}}
	h := agentapi.NewHandler(f, agentapi.HandlerConfig{})
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"message":"starting"}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	runAgent(t, srv.URL, t.TempDir())
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, f.registrations())
	ready.Store(true)
	require.Eventually(t, func() bool { return len(f.registrations()) >= 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestNewValidates(t *testing.T) {
	pd := process.New(process.Config{})
	tests := []struct {
		name string
		cfg  agent.Config
		msg  string
	}{
		{"no url", agent.Config{DataDir: t.TempDir(), Drivers: map[string]driver.Driver{"process": pd}}, "no scheduler URL"},
		{"no data dir", agent.Config{SchedulerURL: "http://x", Drivers: map[string]driver.Driver{"process": pd}}, "no data dir"},
		{"no drivers", agent.Config{SchedulerURL: "http://x", DataDir: t.TempDir()}, "no task drivers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := agent.New(tt.cfg)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
	a, err := agent.New(agent.Config{SchedulerURL: "http://x", DataDir: t.TempDir(), Drivers: map[string]driver.Driver{"process": pd}})
	require.NoError(t, err)
	assert.Empty(t, a.ID())
}

// TestShutdownDelay: a task the scheduler kills is reported TASK_KILLING at
// once but keeps running for the shutdown delay (so load balancers drop it
// before it is signalled); without a delay it is signalled at once.
func TestShutdownDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dur := func(d time.Duration) *agentapi.Duration { v := agentapi.Duration(d); return &v }
	tests := []struct {
		name     string
		agentDef time.Duration      // the agent's --shutdown-delay
		perApp   *agentapi.Duration // the assignment's (SWITCHYARD_SHUTDOWN_DELAY)
		want     time.Duration
	}{
		{name: "no delay"},
		{name: "agent delay", agentDef: 1500 * time.Millisecond, want: 1500 * time.Millisecond},
		{name: "per-app delay", perApp: dur(1500 * time.Millisecond), want: 1500 * time.Millisecond},
		{name: "per-app zero overrides the agent", agentDef: time.Minute, perApp: dur(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := newFakeScheduler(t)
			_, pd, _ := runAgent(t, url, t.TempDir(), func(c *agent.Config) { c.ShutdownDelay = tt.agentDef })
			f.assign(agentapi.Assignment{TaskID: "web.1", AppID: "/web", Cmd: "exec sleep 60", ShutdownDelay: tt.perApp})
			f.waitState(t, "web.1", marathon.TaskRunning)

			f.assign() // the scheduler no longer wants it
			f.waitState(t, "web.1", marathon.TaskKilling)
			killingSeen := time.Now()
			if tt.want > 0 {
				info, err := pd.InspectTask(context.Background(), "web.1")
				require.NoError(t, err)
				assert.True(t, info.Running, "task still runs during the shutdown delay")
			}
			f.waitState(t, "web.1", marathon.TaskKilled)
			took := time.Since(killingSeen)
			if tt.want > 0 {
				assert.GreaterOrEqual(t, took, tt.want/2, "signalled only after the shutdown delay")
			} else {
				assert.Less(t, took, 10*time.Second, "signalled at once")
			}
		})
	}
}

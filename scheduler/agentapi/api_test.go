package agentapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// fakeScheduler is an in-memory agentapi.Scheduler with a blocking
// assignments query.
type fakeScheduler struct {
	mu       sync.Mutex
	changed  chan struct{}
	index    uint64
	tasks    []agentapi.Assignment
	agents   map[string]agentapi.RegisterRequest
	tokens   map[string]string // agent id -> token given at registration
	reports  []agentapi.StatusReport
	lastWait time.Duration
}

func newFake() *fakeScheduler {
	return &fakeScheduler{changed: make(chan struct{}), agents: map[string]agentapi.RegisterRequest{}, tokens: map[string]string{}}
}

func (f *fakeScheduler) Register(_ context.Context, req agentapi.RegisterRequest) (agentapi.RegisterResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := req.AgentID
	if id == "" {
		id = "agent-1"
	}
	if tok, ok := f.tokens[id]; ok && req.AgentID != "" && tok != req.AgentToken {
		return agentapi.RegisterResponse{}, agentapi.ErrForbidden
	}
	f.tokens[id] = "tok-" + id
	req.AgentToken = ""
	f.agents[id] = req
	return agentapi.RegisterResponse{AgentID: id, AgentToken: f.tokens[id], HeartbeatTimeout: agentapi.Duration(15 * time.Second)}, nil
}

// AuthenticateAgent refuses a wrong token for an agent that has one;
// agents the tests put in f.agents directly have none.
func (f *fakeScheduler) AuthenticateAgent(_ context.Context, id, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok, ok := f.tokens[id]; ok && tok != token {
		return agentapi.ErrForbidden
	}
	return nil
}

func (f *fakeScheduler) Assignments(ctx context.Context, agentID string, after uint64, wait time.Duration) (agentapi.AssignmentList, error) {
	f.mu.Lock()
	f.lastWait = wait
	if _, ok := f.agents[agentID]; !ok {
		f.mu.Unlock()
		return agentapi.AssignmentList{}, agentapi.ErrUnknownAgent
	}
	f.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		if f.index > after {
			l := agentapi.AssignmentList{Index: f.index, Tasks: f.tasks}
			f.mu.Unlock()
			return l, nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			f.mu.Lock()
			defer f.mu.Unlock()
			return agentapi.AssignmentList{Index: f.index, Tasks: f.tasks}, nil
		case <-ctx.Done():
			return agentapi.AssignmentList{}, ctx.Err()
		}
	}
}

func (f *fakeScheduler) ReportStatus(_ context.Context, r agentapi.StatusReport) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.AgentID == "fail" {
		return errors.New("store is down")
	}
	f.reports = append(f.reports, r)
	return nil
}

func (f *fakeScheduler) set(tasks []agentapi.Assignment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	f.tasks = tasks
	close(f.changed)
	f.changed = make(chan struct{})
}

func setup(t *testing.T) (*fakeScheduler, *agentapi.Client, string) {
	t.Helper()
	f := newFake()
	srv := httptest.NewServer(agentapi.NewHandler(f, agentapi.HandlerConfig{Logger: quietLog()}))
	t.Cleanup(srv.Close)
	return f, agentapi.NewClient(srv.URL, srv.Client()), srv.URL
}

func TestRegisterRoundTrip(t *testing.T) {
	f, c, _ := setup(t)
	req := agentapi.RegisterRequest{
		Hostname:   "node1",
		Address:    "10.0.0.1",
		Resources:  agentapi.Resources{CPUs: 4, Mem: 4096, Disk: 1000, Ports: []agentapi.PortRange{{Begin: 31000, End: 32000}}},
		Attributes: map[string]string{"rack": "r1"},
		Tasks:      []agentapi.TaskStatus{{TaskID: "web.1", AppID: "/web", State: marathon.TaskRunning, HostPorts: []int{31000}}},
	}
	resp, err := c.Register(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, agentapi.RegisterResponse{AgentID: "agent-1", AgentToken: "tok-agent-1", HeartbeatTimeout: agentapi.Duration(15 * time.Second)}, resp)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, req, f.agents["agent-1"])
}

func TestAssignmentsLongPoll(t *testing.T) {
	f, c, _ := setup(t)
	_, err := c.Register(t.Context(), agentapi.RegisterRequest{Hostname: "n"})
	require.NoError(t, err)

	delay := agentapi.Duration(1500 * time.Millisecond)
	want := []agentapi.Assignment{
		{TaskID: "web.1", AppID: "/web", Cmd: "sleep 100", HostPorts: []int{31001}, KillGracePeriod: agentapi.Duration(3 * time.Second)},
		{TaskID: "web.2", AppID: "/web", Cmd: "sleep 100", HostPorts: []int{31002}, KillGracePeriod: agentapi.Duration(3 * time.Second), ShutdownDelay: &delay},
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		f.set(want)
	}()
	start := time.Now()
	list, err := c.Assignments(t.Context(), "agent-1", 0, 10*time.Second)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "long poll must return on change")
	assert.Equal(t, agentapi.AssignmentList{Index: 1, Tasks: want}, list)

	// Nothing changes after index 1: the poll ends when wait elapses.
	start = time.Now()
	list, err = c.Assignments(t.Context(), "agent-1", 1, 100*time.Millisecond)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	assert.Equal(t, uint64(1), list.Index)
}

func TestAssignmentsUnknownAgent(t *testing.T) {
	_, c, _ := setup(t)
	_, err := c.Assignments(t.Context(), "nobody", 0, time.Second)
	require.Error(t, err)
	assert.ErrorIs(t, err, agentapi.ErrUnknownAgent)
	var se *agentapi.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusNotFound, se.Code)
}

func TestAssignmentsCancel(t *testing.T) {
	_, c, _ := setup(t)
	_, err := c.Register(t.Context(), agentapi.RegisterRequest{Hostname: "n"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Assignments(ctx, "agent-1", 0, 20*time.Second)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestWaitParam(t *testing.T) {
	f, _, base := setup(t)
	f.set(nil) // index 1 so polls with index=0 return at once
	f.mu.Lock()
	f.agents["a"] = agentapi.RegisterRequest{}
	f.mu.Unlock()
	tests := []struct {
		name string
		wait string
		code int
		want time.Duration
	}{
		{"default", "", 200, 5 * time.Second},
		{"duration", "2s", 200, 2 * time.Second},
		{"seconds", "7", 200, 7 * time.Second},
		{"capped", "10m", 200, 30 * time.Second},
		{"garbage", "soon", 400, 0},
		{"negative", "-1s", 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base + agentapi.PathAssignments + "?agentId=a&index=0"
			if tt.wait != "" {
				u += "&wait=" + tt.wait
			}
			resp, err := http.Get(u)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tt.code, resp.StatusCode, "wait=%q", tt.wait)
			if tt.code == 200 {
				f.mu.Lock()
				assert.Equal(t, tt.want, f.lastWait, "wait=%q", tt.wait)
				f.mu.Unlock()
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	_, _, base := setup(t)
	tests := []struct {
		name, method, path, body string
		code                     int
	}{
		{"register not json", "POST", agentapi.PathRegister, "{", 400},
		{"register trailing", "POST", agentapi.PathRegister, `{"hostname":"a"} {}`, 400},
		{"register no hostname", "POST", agentapi.PathRegister, `{}`, 400},
		{"register wrong type", "POST", agentapi.PathRegister, `{"hostname":5}`, 400},
		{"status not json", "POST", agentapi.PathStatus, `nope`, 400},
		{"status no agent", "POST", agentapi.PathStatus, `{"statuses":[]}`, 400},
		{"status no task id", "POST", agentapi.PathStatus, `{"agentId":"a","statuses":[{"state":"TASK_RUNNING"}]}`, 400},
		{"status scheduler error", "POST", agentapi.PathStatus, `{"agentId":"fail","statuses":[]}`, 500},
		{"assignments no agent", "GET", agentapi.PathAssignments, "", 400},
		{"assignments bad index", "GET", agentapi.PathAssignments + "?agentId=a&index=x", "", 400},
		{"register wrong method", "GET", agentapi.PathRegister, "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.code, resp.StatusCode)
		})
	}
}

func TestReportStatus(t *testing.T) {
	f, c, _ := setup(t)
	ts := "2026-01-01T00:00:00.000Z"
	rep := agentapi.StatusReport{AgentID: "agent-1", Statuses: []agentapi.TaskStatus{{
		TaskID: "web.1", AppID: "/web", State: marathon.TaskFailed, Message: "exited with code 3", Timestamp: ts,
		Health: []marathon.HealthCheckResult{{Alive: false, ConsecutiveFailures: 2, LastFailure: &ts, TaskID: "web.1"}},
	}}}
	require.NoError(t, c.ReportStatus(t.Context(), rep))
	f.mu.Lock()
	assert.Equal(t, []agentapi.StatusReport{rep}, f.reports)
	f.mu.Unlock()

	err := c.ReportStatus(t.Context(), agentapi.StatusReport{AgentID: "fail"})
	var se *agentapi.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusInternalServerError, se.Code)
	assert.Contains(t, se.Message, "store is down")
}

func TestClientBadURL(t *testing.T) {
	c := agentapi.NewClient("ftp://x", nil)
	_, err := c.Register(t.Context(), agentapi.RegisterRequest{Hostname: "n"})
	assert.ErrorContains(t, err, "scheme must be http or https")
}

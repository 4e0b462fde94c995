package scheduler

import (
	"bytes"
	"log/slog"
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

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// authCluster is a scheduler behind the agent API with a cluster secret,
// one real agent running one task of /web, and the logs.
type authCluster struct {
	s      *Scheduler
	url    string
	logs   *syncBuf
	victim *agentapi.Client
	vid    string
	task   string
}

func newAuthCluster(t *testing.T, dataDir string) *authCluster {
	t.Helper()
	logs := &syncBuf{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	s, err := New(Config{Leader: "h:8080", Logger: log, DataDir: dataDir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	srv := httptest.NewServer(agentapi.NewHandler(s, agentapi.HandlerConfig{Secrets: []string{"cluster-secret"}, Logger: log}))
	t.Cleanup(srv.Close)
	c := &authCluster{s: s, url: srv.URL, logs: logs}

	c.victim = agentapi.NewClient(srv.URL, srv.Client(), agentapi.WithSecret("cluster-secret"))
	reg, err := c.victim.Register(t.Context(), agentapi.RegisterRequest{Hostname: "victim",
		Resources: agentapi.Resources{CPUs: 1, Mem: 1024, Ports: []agentapi.PortRange{{Begin: 31000, End: 31010}}}})
	require.NoError(t, err)
	c.vid = reg.AgentID
	app := hostApp("/web")
	app.Instances, app.CPUs, app.Mem = 1, 0.1, 16
	app.Env = map[string]string{"DB_PASSWORD": "hunter2"}
	_, err = s.CreateApp(t.Context(), app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	list, err := c.victim.Assignments(t.Context(), c.vid, 0, 0)
	require.NoError(t, err)
	require.Len(t, list.Tasks, 1)
	c.task = list.Tasks[0].TaskID
	require.NoError(t, c.victim.ReportStatus(t.Context(), agentapi.StatusReport{AgentID: c.vid, Statuses: []agentapi.TaskStatus{{
		TaskID: c.task, AppID: "/web", Version: list.Tasks[0].Version, State: marathon.TaskRunning, Timestamp: timestamp(time.Now()),
	}}}))
	c.requireRunning(t)
	return c
}

func (c *authCluster) requireRunning(t *testing.T) {
	t.Helper()
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	task, ok := c.s.store.Task(c.task)
	require.True(t, ok, "task %s still known", c.task)
	require.Equal(t, marathon.TaskRunning, task.State)
	require.Equal(t, c.vid, task.AgentID)
}

func postAgentAPI(t *testing.T, url, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", url+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// A machine on the network without the cluster secret cannot register
// and so is handed no task (and no app's environment).
func TestAttackRogueRegister(t *testing.T) {
	c := newAuthCluster(t, "")
	code, body := postAgentAPI(t, c.url, agentapi.PathRegister, `{"hostname":"rogue","resources":{"cpus":64,"mem":65536}}`, nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.NotContains(t, body, "agentId\":\"")
	code, _ = postAgentAPI(t, c.url, agentapi.PathRegister, `{"hostname":"rogue"}`, map[string]string{"Authorization": "Bearer guessed"})
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, c.logs.String(), "agent API request refused: missing or wrong cluster secret")
	c.s.mu.Lock()
	assert.Len(t, c.s.store.Agents(), 1, "only the real agent is registered")
	c.s.mu.Unlock()
	// Nor can it read the real agent's assignments (with their env).
	req, err := http.NewRequestWithContext(t.Context(), "GET", c.url+agentapi.PathAssignments+"?agentId="+c.vid, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// Re-registering under a real agent's id (public as slaveId in /v2/tasks)
// is refused, even with the cluster secret, and its tasks stay running.
func TestAttackAgentIDHijack(t *testing.T) {
	dir := t.TempDir()
	c := newAuthCluster(t, dir)
	attacker := agentapi.NewClient(c.url, nil, agentapi.WithSecret("cluster-secret"))
	for _, tok := range []string{"", "guessed-token"} {
		_, err := attacker.Register(t.Context(), agentapi.RegisterRequest{AgentID: c.vid, AgentToken: tok, Hostname: "evil"})
		var se *agentapi.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusForbidden, se.Code)
		assert.ErrorIs(t, err, agentapi.ErrForbidden)
	}
	assert.Contains(t, c.logs.String(), "refusing agent registration: the agent id is bound to another agent's token")
	assert.Contains(t, c.logs.String(), "agent="+c.vid)
	c.requireRunning(t)
	_, err := attacker.Assignments(t.Context(), c.vid, 0, 0)
	assert.ErrorIs(t, err, agentapi.ErrForbidden, "nor poll its assignments")
	assert.Contains(t, c.logs.String(), "refusing agent request: wrong agent token")

	// The real agent still re-registers under its id.
	_, err = c.victim.Register(t.Context(), agentapi.RegisterRequest{AgentID: c.vid, Hostname: "victim",
		Tasks: []agentapi.TaskStatus{{TaskID: c.task, AppID: "/web", State: marathon.TaskRunning}}})
	require.NoError(t, err)
	c.requireRunning(t)

	// The binding survives a scheduler restart.
	require.NoError(t, c.s.Close())
	s2, err := New(Config{Leader: "h:8080", Logger: quiet(), DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	_, err = s2.Register(t.Context(), agentapi.RegisterRequest{AgentID: c.vid, Hostname: "evil"})
	assert.ErrorIs(t, err, agentapi.ErrForbidden)
}

// A forged status (a task killed, as another agent or as oneself for a
// task one does not run) is refused and the task keeps running.
func TestAttackForgedStatus(t *testing.T) {
	c := newAuthCluster(t, "")
	killed := `{"agentId":"` + c.vid + `","statuses":[{"taskId":"` + c.task + `","appId":"/web","state":"TASK_KILLED"}]}`
	secret := map[string]string{"Authorization": "Bearer cluster-secret"}

	// As the real agent, without its token.
	code, _ := postAgentAPI(t, c.url, agentapi.PathStatus, killed, secret)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, c.logs.String(), "refusing agent request: wrong agent token")
	c.requireRunning(t)

	// As a registered agent of its own, about the other agent's task.
	attacker := agentapi.NewClient(c.url, nil, agentapi.WithSecret("cluster-secret"))
	reg, err := attacker.Register(t.Context(), agentapi.RegisterRequest{Hostname: "evil",
		Tasks: []agentapi.TaskStatus{{TaskID: c.task, AppID: "/web", State: marathon.TaskFailed}}})
	require.NoError(t, err, "a registering agent's report about other agents' tasks is dropped, not fatal")
	c.requireRunning(t)
	err = attacker.ReportStatus(t.Context(), agentapi.StatusReport{AgentID: reg.AgentID, Statuses: []agentapi.TaskStatus{
		{TaskID: c.task, AppID: "/web", State: marathon.TaskKilled},
	}})
	var se *agentapi.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusForbidden, se.Code)
	assert.Contains(t, se.Message, c.task)
	assert.Contains(t, c.logs.String(), "refusing status for a task another agent runs")
	assert.Contains(t, c.logs.String(), "owner="+c.vid)
	c.requireRunning(t)

	// The owner's own report still works.
	require.NoError(t, c.victim.ReportStatus(t.Context(), agentapi.StatusReport{AgentID: c.vid, Statuses: []agentapi.TaskStatus{
		{TaskID: c.task, AppID: "/web", State: marathon.TaskFinished},
	}}))
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if task, ok := c.s.store.Task(c.task); ok {
		assert.NotEqual(t, marathon.TaskRunning, task.State)
	}
}

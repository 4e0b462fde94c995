package server_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
)

func createApp(e *env, body map[string]any) {
	e.t.Helper()
	e.doJSON("POST", "/v2/apps", body, http.StatusCreated, nil)
}

func TestKillTasks(t *testing.T) {
	e := newEnv(t, envOpts{agents: 2})
	createApp(e, map[string]any{"id": "/k", "cmd": "sleep 1000", "instances": 3, "cpus": 0.1, "mem": 16})
	ids := e.settled("/k", 3)

	// Kill one task without scale: it is replaced.
	var one struct {
		Task marathon.Task `json:"task"`
	}
	e.doJSON("DELETE", "/v2/apps/k/tasks/"+ids[0], nil, http.StatusOK, &one)
	assert.Equal(t, ids[0], one.Task.ID)
	now := e.settled("/k", 3)
	assert.NotContains(t, now, ids[0])
	assert.Equal(t, 3, e.app("/k").Instances)

	// Kill one with scale=true through /v2/tasks/delete: instances shrink.
	var res marathon.DeploymentResult
	hdr := e.doJSON("POST", "/v2/tasks/delete?scale=true", map[string]any{"ids": []string{now[0], "k.unknown"}}, http.StatusOK, &res)
	assert.Equal(t, res.DeploymentID, hdr.Get("Marathon-Deployment-Id"))
	after := e.settled("/k", 2)
	assert.NotContains(t, after, now[0])
	assert.Equal(t, 2, e.app("/k").Instances)

	// Kill all tasks of the app with scale=true.
	e.doJSON("DELETE", "/v2/apps/k/tasks?scale=true", nil, http.StatusOK, &res)
	e.settled("/k", 0)
	assert.Equal(t, 0, e.app("/k").Instances)
}

func TestRelaunchFailedTask(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	createApp(e, map[string]any{"id": "/crashy", "cmd": "false", "instances": 1, "cpus": 0.1, "mem": 16, "backoffSeconds": 0})
	ids := e.settled("/crashy", 1)
	require.NoError(t, e.agents[0].End(context.Background(), ids[0], marathon.TaskFailed))
	e.waitFor("replacement", func() bool {
		r := e.running("/crashy")
		return len(r) == 1 && r[0] != ids[0]
	})
	app := e.app("/crashy")
	require.NotNil(t, app.LastTaskFailure)
	assert.Equal(t, ids[0], app.LastTaskFailure.TaskID)
	assert.Equal(t, marathon.TaskFailed, app.LastTaskFailure.State)
}

func TestBackoffDelaysRelaunch(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	createApp(e, map[string]any{"id": "/slow", "cmd": "false", "instances": 1, "cpus": 0.1, "mem": 16, "backoffSeconds": 30})
	ids := e.settled("/slow", 1)
	require.NoError(t, e.agents[0].End(context.Background(), ids[0], marathon.TaskFinished))
	var q struct {
		Queue []struct {
			Count int `json:"count"`
			Delay struct {
				TimeLeftSeconds int  `json:"timeLeftSeconds"`
				Overdue         bool `json:"overdue"`
			} `json:"delay"`
		} `json:"queue"`
	}
	e.waitFor("queued", func() bool {
		e.doJSON("GET", "/v2/queue", nil, http.StatusOK, &q)
		return len(q.Queue) == 1
	})
	assert.Equal(t, 1, q.Queue[0].Count)
	assert.Greater(t, q.Queue[0].Delay.TimeLeftSeconds, 20, "backoffSeconds delay")
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, e.running("/slow"), "no relaunch during backoff")
	code, _, _ := e.do("DELETE", "/v2/queue/slow/delay", nil)
	require.Equal(t, http.StatusNoContent, code)
	e.settled("/slow", 1)
}

func TestUnhealthyTaskReplaced(t *testing.T) {
	var mu sync.Mutex
	sick := map[string]bool{}
	e := newEnv(t, envOpts{agents: 1, healthy: func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		return !sick[id]
	}})
	createApp(e, map[string]any{"id": "/h", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16, "backoffSeconds": 0,
		"healthChecks": []map[string]any{{"protocol": "HTTP", "maxConsecutiveFailures": 2}}})
	ids := e.settled("/h", 2)
	e.waitFor("healthy", func() bool { return e.app("/h").TasksHealthy == 2 })
	mu.Lock()
	sick[ids[0]] = true
	mu.Unlock()
	e.waitFor("unhealthy task replaced", func() bool {
		r := e.running("/h")
		return len(r) == 2 && !slices.Contains(r, ids[0])
	})
	e.waitFor("healthy again", func() bool { return e.app("/h").TasksHealthy == 2 })
}

func TestAgentLoss(t *testing.T) {
	e := newEnv(t, envOpts{agents: 3, agentTimeout: 300 * time.Millisecond})
	createApp(e, map[string]any{"id": "/spread", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16,
		"backoffSeconds": 0, "constraints": [][]string{{"hostname", "UNIQUE"}}})
	ids := e.settled("/spread", 2)
	var victim *schedulertest.FakeAgent
	for _, a := range e.agents {
		if len(a.Tasks()) > 0 {
			victim = a
			break
		}
	}
	require.NotNil(t, victim)
	lost := victim.Tasks()[0]
	victim.Pause()
	e.waitFor("replacement elsewhere", func() bool {
		r := e.running("/spread")
		return len(r) == 2 && !slices.Contains(r, lost)
	})
	for _, task := range e.app("/spread").Tasks {
		assert.NotEqual(t, victim.Hostname, task.Host)
	}
	victim.Resume()
	e.waitFor("returning agent drops its surplus task", func() bool { return len(victim.Tasks()) == 0 })
	final := e.settled("/spread", 2)
	assert.Len(t, slices.DeleteFunc(slices.Clone(final), func(id string) bool { return !slices.Contains(ids, id) }), 1,
		"exactly one original task survives: %v vs %v", final, ids)
}

func TestSchedulerRestartKeepsTasks(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOpts{agents: 2, dir: dir})
	createApp(e, map[string]any{"id": "/durable", "cmd": "sleep 1000", "instances": 3, "cpus": 0.1, "mem": 16})
	createApp(e, map[string]any{"id": "/other", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16})
	before := e.settled("/durable", 3)
	other := e.settled("/other", 1)
	app := e.app("/durable")

	e.restart(envOpts{})
	after := e.settled("/durable", 3)
	assert.Equal(t, before, after, "tasks reconciled, not replaced")
	assert.Equal(t, other, e.settled("/other", 1))
	again := e.app("/durable")
	assert.Equal(t, app.Version, again.Version)
	assert.Equal(t, app.PortDefinitions, again.PortDefinitions)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, before, e.running("/durable"), "still the same tasks")
}

func TestSchedulerRestartReplacesTasksOfMissingAgent(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, envOpts{agents: 2, dir: dir})
	createApp(e, map[string]any{"id": "/moved", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16, "backoffSeconds": 0})
	before := e.settled("/moved", 2)
	gone := e.agents[0]
	require.NotEmpty(t, gone.Tasks(), "tasks are spread over both agents")
	gone.Pause()
	e.restart(envOpts{agentTimeout: 300 * time.Millisecond})
	var after []string
	e.waitFor("tasks of the missing agent replaced", func() bool {
		after = nil
		for _, task := range e.app("/moved").Tasks {
			if task.Host != e.agents[1].Hostname || task.State != marathon.TaskRunning {
				return false
			}
			after = append(after, task.ID)
		}
		return len(after) == 2
	})
	kept := 0
	for _, id := range after {
		if slices.Contains(before, id) {
			kept++
		}
	}
	assert.Equal(t, 1, kept, "the task on the returning agent is kept, the other replaced")
	for _, task := range e.app("/moved").Tasks {
		assert.Equal(t, e.agents[1].Hostname, task.Host)
	}
}

func TestCancelDeployment(t *testing.T) {
	e := newEnv(t, envOpts{})
	var created marathon.App
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/stuck", "cmd": "x"}, http.StatusCreated, &created)
	id := created.Deployments[0].ID
	var res marathon.DeploymentResult
	e.doJSON("DELETE", "/v2/deployments/"+id, nil, http.StatusOK, &res)
	assert.NotEqual(t, id, res.DeploymentID)
	e.waitFor("rollback removes the new app", func() bool {
		code, _, _ := e.do("GET", "/v2/apps/stuck", nil)
		return code == http.StatusNotFound && len(e.deployments()) == 0
	})

	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/stuck2", "cmd": "x"}, http.StatusCreated, &created)
	code, body, _ := e.do("DELETE", "/v2/deployments/"+created.Deployments[0].ID+"?force=true", nil)
	assert.Equal(t, http.StatusAccepted, code)
	assert.Empty(t, body)
	assert.Empty(t, e.deployments())
	assert.Equal(t, "/stuck2", e.app("/stuck2").ID, "force only stops the deployment")
}

// TestUnreachableStrategy follows walkthrough step 3: a task on a lost
// agent stays an instance (TASK_UNREACHABLE) until inactiveAfterSeconds,
// then is replaced elsewhere; when the agent returns before expunge, the
// surplus task is killed.
func TestUnreachableStrategy(t *testing.T) {
	e := newEnv(t, envOpts{agents: 2, agentTimeout: 300 * time.Millisecond})
	createApp(e, map[string]any{"id": "/db", "cmd": "mysqld", "instances": 1, "cpus": 0.1, "mem": 16, "backoffSeconds": 0,
		"unreachableStrategy": map[string]any{"inactiveAfterSeconds": 1, "expungeAfterSeconds": 60}})
	orig := e.settled("/db", 1)[0]
	var home *schedulertest.FakeAgent
	for _, a := range e.agents {
		if slices.Contains(a.Tasks(), orig) {
			home = a
		}
	}
	require.NotNil(t, home)
	home.Pause()
	paused := time.Now()
	e.waitFor("task unreachable", func() bool {
		tasks := e.app("/db").Tasks
		return len(tasks) == 1 && tasks[0].State == marathon.TaskUnreachable
	})
	e.waitFor("replacement after inactiveAfterSeconds", func() bool { return len(e.running("/db")) == 1 })
	assert.GreaterOrEqual(t, time.Since(paused), time.Second, "not replaced before inactiveAfterSeconds")
	app := e.app("/db")
	assert.Len(t, app.Tasks, 2, "the unreachable task is kept until expunge")
	home.Resume()
	final := e.settled("/db", 1)
	assert.Len(t, final, 1)
}

// TestDeploymentSurvivesRestart: a deployment stored by one scheduler is
// resumed by the next one.
func TestDeploymentSurvivesRestart(t *testing.T) {
	e := newEnv(t, envOpts{dir: t.TempDir()})
	var created marathon.App
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/later", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16}, http.StatusCreated, &created)
	e.restart(envOpts{})
	ds := e.deployments()
	require.Len(t, ds, 1)
	assert.Equal(t, created.Deployments[0].ID, ds[0].ID)
	a := schedulertest.NewFakeAgent(e.sched, "late-agent")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	e.settled("/later", 2)
}

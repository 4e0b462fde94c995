package scheduler

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/state"
)

// hcEnv is a scheduler with one live agent (without resources, so nothing
// launches) and an event recorder.
type hcEnv struct {
	t     *testing.T
	s     *Scheduler
	r     *recorder
	agent string
}

func (e *hcEnv) put(app marathon.App) {
	e.t.Helper()
	_, _, err := e.s.UpdateApp(context.Background(), app.ID, func(*marathon.App) (marathon.App, error) { return app, nil }, true, "", "")
	require.NoError(e.t, err)
}

func (e *hcEnv) version(id string) string {
	e.t.Helper()
	a, err := e.s.GetApp(context.Background(), id)
	require.NoError(e.t, err)
	return a.Version
}

// runTask stores a running task of the app's current version.
func (e *hcEnv) runTask(appID string) string {
	e.t.Helper()
	v := e.version(appID)
	id := newTaskID(appID)
	e.s.mu.Lock()
	e.s.store.PutTask(&state.Task{ID: id, AppID: appID, AgentID: e.agent, Host: "h1", State: marathon.TaskRunning, Version: v})
	e.s.mu.Unlock()
	return id
}

func (e *hcEnv) dropTask(id string) {
	e.s.mu.Lock()
	e.s.store.DeleteTask(id)
	e.s.mu.Unlock()
}

// events runs a reconcile pass and returns the health check events it
// published, each as "add <appId> <version> <path>" or "remove <appId>".
func (e *hcEnv) events() []string {
	e.s.reconcile()
	var out []string
	for _, ev := range e.r.take() {
		switch ev.Type {
		case marathon.EventAddHealthCheck:
			var p addHealthCheckEvent
			require.NoError(e.t, json.Unmarshal(ev.Data, &p))
			out = append(out, "add "+p.AppID+" "+p.Version+" "+p.HealthCheck.Path)
		case marathon.EventRemoveHealthCheck:
			var p removeHealthCheckEvent
			require.NoError(e.t, json.Unmarshal(ev.Data, &p))
			out = append(out, "remove "+p.AppID)
		}
	}
	return out
}

func checked(id string, instances int, paths ...string) marathon.App {
	a := hostApp(id, 0)
	a.Instances = instances
	for _, p := range paths {
		a.HealthChecks = append(a.HealthChecks, marathon.HealthCheck{Protocol: "HTTP", Path: p, IntervalSeconds: 10, TimeoutSeconds: 5})
	}
	return a
}

func TestHealthCheckEvents(t *testing.T) {
	tests := []struct {
		name string
		run  func(e *hcEnv)
	}{
		{"created with checks, announced once", func(e *hcEnv) {
			e.put(checked("/a", 0, "/h1", "/h2"))
			v := e.version("/a")
			assert.Equal(e.t, []string{"add /a " + v + " /h1", "add /a " + v + " /h2"}, e.events())
			assert.Empty(e.t, e.events(), "nothing changed")
		}},
		{"created without checks", func(e *hcEnv) {
			e.put(checked("/a", 0))
			assert.Empty(e.t, e.events())
		}},
		{"checks replaced", func(e *hcEnv) {
			e.put(checked("/a", 0, "/h1"))
			require.Len(e.t, e.events(), 1)
			e.put(checked("/a", 0, "/h2"))
			assert.Equal(e.t, []string{"remove /a", "add /a " + e.version("/a") + " /h2"}, e.events())
		}},
		{"checks removed: stop with the old version's last task", func(e *hcEnv) {
			e.put(checked("/a", 0, "/h1"))
			require.Len(e.t, e.events(), 1)
			task := e.runTask("/a")
			e.put(checked("/a", 0))
			assert.Empty(e.t, e.events(), "a task still runs the checked version")
			e.dropTask(task)
			assert.Equal(e.t, []string{"remove /a"}, e.events())
		}},
		{"checks added by an update", func(e *hcEnv) {
			e.put(checked("/a", 0))
			assert.Empty(e.t, e.events())
			e.put(checked("/a", 0, "/h1"))
			assert.Equal(e.t, []string{"add /a " + e.version("/a") + " /h1"}, e.events())
		}},
		{"scaled: the new version is checked too", func(e *hcEnv) {
			e.put(checked("/a", 0, "/h1"))
			old := e.version("/a")
			require.Equal(e.t, []string{"add /a " + old + " /h1"}, e.events())
			task := e.runTask("/a")
			e.put(checked("/a", 1, "/h1"))
			require.NotEqual(e.t, old, e.version("/a"))
			assert.Equal(e.t, []string{"add /a " + e.version("/a") + " /h1"}, e.events())
			e.dropTask(task)
			assert.Equal(e.t, []string{"remove /a"}, e.events(), "the old version's checks stop")
		}},
		{"app deleted", func(e *hcEnv) {
			e.put(checked("/a", 0, "/h1", "/h2"))
			e.put(checked("/b", 0, "/h1"))
			require.Len(e.t, e.events(), 3)
			_, err := e.s.DeleteApp(context.Background(), "/a", true)
			require.NoError(e.t, err)
			assert.Equal(e.t, []string{"remove /a", "remove /a"}, e.events())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScheduler(t)
			reg, err := s.Register(context.Background(), agentapi.RegisterRequest{Hostname: "h1"})
			require.NoError(t, err)
			e := &hcEnv{t: t, s: s, agent: reg.AgentID}
			e.r = record(t, s)
			tc.run(e)
		})
	}
}

package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/state"
)

func TestAppInfoTaskCounts(t *testing.T) {
	alive := []marathon.HealthCheckResult{{Alive: true}}
	dead := []marathon.HealthCheckResult{{Alive: true}, {Alive: false}}
	tests := []struct {
		name                                string
		tasks                               []*state.Task
		staged, running, healthy, unhealthy int
	}{
		{name: "no tasks"},
		{name: "no state yet is staged", tasks: []*state.Task{{ID: "a.1"}}, staged: 1},
		{name: "staging is staged", tasks: []*state.Task{{ID: "a.1", State: marathon.TaskStaging}}, staged: 1},
		{name: "starting counts nowhere", tasks: []*state.Task{{ID: "a.1", State: marathon.TaskStarting}}},
		{name: "killing counts nowhere", tasks: []*state.Task{{ID: "a.1", State: marathon.TaskKilling}}},
		{name: "running", tasks: []*state.Task{{ID: "a.1", State: marathon.TaskRunning}}, running: 1},
		{
			name: "mixed with health",
			tasks: []*state.Task{
				{ID: "a.1", State: marathon.TaskRunning, Health: alive},
				{ID: "a.2", State: marathon.TaskRunning, Health: dead},
				{ID: "a.3", State: marathon.TaskStarting},
				{ID: "a.4", State: marathon.TaskStaging},
			},
			staged: 1, running: 2, healthy: 1, unhealthy: 1,
		},
	}
	s := newTestScheduler(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := s.appInfo(&state.App{Def: marathon.App{ID: "/a"}}, tc.tasks, nil)
			assert.Equal(t, tc.staged, info.TasksStaged, "tasksStaged")
			assert.Equal(t, tc.running, info.TasksRunning, "tasksRunning")
			assert.Equal(t, tc.healthy, info.TasksHealthy, "tasksHealthy")
			assert.Equal(t, tc.unhealthy, info.TasksUnhealthy, "tasksUnhealthy")
			assert.Len(t, info.Tasks, len(tc.tasks))
		})
	}
}

func TestDeploymentCurrentActionsReadiness(t *testing.T) {
	ctx := context.Background()
	ready := func(name, taskID string, ok bool) marathon.ReadinessCheckResult {
		return marathon.ReadinessCheckResult{Name: name, TaskID: taskID, Ready: ok}
	}
	tests := []struct {
		name   string
		app    string                                     // the app whose deployment is looked at
		probed map[string][]marathon.ReadinessCheckResult // task id -> results being probed
		want   []marathon.ReadinessCheckResult
	}{
		{name: "nothing probed", app: "/web", want: []marathon.ReadinessCheckResult{}},
		{
			name: "tasks of the app probed",
			app:  "/web",
			probed: map[string][]marathon.ReadinessCheckResult{
				"web.2": {ready("r", "web.2", false)},
				"web.1": {ready("r", "web.1", true)},
			},
			want: []marathon.ReadinessCheckResult{ready("r", "web.1", true), ready("r", "web.2", false)},
		},
		{
			name:   "only another app's tasks probed",
			app:    "/web",
			probed: map[string][]marathon.ReadinessCheckResult{"api.1": {ready("r", "api.1", true)}},
			want:   []marathon.ReadinessCheckResult{},
		},
		{
			name:   "a stop waits for no readiness",
			app:    "/old",
			probed: map[string][]marathon.ReadinessCheckResult{"old.1": {ready("r", "old.1", false)}},
			want:   []marathon.ReadinessCheckResult{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScheduler(t)
			web := hostApp("/web", 0)
			web.Instances = 2 // no agent: the scale step waits
			_, err := s.CreateApp(ctx, web, false, "", "")
			require.NoError(t, err)
			_, err = s.CreateApp(ctx, hostApp("/old", 0), false, "", "")
			require.NoError(t, err)
			s.mu.Lock()
			for _, id := range []string{"web.1", "web.2", "api.1", "old.1"} {
				app, _, _ := strings.Cut(id, ".")
				s.store.PutTask(&state.Task{ID: id, AppID: "/" + app, AgentID: "a1", State: marathon.TaskRunning})
			}
			for id, results := range tc.probed {
				s.ready[id] = &readiness{results: results, cancel: func() {}}
			}
			s.mu.Unlock()
			_, err = s.DeleteApp(ctx, "/old", false) // its task keeps the stop step waiting
			require.NoError(t, err)

			ds, err := s.ListDeployments(ctx)
			require.NoError(t, err)
			var found bool
			for _, d := range ds {
				if d.AffectedApps[0] != tc.app {
					continue
				}
				found = true
				require.Len(t, d.CurrentActions, 1)
				require.NotNil(t, d.CurrentActions[0].ReadinessCheckResults)
				assert.Equal(t, tc.want, *d.CurrentActions[0].ReadinessCheckResults)
				b, err := json.Marshal(d)
				require.NoError(t, err)
				var raw struct {
					Steps []struct {
						Actions []map[string]any `json:"actions"`
					} `json:"steps"`
					CurrentActions []map[string]any `json:"currentActions"`
				}
				require.NoError(t, json.Unmarshal(b, &raw))
				assert.Contains(t, raw.CurrentActions[0], "readinessCheckResults", "currentActions carry it, [] when empty")
				for _, st := range raw.Steps {
					for _, a := range st.Actions {
						assert.NotContains(t, a, "readinessCheckResults", "steps leave it out")
					}
				}
			}
			assert.True(t, found, "a deployment of %s runs", tc.app)
		})
	}
}

// queueEntries returns the /v2/queue entries by app id.
func queueEntries(t *testing.T, s *Scheduler) map[string]map[string]any {
	t.Helper()
	body, err := s.Queue(context.Background())
	require.NoError(t, err)
	out := map[string]map[string]any{}
	for _, e := range body.(map[string]any)["queue"].([]map[string]any) {
		out[e["app"].(marathon.App).ID] = e
	}
	return out
}

func TestQueueSinceIsWhenTheAppEnteredTheQueue(t *testing.T) {
	ctx := context.Background()
	s := newTestScheduler(t)
	scale := func(n int) {
		a := hostApp("/web", 0)
		a.Instances = n
		_, _, err := s.UpdateApp(ctx, "/web", func(*marathon.App) (marathon.App, error) { return a, nil }, true, "", "")
		require.NoError(t, err)
	}
	since := func() time.Time {
		e, ok := queueEntries(t, s)["/web"]
		require.True(t, ok, "/web is queued")
		ts, err := time.Parse("2006-01-02T15:04:05.000Z", e["since"].(string))
		require.NoError(t, err)
		return ts
	}

	before := time.Now().Truncate(time.Millisecond)
	scale(2) // no agent: both instances stay queued
	s.reconcile()
	after := time.Now()
	time.Sleep(20 * time.Millisecond)
	first := since()
	assert.False(t, first.Before(before), "since %v not before the app was queued (%v)", first, before)
	assert.False(t, first.After(after), "since %v is the entry time, not the request time", first)
	time.Sleep(20 * time.Millisecond)
	s.reconcile()
	assert.Equal(t, first, since(), "since stays while the app is queued")

	scale(0)
	s.reconcile()
	assert.NotContains(t, queueEntries(t, s), "/web")
	time.Sleep(5 * time.Millisecond)
	scale(1)
	s.reconcile()
	assert.True(t, since().After(first), "an app queued again has a new since")
}

func TestResetDelayNeedsAQueuedApp(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		app       string
		instances int
		tasks     int
		wantErr   bool
	}{
		{name: "unknown app", app: "/nope", wantErr: true},
		{name: "app without instances", app: "/web", wantErr: true},
		{name: "app with all instances launched", app: "/web", instances: 1, tasks: 1, wantErr: true},
		{name: "queued app", app: "/web", instances: 2, tasks: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScheduler(t)
			a := hostApp("/web", 0)
			a.Instances = tc.instances
			_, err := s.CreateApp(ctx, a, false, "", "")
			require.NoError(t, err)
			s.mu.Lock()
			for i := range tc.tasks {
				s.store.PutTask(&state.Task{ID: fmt.Sprintf("web.%d", i), AppID: "/web", AgentID: "a1", State: marathon.TaskRunning})
			}
			app, _ := s.store.App("/web")
			app.Backoff, app.BackoffUntil = 30, time.Now().Add(time.Minute)
			s.store.PutApp(app)
			s.mu.Unlock()

			err = s.ResetDelay(ctx, tc.app)
			if tc.wantErr {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, http.StatusNotFound, ae.Status)
				assert.Equal(t, "Application "+tc.app+" not found in tasks queue.", ae.Body.Message)
				return
			}
			require.NoError(t, err)
			app, _ = s.store.App("/web")
			assert.Zero(t, app.Backoff)
			assert.True(t, app.BackoffUntil.IsZero(), "delay reset")
		})
	}
}

package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/state"
)

// recorder collects the events a scheduler publishes.
type recorder struct {
	t  *testing.T
	ch <-chan marathon.Event
}

func record(t *testing.T, s *Scheduler) *recorder {
	t.Helper()
	ch, cancel := s.Subscribe("test")
	t.Cleanup(cancel)
	r := &recorder{t: t, ch: ch}
	r.take() // event_stream_attached
	return r
}

// take returns the events published since the last call (publishing is
// synchronous, so everything an API call emits is queued when it returns).
func (r *recorder) take() []marathon.Event {
	var out []marathon.Event
	for {
		select {
		case ev, ok := <-r.ch:
			if !ok {
				return out
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

// ofType keeps the events of one type, decoded as JSON objects.
func ofType(events []marathon.Event, eventType string) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		if ev.Type != eventType {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// types lists the event types in order.
func types(events []marathon.Event) []string {
	out := make([]string, 0, len(events))
	for _, ev := range events {
		out = append(out, ev.Type)
	}
	return out
}

func TestAPIPostEventCarriesPlainApp(t *testing.T) {
	ctx := context.Background()
	readOnly := []string{"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks", "lastTaskFailure"}
	tests := []struct {
		name string
		call func(s *Scheduler) error
	}{
		{"create", func(s *Scheduler) error {
			_, err := s.CreateApp(ctx, hostApp("/web", 0), false, "10.0.0.1", "/v2/apps")
			return err
		}},
		{"update", func(s *Scheduler) error {
			_, _, err := s.UpdateApp(ctx, "/web", func(*marathon.App) (marathon.App, error) { return hostApp("/web", 0), nil }, false, "10.0.0.1", "/v2/apps/web")
			return err
		}},
		{"group", func(s *Scheduler) error {
			_, _, err := s.UpdateGroup(ctx, "/", func([]marathon.App) ([]marathon.App, error) {
				return []marathon.App{hostApp("/web", 0)}, nil
			}, false, false, "10.0.0.1", "/v2/groups")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScheduler(t)
			r := record(t, s)
			require.NoError(t, tc.call(s))
			posts := ofType(r.take(), marathon.EventAPIPost)
			require.Len(t, posts, 1)
			def, ok := posts[0]["appDefinition"].(map[string]any)
			require.True(t, ok, "appDefinition is an object")
			for _, k := range readOnly {
				assert.NotContains(t, def, k)
			}
			for _, k := range []string{"id", "cmd", "instances", "portDefinitions", "version", "versionInfo", "labels"} {
				assert.Contains(t, def, k)
			}
			assert.Equal(t, "/web", def["id"])
			assert.Equal(t, "10.0.0.1", posts[0]["clientIp"])
			assert.NotEmpty(t, posts[0]["uri"])
			// It still decodes as Marathon's payload.
			stored, err := s.GetApp(ctx, "/web")
			require.NoError(t, err)
			var ev marathon.APIPostEvent
			b, _ := json.Marshal(posts[0])
			require.NoError(t, json.Unmarshal(b, &ev))
			assert.Equal(t, stored.Version, ev.AppDefinition.Version)
			assert.Equal(t, stored.Ports, ev.AppDefinition.Ports)
		})
	}
}

func TestCancelSendsStepFailure(t *testing.T) {
	ctx := context.Background()
	app := hostApp("/web", 0)
	app.Instances = 2 // no agent: the deployment cannot finish
	tests := []struct {
		name   string
		cancel func(s *Scheduler, id string) error
		reason string
	}{
		{"cancel", func(s *Scheduler, id string) error {
			_, err := s.CancelDeployment(ctx, id, false)
			return err
		}, "cancelled"},
		{"cancel with force", func(s *Scheduler, id string) error {
			_, err := s.CancelDeployment(ctx, id, true)
			return err
		}, "cancelled"},
		{"forced over", func(s *Scheduler, _ string) error {
			next := app
			next.Instances = 3
			_, _, err := s.UpdateApp(ctx, "/web", func(*marathon.App) (marathon.App, error) { return next, nil }, true, "", "")
			return err
		}, "overridden by a forced change"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScheduler(t)
			_, err := s.CreateApp(ctx, app, false, "", "")
			require.NoError(t, err)
			ds, err := s.ListDeployments(ctx)
			require.NoError(t, err)
			require.Len(t, ds, 1)
			d := ds[0]
			require.Positive(t, d.CurrentStep)
			r := record(t, s)
			require.NoError(t, tc.cancel(s, d.ID))
			events := r.take()
			all := types(events)
			iFail := indexOf(all, marathon.EventDeploymentStepFailure)
			iFailed := indexOf(all, marathon.EventDeploymentFailed)
			require.GreaterOrEqual(t, iFail, 0, "deployment_step_failure in %v", all)
			assert.Less(t, iFail, iFailed, "the step fails before the deployment")
			var step marathon.DeploymentEvent
			require.NoError(t, json.Unmarshal(events[iFail].Data, &step))
			assert.Equal(t, d.ID, step.Plan.ID)
			require.NotNil(t, step.CurrentStep)
			assert.Equal(t, d.Steps[d.CurrentStep-1].Actions, step.CurrentStep.Actions)
			var failed marathon.DeploymentEvent
			require.NoError(t, json.Unmarshal(events[iFailed].Data, &failed))
			assert.Equal(t, d.ID, failed.ID)
			assert.Equal(t, tc.reason, failed.Reason)
		})
	}
}

func TestCancelUnstartedPlanSendsNoStepFailure(t *testing.T) {
	s := newTestScheduler(t)
	r := record(t, s)
	s.mu.Lock()
	s.cancel(&state.Deployment{ID: "d1", Steps: []marathon.DeploymentStep{{Actions: []marathon.DeploymentAction{{Action: "StartApplication", App: "/a"}}}}}, "cancelled")
	s.mu.Unlock()
	assert.Equal(t, []string{marathon.EventDeploymentFailed}, types(r.take()))
}

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

func TestUnknownInstanceTerminated(t *testing.T) {
	ctx := context.Background()
	const known = "web.11111111-2222-4333-8444-555555555555"
	const unknown = "web.99999999-2222-4333-8444-555555555555"
	tests := []struct {
		name      string
		taskID    string
		state     string
		register  bool   // report through Register instead of ReportStatus
		condition string // "" = no event expected
	}{
		{name: "unknown killed", taskID: unknown, state: marathon.TaskKilled, condition: "Killed"},
		{name: "unknown failed", taskID: unknown, state: marathon.TaskFailed, condition: "Failed"},
		{name: "unknown finished", taskID: unknown, state: marathon.TaskFinished, condition: "Finished"},
		{name: "unknown lost", taskID: unknown, state: marathon.TaskLost, condition: "Gone"},
		{name: "unknown running", taskID: unknown, state: marathon.TaskRunning},
		{name: "unknown killing", taskID: unknown, state: marathon.TaskKilling},
		{name: "known killed", taskID: known, state: marathon.TaskKilled},
		{name: "unknown killed on register", taskID: unknown, state: marathon.TaskKilled, register: true, condition: "Killed"},
		{name: "unknown running on register", taskID: unknown, state: marathon.TaskRunning, register: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestScheduler(t)
			reg, err := s.Register(ctx, agentapi.RegisterRequest{AgentID: "a1", Hostname: "h1"})
			require.NoError(t, err)
			s.mu.Lock()
			s.store.PutTask(&state.Task{ID: known, AppID: "/web", AgentID: reg.AgentID, State: marathon.TaskRunning})
			s.mu.Unlock()
			r := record(t, s)
			st := agentapi.TaskStatus{TaskID: tc.taskID, AppID: "/web", State: tc.state}
			if tc.register {
				_, err = s.Register(ctx, agentapi.RegisterRequest{AgentID: reg.AgentID, AgentToken: reg.AgentToken, Hostname: "h1", Tasks: []agentapi.TaskStatus{st}})
			} else {
				err = s.ReportStatus(ctx, agentapi.StatusReport{AgentID: reg.AgentID, Statuses: []agentapi.TaskStatus{st}})
			}
			require.NoError(t, err)
			got := ofType(r.take(), eventUnknownInstanceTerminated)
			if tc.condition == "" {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, instanceID(tc.taskID), got[0]["instanceId"])
			assert.Equal(t, "/web", got[0]["runSpecId"])
			assert.Equal(t, tc.condition, got[0]["condition"])
			assert.Equal(t, eventUnknownInstanceTerminated, got[0]["eventType"])
			assert.NotEmpty(t, got[0]["timestamp"])
		})
	}
}

// statusErr is an error with an HTTP status, as marathon/httpapi's
// update functions return them.
type statusErr int

func (e statusErr) Error() string   { return fmt.Sprintf("refused with %d", int(e)) }
func (e statusErr) HTTPStatus() int { return int(e) }

func TestGroupChangeFailed(t *testing.T) {
	ctx := context.Background()
	busy := hostApp("/g/busy", 0)
	busy.Instances = 2 // no agent: its deployment stays and locks it
	setter := func(a marathon.App) func(*marathon.App) (marathon.App, error) {
		return func(*marathon.App) (marathon.App, error) { return a, nil }
	}
	failing := func(err error) func(*marathon.App) (marathon.App, error) {
		return func(*marathon.App) (marathon.App, error) { return marathon.App{}, err }
	}
	tests := []struct {
		name    string
		call    func(s *Scheduler) error
		groupID string // "" = no group_change_failed expected
		reason  string
	}{
		{"create succeeds", func(s *Scheduler) error {
			_, err := s.CreateApp(ctx, hostApp("/new"), false, "", "")
			return err
		}, "", ""},
		{"create duplicate", func(s *Scheduler) error {
			_, err := s.CreateApp(ctx, hostApp("/g/busy"), false, "", "")
			return err
		}, "/", "already exists"},
		{"create over a group", func(s *Scheduler) error {
			_, err := s.CreateApp(ctx, hostApp("/g"), false, "", "")
			return err
		}, "/", "Object is not valid: /id: " + msgSameID},
		{"update locked", func(s *Scheduler) error {
			_, _, err := s.UpdateApp(ctx, "/g/busy", setter(hostApp("/g/busy")), false, "", "")
			return err
		}, "/", "locked by one or more deployments"},
		{"update invalid", func(s *Scheduler) error {
			_, _, err := s.UpdateApp(ctx, "/x", failing(statusErr(http.StatusUnprocessableEntity)), false, "", "")
			return err
		}, "/", "refused with 422"},
		{"update with a body that does not decode", func(s *Scheduler) error {
			_, _, err := s.UpdateApp(ctx, "/x", failing(statusErr(http.StatusBadRequest)), false, "", "")
			return err
		}, "", ""},
		{"patch of a missing app", func(s *Scheduler) error {
			_, err := s.UpdateApps(ctx, map[string]func(*marathon.App) (marathon.App, error){"/x": failing(statusErr(http.StatusNotFound))}, false, "", "")
			return err
		}, "", ""},
		{"delete missing", func(s *Scheduler) error {
			_, err := s.DeleteApp(ctx, "/nope", false)
			return err
		}, "", ""},
		{"delete locked", func(s *Scheduler) error {
			_, err := s.DeleteApp(ctx, "/g/busy", false)
			return err
		}, "/", "locked"},
		{"restart missing", func(s *Scheduler) error {
			_, err := s.RestartApp(ctx, "/nope", false)
			return err
		}, "", ""},
		{"restart locked", func(s *Scheduler) error {
			_, err := s.RestartApp(ctx, "/g/busy", false)
			return err
		}, "/", "locked"},
		{"group with a foreign app", func(s *Scheduler) error {
			_, _, err := s.UpdateGroup(ctx, "/g", func([]marathon.App) ([]marathon.App, error) {
				return []marathon.App{hostApp("/other")}, nil
			}, false, false, "", "")
			return err
		}, "/g", "App '/other' is not in group '/g'."},
		{"group locked", func(s *Scheduler) error {
			_, _, err := s.UpdateGroup(ctx, "/g", func([]marathon.App) ([]marathon.App, error) { return nil, nil }, false, false, "", "")
			return err
		}, "/g", "locked"},
		{"group dry run", func(s *Scheduler) error {
			_, _, err := s.UpdateGroup(ctx, "/g", func([]marathon.App) ([]marathon.App, error) {
				return []marathon.App{hostApp("/other")}, nil
			}, false, true, "", "")
			return err
		}, "", ""},
		{"group missing", func(s *Scheduler) error {
			_, _, err := s.UpdateGroup(ctx, "/h", func([]marathon.App) ([]marathon.App, error) {
				return nil, statusErr(http.StatusNotFound)
			}, false, false, "", "")
			return err
		}, "", ""},
		{"cancel missing", func(s *Scheduler) error {
			_, err := s.CancelDeployment(ctx, "nope", false)
			return err
		}, "", ""},
		{"store error", func(s *Scheduler) error {
			s.mu.Lock()
			require.NoError(t, s.store.Close())
			s.mu.Unlock()
			_, err := s.CreateApp(ctx, hostApp("/new"), false, "", "")
			return err
		}, "/", "state store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Leader: "h:8080", Logger: quiet(), DataDir: t.TempDir()})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			_, err = s.CreateApp(ctx, busy, false, "", "")
			require.NoError(t, err)
			r := record(t, s)
			callErr := tc.call(s)
			got := ofType(r.take(), marathon.EventGroupChangeFailed)
			if tc.groupID == "" {
				assert.Empty(t, got)
				return
			}
			require.Error(t, callErr)
			require.Len(t, got, 1)
			assert.Equal(t, tc.groupID, got[0]["groupId"])
			assert.Contains(t, got[0]["reason"], tc.reason)
			assert.NotEmpty(t, got[0]["version"])
		})
	}
}

package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// TestKillUndeliveredTask: a task its agent never fetched is dropped at
// once when killed (the scale-down deployment ends in the same pass, and
// the app can be deleted and re-created at once); a task the agent has
// fetched waits for the agent to confirm the kill.
func TestKillUndeliveredTask(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	reg, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: "h1", Resources: agentapi.Resources{
		CPUs: 4, Mem: 4096, Ports: []agentapi.PortRange{{Begin: 31000, End: 31100}}}})
	require.NoError(t, err)
	app := hostApp("/a")
	app.Instances = 3
	app.CPUs, app.Mem = 0.1, 16
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	require.Len(t, s.store.Tasks(), 3)

	scaleTo := func(n int) {
		t.Helper()
		_, _, err := s.UpdateApp(ctx, "/a", func(cur *marathon.App) (marathon.App, error) {
			next := *cur
			next.Instances = n
			return next, nil
		}, true, "", "")
		require.NoError(t, err)
		s.reconcile()
	}
	scaleTo(0)
	assert.Empty(t, s.store.Tasks(), "undelivered tasks are dropped")
	assert.Empty(t, s.store.Deployments(), "the scale-down is done at once")

	_, err = s.DeleteApp(ctx, "/a", false)
	require.NoError(t, err)
	s.reconcile()
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err, "re-created at once")
	s.reconcile()

	// Once the agent fetched its assignments, a kill waits for it.
	list, err := s.Assignments(ctx, reg.AgentID, 0, time.Millisecond)
	require.NoError(t, err)
	require.Len(t, list.Tasks, 3)
	scaleTo(0)
	assert.Len(t, s.store.Tasks(), 3, "delivered tasks wait for the agent")
	for _, task := range s.store.Tasks() {
		assert.True(t, task.KillRequested)
	}
	assert.Len(t, s.store.Deployments(), 1)
	var sts []agentapi.TaskStatus
	for _, a := range list.Tasks {
		sts = append(sts, agentapi.TaskStatus{TaskID: a.TaskID, AppID: a.AppID, State: marathon.TaskKilled})
	}
	require.NoError(t, s.ReportStatus(ctx, agentapi.StatusReport{AgentID: reg.AgentID, Statuses: sts}))
	s.reconcile()
	assert.Empty(t, s.store.Tasks())
	assert.Empty(t, s.store.Deployments())
}

// TestStaleStatusIgnored: a status older than the known state (a
// re-registration built before a report that overtook it) does not move
// a task back to TASK_STAGING.
func TestStaleStatusIgnored(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	reg, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: "h1", Resources: agentapi.Resources{
		CPUs: 4, Mem: 4096, Ports: []agentapi.PortRange{{Begin: 31000, End: 31100}}}})
	require.NoError(t, err)
	app := hostApp("/a")
	app.Instances, app.CPUs, app.Mem = 1, 0.1, 16
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	list, err := s.Assignments(ctx, reg.AgentID, 0, time.Millisecond)
	require.NoError(t, err)
	require.Len(t, list.Tasks, 1)
	id := list.Tasks[0].TaskID
	status := func(state string) agentapi.TaskStatus {
		return agentapi.TaskStatus{TaskID: id, AppID: "/a", State: state}
	}
	require.NoError(t, s.ReportStatus(ctx, agentapi.StatusReport{AgentID: reg.AgentID,
		Statuses: []agentapi.TaskStatus{status(marathon.TaskRunning)}}))
	_, err = s.Register(ctx, agentapi.RegisterRequest{AgentID: reg.AgentID, AgentToken: reg.AgentToken, Hostname: "h1",
		Tasks: []agentapi.TaskStatus{status(marathon.TaskStaging)}})
	require.NoError(t, err)
	tk, ok := s.store.Task(id)
	require.True(t, ok)
	assert.Equal(t, marathon.TaskRunning, tk.State)
}

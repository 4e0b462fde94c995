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

// TestUnreachableTaskNotHealthy: a task on an unreachable agent counts as
// neither running nor healthy, whatever its last health results said.
func TestUnreachableTaskNotHealthy(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	var agents []string
	for _, h := range []string{"h1", "h2"} {
		reg, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: h, Resources: agentapi.Resources{
			CPUs: 1, Mem: 128, Ports: []agentapi.PortRange{{Begin: 31000, End: 31010}}}})
		require.NoError(t, err)
		agents = append(agents, reg.AgentID)
	}
	app := hostApp("/web", 0)
	app.Instances, app.CPUs, app.Mem = 2, 0.6, 16 // one task per agent
	app.HealthChecks = []marathon.HealthCheck{{Protocol: "TCP", IntervalSeconds: 1, TimeoutSeconds: 1, MaxConsecutiveFailures: 3}}
	_, err := s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	for _, id := range agents {
		list, err := s.Assignments(ctx, id, 0, time.Millisecond)
		require.NoError(t, err)
		require.Len(t, list.Tasks, 1)
		a := list.Tasks[0]
		require.NoError(t, s.ReportStatus(ctx, agentapi.StatusReport{AgentID: id, Statuses: []agentapi.TaskStatus{{
			TaskID: a.TaskID, AppID: a.AppID, Version: a.Version, State: marathon.TaskRunning,
			Health: []marathon.HealthCheckResult{{Alive: true}}}}}))
	}
	info, err := s.GetApp(ctx, "/web")
	require.NoError(t, err)
	require.Equal(t, 2, info.TasksRunning)
	require.Equal(t, 2, info.TasksHealthy)

	// h2 stops polling past the agent timeout.
	s.mu.Lock()
	s.live[agents[0]].lastSeen = time.Now()
	s.live[agents[1]].lastSeen = time.Now().Add(-time.Hour)
	s.checkAgents(time.Now())
	s.mu.Unlock()
	info, err = s.GetApp(ctx, "/web")
	require.NoError(t, err)
	assert.Equal(t, 1, info.TasksRunning)
	assert.Equal(t, 1, info.TasksHealthy)
	assert.Equal(t, 0, info.TasksUnhealthy)
}

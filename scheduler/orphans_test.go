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

// TestOrphansListedAndHeld: tasks an agent reports that the scheduler has
// no record of (it started without its state) are listed to the agent as
// unknown, so it holds rather than kills them, and in ListOrphans
// (/v2/tasks?orphans) until the agent reports them ended.
func TestOrphansListedAndHeld(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	reg, err := s.Register(ctx, agentapi.RegisterRequest{AgentID: "a1-S0", Hostname: "h1",
		Resources: agentapi.Resources{CPUs: 1, Mem: 128},
		Tasks: []agentapi.TaskStatus{{TaskID: "web.1", AppID: "/web", Version: "v1", State: marathon.TaskRunning,
			HostPorts: []int{31001}, StartedAt: "2026-12-05T10:00:00.000Z"}}})
	require.NoError(t, err)

	list, err := s.Assignments(ctx, reg.AgentID, 0, time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, list.Tasks)
	assert.Equal(t, []string{"web.1"}, list.Unknown)

	orphans, err := s.ListOrphans(ctx)
	require.NoError(t, err)
	require.Len(t, orphans, 1)
	assert.Equal(t, "web.1", orphans[0].ID)
	assert.Equal(t, "/web", orphans[0].AppID)
	assert.Equal(t, "h1", orphans[0].Host)
	assert.Equal(t, "a1-S0", orphans[0].SlaveID)
	assert.Equal(t, []int{31001}, orphans[0].Ports)
	tasks, err := s.ListTasks(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, tasks, "orphans are not the scheduler's tasks")

	require.NoError(t, s.ReportStatus(ctx, agentapi.StatusReport{AgentID: reg.AgentID, Statuses: []agentapi.TaskStatus{
		{TaskID: "web.1", AppID: "/web", State: marathon.TaskKilled}}}))
	orphans, err = s.ListOrphans(ctx)
	require.NoError(t, err)
	assert.Empty(t, orphans)
	list, err = s.Assignments(ctx, reg.AgentID, 0, time.Millisecond)
	require.NoError(t, err)
	assert.Empty(t, list.Unknown)
}

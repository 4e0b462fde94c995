package scheduler

import (
	"testing"

	"github.com/stretchr/testify/assert"

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

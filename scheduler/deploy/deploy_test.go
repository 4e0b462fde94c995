package deploy

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestClassify(t *testing.T) {
	base := marathon.App{ID: "/a", Cmd: "sleep 1", Instances: 1, Labels: map[string]string{}}
	scaled := base
	scaled.Instances = 3
	relabeled := base
	relabeled.Labels = map[string]string{"HAPROXY_GROUP": "x"}
	versioned := base
	versioned.Version = "2026-01-01T00:00:00.000Z"
	tests := []struct {
		name     string
		old, new *marathon.App
		want     string
	}{
		{"new app", nil, &base, ActionStart},
		{"removed app", &base, nil, ActionStop},
		{"scale only", &base, &scaled, ActionScale},
		{"label edit restarts", &base, &relabeled, ActionRestart},
		{"version ignored", &base, &versioned, ActionSteady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Classify(tc.old, tc.new))
		})
	}
}

func TestPlan(t *testing.T) {
	a := &marathon.App{ID: "/a", Instances: 1}
	b := &marathon.App{ID: "/b", Instances: 1, Dependencies: []string{"/a"}}
	b2 := *b
	b2.Instances = 2
	tests := []struct {
		name    string
		changes []Change
		want    []marathon.DeploymentStep
	}{
		{"create", []Change{{AppID: "/a", New: a}}, []marathon.DeploymentStep{
			{Actions: []marathon.DeploymentAction{{Action: ActionStart, App: "/a"}}},
			{Actions: []marathon.DeploymentAction{{Action: ActionScale, App: "/a"}}},
		}},
		{"create with dependency", []Change{{AppID: "/b", New: b}, {AppID: "/a", New: a}}, []marathon.DeploymentStep{
			{Actions: []marathon.DeploymentAction{{Action: ActionStart, App: "/a"}, {Action: ActionStart, App: "/b"}}},
			{Actions: []marathon.DeploymentAction{{Action: ActionScale, App: "/a"}}},
			{Actions: []marathon.DeploymentAction{{Action: ActionScale, App: "/b"}}},
		}},
		{"delete", []Change{{AppID: "/a", Old: a}}, []marathon.DeploymentStep{
			{Actions: []marathon.DeploymentAction{{Action: ActionStop, App: "/a"}}},
		}},
		{"scale", []Change{{AppID: "/b", Old: b, New: &b2}}, []marathon.DeploymentStep{
			{Actions: []marathon.DeploymentAction{{Action: ActionScale, App: "/b"}}},
		}},
		{"restart", []Change{{AppID: "/a", Old: a, New: a, Restart: true}}, []marathon.DeploymentStep{
			{Actions: []marathon.DeploymentAction{{Action: ActionRestart, App: "/a"}}},
		}},
		{"no change", []Change{{AppID: "/a", Old: a, New: a}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Plan(tc.changes))
		})
	}
}

func TestScaleVictims(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tasks := []Task{
		{ID: "old", Running: true, Healthy: true, StagedAt: t0},
		{ID: "mid", Running: true, Healthy: true, StagedAt: t0.Add(time.Second)},
		{ID: "young", Running: true, Healthy: true, StagedAt: t0.Add(2 * time.Second)},
		{ID: "staging", StagedAt: t0},
		{ID: "lost", Running: true, Unreachable: true, StagedAt: t0},
	}
	tests := []struct {
		name      string
		instances int
		selection string
		sentenced string
		want      []string
	}{
		{"youngest first", 2, YoungestFirst, "", []string{"lost", "staging", "young"}},
		{"oldest first", 2, OldestFirst, "", []string{"lost", "staging", "old"}},
		{"sentenced first", 4, YoungestFirst, "mid", []string{"mid"}},
		{"scale up", 7, YoungestFirst, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := append([]Task(nil), tasks...)
			for i := range ts {
				ts[i].Sentenced = ts[i].ID == tc.sentenced
			}
			out := Step(Input{Action: ActionScale, Instances: tc.instances, KillSelection: tc.selection, Tasks: ts})
			assert.Equal(t, tc.want, out.Kill)
			assert.Equal(t, max(tc.instances-len(tasks), 0), out.Launch)
			assert.False(t, out.Done)
		})
	}
}

func TestScaleDone(t *testing.T) {
	tasks := []Task{{ID: "a", Running: true, Healthy: true}, {ID: "b", Running: true}}
	assert.False(t, Step(Input{Action: ActionScale, Instances: 2, Tasks: tasks}).Done, "unhealthy task")
	tasks[1].Healthy = true
	assert.True(t, Step(Input{Action: ActionScale, Instances: 2, Tasks: tasks}).Done)
	assert.False(t, Step(Input{Action: ActionSteady, Instances: 2, Tasks: tasks}).Done, "steady never done")
	assert.Equal(t, Output{Kill: []string{"a", "b"}}, Step(Input{Action: ActionStop, Tasks: tasks}))
	assert.True(t, Step(Input{Action: ActionStop}).Done)
}

// simulate runs a restart to completion with instant kills and instant
// health, and returns the peak task count and the lowest healthy count.
func simulate(t *testing.T, n int, s marathon.UpgradeStrategy) (peak, minHealthy int) {
	t.Helper()
	type simTask struct{ Task }
	var tasks []*simTask
	for i := range n {
		tasks = append(tasks, &simTask{Task: Task{ID: fmt.Sprintf("old%d", i), Running: true, Healthy: true}})
	}
	minHealthy = n
	next := 0
	for tick := 0; tick < 100; tick++ {
		var in []Task
		for _, st := range tasks {
			in = append(in, st.Task)
		}
		out := Step(Input{Action: ActionRestart, Instances: n, Strategy: s, Tasks: in})
		if out.Done {
			for _, st := range tasks {
				require.True(t, st.Current)
			}
			require.Len(t, tasks, n)
			return peak, minHealthy
		}
		// Advance: killing tasks die, young tasks become healthy.
		var keep []*simTask
		for _, st := range tasks {
			if st.Killing {
				continue
			}
			if st.Current && !st.Healthy {
				st.Running, st.Healthy = true, true
			}
			keep = append(keep, st)
		}
		tasks = keep
		for _, id := range out.Kill {
			for _, st := range tasks {
				if st.ID == id {
					st.Killing = true
				}
			}
		}
		for range out.Launch {
			tasks = append(tasks, &simTask{Task: Task{ID: fmt.Sprintf("new%d", next), Current: true}})
			next++
		}
		healthy := 0
		for _, st := range tasks {
			if st.Healthy && !st.Killing {
				healthy++
			}
		}
		peak = max(peak, len(tasks))
		minHealthy = min(minHealthy, healthy)
	}
	t.Fatalf("restart %v did not finish", s)
	return 0, 0
}

func TestRestartStrategies(t *testing.T) {
	tests := []struct {
		name        string
		strategy    marathon.UpgradeStrategy
		wantPeak    int
		wantHealthy int
	}{
		{"default 1,1", marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}, 8, 4},
		{"half,0", marathon.UpgradeStrategy{MinimumHealthCapacity: 0.5, MaximumOverCapacity: 0}, 4, 2},
		{"0,0 downtime", marathon.UpgradeStrategy{MinimumHealthCapacity: 0, MaximumOverCapacity: 0}, 4, 0},
		{"1,0 one extra", marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 0}, 5, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			peak, low := simulate(t, 4, tc.strategy)
			assert.Equal(t, tc.wantPeak, peak, "peak tasks")
			assert.Equal(t, tc.wantHealthy, low, "lowest healthy count")
		})
	}
}

func TestRestartKillsSickOldOnceHealthy(t *testing.T) {
	tasks := []Task{
		{ID: "old", Running: true},
		{ID: "new", Current: true, Running: true, Healthy: true},
	}
	out := Step(Input{Action: ActionRestart, Instances: 1, Strategy: marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}, Tasks: tasks})
	assert.Equal(t, []string{"old"}, out.Kill)
	assert.False(t, out.Done)
}

func TestUnreadyTasksGateSteps(t *testing.T) {
	strategy := marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}
	old := func(id string) Task { return Task{ID: id, Running: true, Healthy: true} }
	fresh := func(id string, unready bool) Task {
		return Task{ID: id, Current: true, Running: true, Healthy: true, Unready: unready}
	}
	tests := []struct {
		name     string
		in       Input
		wantKill []string
		wantDone bool
	}{
		{"restart keeps old while new unready",
			Input{Action: ActionRestart, Instances: 2, Strategy: strategy, Tasks: []Task{old("o1"), old("o2"), fresh("n1", true), fresh("n2", true)}},
			nil, false},
		{"restart kills one old per ready new",
			Input{Action: ActionRestart, Instances: 2, Strategy: strategy, Tasks: []Task{old("o1"), old("o2"), fresh("n1", false), fresh("n2", true)}},
			[]string{"o1"}, false},
		{"restart done once all ready",
			Input{Action: ActionRestart, Instances: 2, Strategy: strategy, Tasks: []Task{fresh("n1", false), fresh("n2", false)}},
			nil, true},
		{"restart not done while one unready",
			Input{Action: ActionRestart, Instances: 2, Strategy: strategy, Tasks: []Task{fresh("n1", false), fresh("n2", true)}},
			nil, false},
		{"scale not done while unready",
			Input{Action: ActionScale, Instances: 2, Tasks: []Task{old("a"), fresh("b", true)}},
			nil, false},
		{"scale done when ready",
			Input{Action: ActionScale, Instances: 2, Tasks: []Task{old("a"), fresh("b", false)}},
			nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := Step(tc.in)
			assert.Equal(t, tc.wantKill, out.Kill)
			assert.Equal(t, tc.wantDone, out.Done)
			assert.Zero(t, out.Launch)
		})
	}
}

package agent_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// TestRecoveryAfterCrashWhileStarting: an agent killed between starting a
// task and saving its handle leaves a record without a handle. The next
// agent on the same data directory finds the task by its owner mark and
// adopts it (reported RUNNING, never FAILED, killed when unassigned); a
// task whose process never started is started again, not failed; a marked
// process with no record at all is killed.
func TestRecoveryAfterCrashWhileStarting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dataDir := t.TempDir()
	owner, err := filepath.Abs(dataDir)
	require.NoError(t, err)
	asg := func(id string) agentapi.Assignment {
		return agentapi.Assignment{TaskID: id, AppID: "/" + id[:len(id)-2], Version: "v1", Cmd: "exec sleep 300",
			KillGracePeriod: agentapi.Duration(time.Second)}
	}
	// What the crashed run left: records without handles for started.1
	// and never.1, and live marked processes for started.1 and ghost.1.
	require.NoError(t, os.MkdirAll(filepath.Join(dataDir, "tasks"), 0o755))
	for _, id := range []string{"started.1", "never.1"} {
		b, err := json.Marshal(map[string]any{"assignment": asg(id), "driver": "process"})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dataDir, "tasks", id+".json"), b, 0o644))
	}
	old := process.New(process.Config{PollInterval: 20 * time.Millisecond})
	ctx := context.Background()
	for _, id := range []string{"started.1", "ghost.1"} {
		_, err := old.StartTask(ctx, driver.TaskSpec{TaskID: id, Cmd: "exec sleep 300", Owner: owner,
			SandboxDir: filepath.Join(dataDir, "sandbox", id)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = old.DestroyTask(ctx, id, true) })
	}
	running := func(id string) bool {
		info, err := old.InspectTask(ctx, id)
		return err == nil && info.Running
	}

	f, url := newFakeScheduler(t)
	f.assign(asg("started.1"), asg("never.1"))
	_, pd, _ := runAgent(t, url, dataDir)

	require.Eventually(t, func() bool { return len(f.registrations()) > 0 }, 10*time.Second, 10*time.Millisecond)
	reg := f.registrations()[0]
	require.Len(t, reg.Tasks, 1, "the started task is announced at registration")
	assert.Equal(t, "started.1", reg.Tasks[0].TaskID)
	assert.Equal(t, marathon.TaskRunning, reg.Tasks[0].State)

	f.waitState(t, "never.1", marathon.TaskRunning)
	require.Eventually(t, func() bool { return !running("ghost.1") }, 10*time.Second, 10*time.Millisecond, "orphan killed")
	assert.True(t, running("started.1"), "adopted task keeps running")
	adopted, err := pd.PID("started.1")
	require.NoError(t, err)
	oldPID, err := old.PID("started.1")
	require.NoError(t, err)
	assert.Equal(t, oldPID, adopted, "the very same process is adopted")

	f.assign(asg("never.1"))
	f.waitState(t, "started.1", marathon.TaskKilled)
	require.Eventually(t, func() bool { return !running("started.1") }, 10*time.Second, 10*time.Millisecond)
	for _, id := range []string{"started.1", "never.1"} {
		assert.NotContains(t, f.states(id), marathon.TaskFailed, id)
	}
	assert.Empty(t, f.states("ghost.1"), "an orphan is not the scheduler's task")
}

// TestUnknownTasksHeldForGrace: a running task that a scheduler without
// state lists as unknown is not killed at once but after the reconcile
// grace; a task the scheduler simply stops assigning is killed at once.
func TestUnknownTasksHeldForGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tests := []struct {
		name  string
		grace time.Duration
	}{{"long grace", time.Hour}, {"short grace", 300 * time.Millisecond}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := newFakeScheduler(t)
			_, pd, _ := runAgent(t, url, t.TempDir(), func(c *agent.Config) { c.ReconcileGrace = tt.grace })
			asg := func(id string) agentapi.Assignment {
				return agentapi.Assignment{TaskID: id, AppID: "/web", Cmd: "exec sleep 300"}
			}
			f.assign(asg("kept.1"), asg("dropped.1"))
			f.waitState(t, "kept.1", marathon.TaskRunning)
			f.waitState(t, "dropped.1", marathon.TaskRunning)

			f.forgetTasks("kept.1")
			f.waitState(t, "dropped.1", marathon.TaskKilled)
			if tt.grace == time.Hour {
				// Several more polls (each one reconciles) leave it alone.
				polls := f.pollCount()
				require.Eventually(t, func() bool { return f.pollCount() >= polls+5 }, 10*time.Second, 10*time.Millisecond)
				info, err := pd.InspectTask(context.Background(), "kept.1")
				require.NoError(t, err)
				assert.True(t, info.Running, "held for the grace")
				assert.NotContains(t, f.states("kept.1"), marathon.TaskKilling)
				return
			}
			f.waitState(t, "kept.1", marathon.TaskKilled)
		})
	}
}

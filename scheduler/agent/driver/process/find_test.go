package process

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// TestFindTasks: tasks started with an owner are found by that owner alone
// (even when a task overrides the marker in its own env), with a handle a
// fresh driver can recover; unmarked tasks and other owners' are not.
func TestFindTasks(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	owner := "/var/lib/agent-" + t.Name()
	mine := spec(t, "mine.1", "exec sleep 60")
	mine.Owner = owner
	mine.Env = map[string]string{EnvOwner: "forged", EnvTaskID: "forged"}
	theirs := spec(t, "theirs.1", "exec sleep 60")
	theirs.Owner = owner + "-other"
	plain := spec(t, "plain.1", "exec sleep 60")
	for _, sp := range []driver.TaskSpec{mine, theirs, plain} {
		_, err := d.StartTask(ctx, sp)
		require.NoError(t, err)
	}

	hs, err := New(Config{}).FindTasks(ctx, owner)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, "mine.1", hs[0].TaskID)
	var st handleState
	require.NoError(t, json.Unmarshal(hs[0].State, &st))
	pid, err := d.PID("mine.1")
	require.NoError(t, err)
	assert.Equal(t, pid, st.PID)
	assert.Equal(t, mine.SandboxDir, st.SandboxDir)
	started, err := time.Parse(time.RFC3339Nano, st.StartedAt)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), started, time.Hour)

	fresh := New(Config{PollInterval: 20 * time.Millisecond})
	require.NoError(t, fresh.RecoverTask(ctx, &hs[0]))
	require.NoError(t, fresh.StopTask(ctx, "mine.1", time.Second))
	res := wait(t, d, "mine.1", 10*time.Second)
	assert.True(t, res.Killed || res.Signal != 0)

	hs, err = New(Config{}).FindTasks(ctx, owner)
	require.NoError(t, err)
	assert.Empty(t, hs, "a task that ended is not found")
}

// TestBackgroundChildrenDieWithTheTask: processes a marked task left in
// the background (even in a new session) are killed when the task is
// destroyed after its leader exited; KillStrays finds the leftovers of
// tasks that are not kept.
func TestBackgroundChildrenDieWithTheTask(t *testing.T) {
	d := newDriver(t)
	ctx := context.Background()
	owner := "/var/lib/agent-" + t.Name()
	sp := spec(t, "bg.1", "setsid sleep 60 & sleep 60 & echo started")
	sp.Owner = owner
	_, err := d.StartTask(ctx, sp)
	require.NoError(t, err)
	wait(t, d, "bg.1", 10*time.Second) // the leader exits at once
	require.Eventually(t, func() bool {
		procs, err := scanMarked(ctx, owner)
		return err == nil && len(procs) == 2
	}, 10*time.Second, 10*time.Millisecond, "two background children left")

	require.NoError(t, d.DestroyTask(ctx, "bg.1", true))
	require.Eventually(t, func() bool {
		procs, err := scanMarked(ctx, owner)
		return err == nil && len(procs) == 0
	}, 10*time.Second, 10*time.Millisecond, "background children killed")

	other := spec(t, "keep.1", "exec sleep 60")
	other.Owner = owner
	_, err = d.StartTask(ctx, other)
	require.NoError(t, err)
	stray := spec(t, "stray.1", "exec sleep 60")
	stray.Owner = owner
	_, err = d.StartTask(ctx, stray)
	require.NoError(t, err)
	n, err := New(Config{}).KillStrays(ctx, owner, func(id string) bool { return id == "keep.1" })
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	wait(t, d, "stray.1", 10*time.Second)
	info, err := d.InspectTask(ctx, "keep.1")
	require.NoError(t, err)
	assert.True(t, info.Running)
}

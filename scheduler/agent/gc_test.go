package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// nopDriver satisfies driver.Driver for tests that never run a task.
type nopDriver struct{}

func (nopDriver) Name() string { return "process" }
func (nopDriver) StartTask(context.Context, driver.TaskSpec) (*driver.TaskHandle, error) {
	return nil, driver.ErrTaskNotFound
}
func (nopDriver) WaitTask(context.Context, string) (<-chan driver.ExitResult, error) {
	return nil, driver.ErrTaskNotFound
}
func (nopDriver) StopTask(context.Context, string, time.Duration) error { return nil }
func (nopDriver) DestroyTask(context.Context, string, bool) error       { return nil }
func (nopDriver) RecoverTask(context.Context, *driver.TaskHandle) error {
	return driver.ErrTaskNotFound
}
func (nopDriver) InspectTask(context.Context, string) (*driver.TaskInfo, error) {
	return nil, driver.ErrTaskNotFound
}

func TestGCSandboxes(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Config{SchedulerURL: "http://x", DataDir: dir, Drivers: map[string]driver.Driver{"process": nopDriver{}}, SandboxRetention: time.Minute})
	require.NoError(t, err)
	old := time.Now().Add(-time.Hour)
	mk := func(id string, mtime time.Time) string {
		p := filepath.Join(a.store.sandboxRoot(), id)
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "stderr"), []byte("x"), 0o644))
		require.NoError(t, os.Chtimes(p, mtime, mtime))
		return p
	}
	expired := mk("old.1", old)
	recent := mk("new.1", time.Now())
	recorded := mk("rec.1", old)
	require.NoError(t, a.store.putTask(taskRecord{Assignment: agentapi.Assignment{TaskID: "rec.1"}}))
	running := mk("run.1", old)
	a.tasks["run.1"] = newTaskRunner(a, agentapi.Assignment{TaskID: "run.1"})

	a.gcSandboxes()
	for p, keep := range map[string]bool{expired: false, recent: true, recorded: true, running: true} {
		_, err := os.Stat(p)
		assert.Equal(t, keep, err == nil, "sandbox %s kept", filepath.Base(p))
	}
}

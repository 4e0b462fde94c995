package state

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// TestRollback: Rollback undoes, in memory, every change since Begin:
// keys flushed before get the database's value back, keys changed but not
// flushed before Begin get that pending value back (and stay pending),
// stored versions follow, and task health is kept.
func TestRollback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	app := func(id, version string) *App {
		return &App{Def: marathon.App{ID: id, Cmd: "x", Version: version, Labels: map[string]string{}}}
	}
	s.PutApp(app("/a", "v1"))
	s.PutTask(&Task{ID: "a.1", AppID: "/a", State: marathon.TaskRunning})
	require.NoError(t, s.Flush())
	s.PutTask(&Task{ID: "a.2", AppID: "/a", State: marathon.TaskStaging}) // pending before Begin
	pending := s.Pending()

	s.Begin()
	a, _ := s.App("/a")
	a.Def.Cmd = "changed in place"
	a.Def.Version = "v2"
	s.PutApp(a)
	s.PutApp(app("/b", "v1"))
	t1, _ := s.Task("a.1")
	t1.Health = []marathon.HealthCheckResult{{Alive: true}}
	t1.State = marathon.TaskKilling
	s.PutTask(t1)
	s.DeleteTask("a.2")
	s.PutCallback("http://h/cb")
	require.NoError(t, s.Rollback())

	got, ok := s.App("/a")
	require.True(t, ok)
	assert.Equal(t, "x", got.Def.Cmd)
	assert.Equal(t, "v1", got.Def.Version)
	assert.Equal(t, []string{"v1"}, s.AppVersions("/a"))
	_, ok = s.AppVersion("/a", "v2")
	assert.False(t, ok)
	_, ok = s.App("/b")
	assert.False(t, ok)
	assert.Empty(t, s.AppVersions("/b"))
	got1, _ := s.Task("a.1")
	assert.Equal(t, marathon.TaskRunning, got1.State)
	assert.Equal(t, []marathon.HealthCheckResult{{Alive: true}}, got1.Health, "health is not persisted, so kept")
	got2, ok := s.Task("a.2")
	require.True(t, ok, "the change pending before Begin is back")
	assert.Equal(t, marathon.TaskStaging, got2.State)
	assert.Empty(t, s.Callbacks())
	assert.Equal(t, pending, s.Pending(), "only what was pending before Begin is pending")

	require.NoError(t, s.Close())
	s, err = Open(path)
	require.NoError(t, err)
	_, ok = s.Task("a.2")
	assert.True(t, ok, "the pending change was still written")
	_, ok = s.App("/b")
	assert.False(t, ok)
}

// TestRollbackCoversEveryBucket: Rollback can restore a key of every
// bucket the store persists (a new bucket needs a case in restore).
func TestRollbackCoversEveryBucket(t *testing.T) {
	s, err := Open("")
	require.NoError(t, err)
	for _, b := range allBuckets {
		assert.NoError(t, s.restore(dirtyKey{bucket: string(b), key: "k\x00v"}, nil), "bucket %s", b)
	}
}

package scheduler

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// smallDisk mounts a tmpfs of size bytes for the test (root only).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fillDisk writes a file into dir until the file system is full and
// returns a function that frees the space.
func fillDisk(t *testing.T, dir string) func() {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	require.NoError(t, err)
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling the disk: %v", err)
			break
		}
	}
	require.NoError(t, f.Close())
	return func() { require.NoError(t, os.Remove(p)) }
}

// TestStoreFailureIsNotApplied: when the store cannot write a change (disk
// full), the change is answered 503 with the store's message, is rolled
// back in memory, publishes none of its events and never reaches disk
// later; once there is space again, writes work and survive a restart.
func TestStoreFailureIsNotApplied(t *testing.T) {
	dir := smallDisk(t, "2m")
	ctx := context.Background()
	s, err := New(Config{Leader: "h:8080", Logger: quiet(), DataDir: dir})
	require.NoError(t, err)
	_, err = s.CreateApp(ctx, hostApp("/a", 0), false, "", "")
	require.NoError(t, err)
	events, unsubscribe := s.Subscribe("test")
	defer unsubscribe()
	require.Equal(t, marathon.EventStreamAttached, (<-events).Type)

	free := fillDisk(t, dir)
	big := hostApp("/big", 0)
	big.Labels["BLOB"] = strings.Repeat("x", 512<<10)
	_, err = s.CreateApp(ctx, big, false, "", "")
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusServiceUnavailable, ae.Status)
	assert.Contains(t, ae.Body.Message, "no space left on device")
	_, err = s.GetApp(ctx, "/big")
	require.ErrorIs(t, err, ErrNotFound, "rolled back in memory")
	apps, err := s.ListApps(ctx)
	require.NoError(t, err)
	require.Len(t, apps, 1)
	assert.Equal(t, 10000, apps[0].Ports[0], "the service port given to /big is free again")
	deps, err := s.ListDeployments(ctx)
	require.NoError(t, err)
	assert.Empty(t, deps)
	for _, typ := range drain(events) {
		assert.NotContains(t, []string{marathon.EventAPIPost, marathon.EventGroupChangeSuccess, marathon.EventDeploymentInfo}, typ,
			"no event of a change that was not applied")
	}

	free()
	s.reconcile()
	require.NoError(t, s.store.Flush())
	big.ID = "/big2"
	_, err = s.CreateApp(ctx, big, false, "", "")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s2, err := New(Config{Leader: "h:8080", Logger: quiet(), DataDir: dir})
	require.NoError(t, err)
	defer s2.Close()
	_, err = s2.GetApp(ctx, "/big")
	assert.ErrorIs(t, err, ErrNotFound, "the refused change never reached disk")
	_, err = s2.GetApp(ctx, "/big2")
	assert.NoError(t, err)
	_, err = s2.GetApp(ctx, "/a")
	assert.NoError(t, err)
}

// drain returns the types of the events queued on ch.
func drain(ch <-chan marathon.Event) []string {
	var out []string
	for {
		select {
		case ev := <-ch:
			out = append(out, ev.Type)
		default:
			return out
		}
	}
}

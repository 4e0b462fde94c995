package state

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestGroupsAndVersionsPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	require.NoError(t, err)
	s.PutGroup(marathon.GroupMeta{ID: "/tools", EnforceRole: true, Version: "v1"})
	s.PutGroup(marathon.GroupMeta{ID: "/tools/log"})
	s.PutGroup(marathon.GroupMeta{ID: "/gone"})
	s.DeleteGroup("/gone")
	a := marathon.App{ID: "/tools/a", Version: "2024-01-01T00:00:00.000Z", Cmd: "x"}
	s.AddGroupVersion(GroupVersion{Version: "2024-01-01T00:00:00.000Z", Groups: s.Groups(), Apps: map[string]string{a.ID: a.Version}}, []marathon.App{a})
	require.NoError(t, s.Close())

	s, err = Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	assert.Equal(t, []marathon.GroupMeta{{ID: "/tools", EnforceRole: true, Version: "v1"}, {ID: "/tools/log"}}, s.Groups())
	assert.Equal(t, []string{"2024-01-01T00:00:00.000Z"}, s.GroupVersions())
	gv, apps, ok := s.GroupVersion("2024-01-01T00:00:00.000Z")
	require.True(t, ok)
	assert.Len(t, gv.Groups, 2)
	assert.Equal(t, []marathon.App{a}, apps)
}

func TestGroupVersionsPruned(t *testing.T) {
	s, err := Open("")
	require.NoError(t, err)
	for i := range MaxVersions + 3 {
		v := fmt.Sprintf("2024-01-01T00:00:%02d.000Z", i)
		a := marathon.App{ID: "/a", Version: v}
		s.AddGroupVersion(GroupVersion{Version: v, Apps: map[string]string{"/a": v}}, []marathon.App{a})
	}
	vs := s.GroupVersions()
	require.Len(t, vs, MaxVersions)
	assert.Equal(t, "2024-01-01T00:00:03.000Z", vs[0], "the oldest are dropped")
	_, _, ok := s.GroupVersion("2024-01-01T00:00:00.000Z")
	assert.False(t, ok)
	s.mu.RLock()
	defer s.mu.RUnlock()
	assert.Len(t, s.gdefs, MaxVersions, "definitions of dropped versions are dropped")
}

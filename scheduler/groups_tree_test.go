package scheduler

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/state"
)

func treeApp(id string) marathon.App {
	return marathon.App{ID: id, Cmd: "x", Instances: 0, CPUs: 0.1, Mem: 16}
}

// setTree replaces group id with apps and groups.
func setTree(t *testing.T, s *Scheduler, id string, apps []marathon.App, groups []marathon.GroupMeta) marathon.DeploymentResult {
	t.Helper()
	res, _, err := s.UpdateGroupTree(context.Background(), id, func([]marathon.App, []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		return apps, groups, nil
	}, true, false, "", "")
	require.NoError(t, err)
	return res
}

func TestEmptyGroupsAndGroupVersions(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	v1 := setTree(t, s, "/tools", []marathon.App{treeApp("/tools/a")}, []marathon.GroupMeta{{ID: "/tools"}, {ID: "/tools/log"}})
	groups, err := s.ListGroups(ctx)
	require.NoError(t, err)
	require.Len(t, groups, 2)
	assert.Equal(t, "/tools/log", groups[1].ID, "an empty group is stored")
	assert.Equal(t, v1.Version, groups[1].Version)

	// Replace the group: /tools/log goes, /tools/b replaces /tools/a.
	v2 := setTree(t, s, "/tools", []marathon.App{treeApp("/tools/b")}, []marathon.GroupMeta{{ID: "/tools"}})
	groups, err = s.ListGroups(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"/tools"}, ids(groups))

	vs, err := s.GroupVersions(ctx, "/")
	require.NoError(t, err)
	assert.Equal(t, []string{v2.Version, v1.Version}, vs, "newest first")
	vs, err = s.GroupVersions(ctx, "/tools")
	require.NoError(t, err)
	assert.Equal(t, []string{v2.Version, v1.Version}, vs)
	_, err = s.GroupVersions(ctx, "/tools/log")
	assertStatus(t, err, http.StatusNotFound, "a group that does not exist now")

	apps, gs, err := s.GroupVersion(ctx, "/tools", v1.Version)
	require.NoError(t, err)
	require.Len(t, apps, 1)
	assert.Equal(t, "/tools/a", apps[0].ID)
	assert.Equal(t, []string{"/tools", "/tools/log"}, ids(gs))
	_, _, err = s.GroupVersion(ctx, "/tools", "2000-01-01T00:00:00.000Z")
	assertStatus(t, err, http.StatusNotFound, "unknown version")

	// Roll back to v1 with what GroupVersion returned.
	setTree(t, s, "/tools", apps, gs)
	all, err := s.ListApps(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "/tools/a", all[0].ID)
	groups, err = s.ListGroups(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"/tools", "/tools/log"}, ids(groups))

	// Deleting the group removes its stored groups too.
	setTree(t, s, "/tools", nil, nil)
	groups, err = s.ListGroups(ctx)
	require.NoError(t, err)
	assert.Empty(t, groups)
}

func TestGroupAppClash(t *testing.T) {
	s := newTestScheduler(t)
	setTree(t, s, "/", []marathon.App{treeApp("/a")}, nil)
	_, _, err := s.UpdateGroupTree(context.Background(), "/a", func([]marathon.App, []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		return nil, []marathon.GroupMeta{{ID: "/a"}}, nil
	}, true, false, "", "")
	assertInvalid(t, err, msgSameID)
	_, _, err = s.UpdateGroupTree(context.Background(), "/a", func([]marathon.App, []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		return nil, []marathon.GroupMeta{{ID: "/a/sub"}}, nil
	}, true, false, "", "")
	assertInvalid(t, err, msgSameID)

	setTree(t, s, "/e", nil, []marathon.GroupMeta{{ID: "/e"}})
	_, err = s.CreateApp(context.Background(), treeApp("/e"), false, "", "")
	assertInvalid(t, err, msgSameID)
}

func TestPatchGroupAndRoles(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	assertStatus(t, s.PatchGroup(ctx, "/dev", true), http.StatusNotFound, "unknown group")
	setTree(t, s, "/dev", []marathon.App{treeApp("/dev/old")}, nil)
	assertStatus(t, s.PatchGroup(ctx, "/dev/sub", true), http.StatusUnprocessableEntity, "not top-level")

	before, err := s.GroupVersions(ctx, "/")
	require.NoError(t, err)
	require.NoError(t, s.PatchGroup(ctx, "/dev", true))
	after, err := s.GroupVersions(ctx, "/")
	require.NoError(t, err)
	assert.Len(t, after, len(before)+1, "a patch is a new group version")

	created, err := s.CreateApp(ctx, treeApp("/dev/new"), false, "", "")
	require.NoError(t, err)
	assert.Equal(t, "dev", created.Role, "enforceRole: the group role")
	top, err := s.CreateApp(ctx, treeApp("/top"), false, "", "")
	require.NoError(t, err)
	assert.Equal(t, "*", top.Role, "root apps: the default role")
	old, err := s.GetApp(ctx, "/dev/old")
	require.NoError(t, err)
	assert.Equal(t, "*", old.Role, "existing apps keep their role")

	given := treeApp("/dev/given")
	given.Role = "*"
	got, err := s.CreateApp(ctx, given, false, "", "")
	require.NoError(t, err)
	assert.Equal(t, "*", got.Role, "a role given is kept")

	require.NoError(t, s.PatchGroup(ctx, "/dev", false))
	groups, err := s.ListGroups(ctx)
	require.NoError(t, err)
	require.Len(t, groups, 1)
	assert.False(t, groups[0].EnforceRole)
}

func ids(gs []marathon.GroupMeta) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func assertStatus(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var ae *APIError
	require.ErrorAs(t, err, &ae, msg)
	assert.Equal(t, status, ae.Status, msg)
}

func TestTaskRole(t *testing.T) {
	assert.Equal(t, "dev", toTask(&state.Task{ID: "a.1", Role: "dev"}).Role)
	assert.Equal(t, "*", toTask(&state.Task{ID: "a.1"}).Role, "launched before tasks had roles")
}

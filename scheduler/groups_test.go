package scheduler

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestCheckIDClash(t *testing.T) {
	final := map[string]bool{"/a/b": true, "/c": true, "/d/e/f": true}
	tests := []struct {
		name    string
		changed []string
		clash   bool
	}{
		{"new sibling", []string{"/a/x"}, false},
		{"app equals group", []string{"/a"}, true},
		{"app equals nested group", []string{"/d/e"}, true},
		{"app under app", []string{"/c/x"}, true},
		{"deep under app", []string{"/a/b/x/y"}, true},
		{"top level", []string{"/z"}, false},
		{"app equals a stored empty group", []string{"/empty/sub"}, true},
		{"app equals the parent of a stored group", []string{"/empty"}, true},
		{"app in a stored group", []string{"/empty/sub/x"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := map[string]bool{}
			for k := range final {
				f[k] = true
			}
			for _, id := range tc.changed {
				f[id] = true
			}
			err := checkIDClash(f, map[string]bool{"/empty/sub": true}, tc.changed, "/id")
			if !tc.clash {
				assert.NoError(t, err)
				return
			}
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, http.StatusUnprocessableEntity, ae.Status)
			assert.Equal(t, "/id", ae.Body.Details[0].Path)
			assert.Contains(t, ae.Body.Details[0].Errors[0], msgSameID)
		})
	}
}

func TestUpdateGroupRejects(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	app := func(id string) marathon.App {
		return marathon.App{ID: id, Cmd: "x", Instances: 0, CPUs: 0.1, Mem: 16}
	}
	_, _, err := s.UpdateGroup(ctx, "/g", func([]marathon.App) ([]marathon.App, error) {
		return []marathon.App{app("/elsewhere")}, nil
	}, false, false, "", "")
	assertInvalid(t, err, "is not in group")
	_, _, err = s.UpdateGroup(ctx, "/g", func([]marathon.App) ([]marathon.App, error) {
		return []marathon.App{app("/g/a"), app("/g/a")}, nil
	}, false, false, "", "")
	assertInvalid(t, err, "more than once")

	res, _, err := s.UpdateGroup(ctx, "/g", func(cur []marathon.App) ([]marathon.App, error) {
		assert.Empty(t, cur)
		return []marathon.App{app("/g/b"), app("/g/a")}, nil
	}, false, false, "", "")
	require.NoError(t, err)
	assert.NotEmpty(t, res.DeploymentID)
	_, steps, err := s.UpdateGroup(ctx, "/g", func(cur []marathon.App) ([]marathon.App, error) {
		require.Len(t, cur, 2)
		assert.Equal(t, "/g/a", cur[0].ID, "current is sorted")
		return cur[:1], nil
	}, false, true, "", "")
	require.NoError(t, err)
	assert.Equal(t, []marathon.DeploymentStep{{Actions: []marathon.DeploymentAction{{Action: "StopApplication", App: "/g/b"}}}}, steps)
	apps, err := s.ListApps(ctx)
	require.NoError(t, err)
	assert.Len(t, apps, 2, "dry run changed nothing")
}

func assertInvalid(t *testing.T, err error, want string) {
	t.Helper()
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusUnprocessableEntity, ae.Status)
	require.NotEmpty(t, ae.Body.Details)
	assert.Contains(t, ae.Body.Details[0].Errors[0], want)
}

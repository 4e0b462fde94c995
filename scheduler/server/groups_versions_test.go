package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/scheduler"
)

// The scheduler stores groups and group versions.
var _ httpapi.GroupTreeService = (*scheduler.Scheduler)(nil)

type groupInfo struct {
	ID          string          `json:"id"`
	Apps        []marathon.App  `json:"apps"`
	Groups      []groupInfo     `json:"groups"`
	Version     string          `json:"version"`
	EnforceRole *bool           `json:"enforceRole"`
	Raw         json.RawMessage `json:"-"`
}

func (g groupInfo) sub(id string) *groupInfo {
	for i := range g.Groups {
		if g.Groups[i].ID == id {
			return &g.Groups[i]
		}
	}
	return nil
}

func TestGroupVersionsAndEmptyGroups(t *testing.T) {
	e := newEnv(t, envOpts{})
	// Marathon's own group example has an empty group, /tools/log.
	var v1 marathon.DeploymentResult
	e.doJSON("POST", "/v2/groups", map[string]any{
		"id":     "/tools",
		"apps":   []any{groupApp("oauth", 0)},
		"groups": []any{map[string]any{"id": "log"}},
	}, http.StatusCreated, &v1)

	var root groupInfo
	e.doJSON("GET", "/v2/groups", nil, http.StatusOK, &root)
	tools := root.sub("/tools")
	require.NotNil(t, tools)
	log := tools.sub("/tools/log")
	require.NotNil(t, log, "the empty group is listed")
	assert.Empty(t, log.Apps)
	assert.Equal(t, v1.Version, log.Version)
	require.NotNil(t, tools.EnforceRole)
	assert.False(t, *tools.EnforceRole)
	var g groupInfo
	e.doJSON("GET", "/v2/groups/tools/log", nil, http.StatusOK, &g)
	assert.Equal(t, "/tools/log", g.ID)

	// Replace the group: a new app, no subgroups.
	var v2 marathon.DeploymentResult
	e.doJSON("PUT", "/v2/groups/tools", map[string]any{"apps": []any{groupApp("proxy", 0)}, "groups": []any{}}, http.StatusOK, &v2)
	code, _, _ := e.do("GET", "/v2/groups/tools/log", nil)
	assert.Equal(t, http.StatusNotFound, code, "the subgroup is gone")

	// Versions: of the root and of a group; "versions" is not a group id.
	var vs []string
	e.doJSON("GET", "/v2/groups/versions", nil, http.StatusOK, &vs)
	require.GreaterOrEqual(t, len(vs), 2)
	assert.Equal(t, []string{v2.Version, v1.Version}, vs[:2], "newest first")
	e.doJSON("GET", "/v2/groups/tools/versions", nil, http.StatusOK, &vs)
	assert.Equal(t, []string{v2.Version, v1.Version}, vs)
	code, _, _ = e.do("GET", "/v2/groups/nope/versions", nil)
	assert.Equal(t, http.StatusNotFound, code)

	// One version of a group: its definitions then.
	var rootThen groupInfo
	e.doJSON("GET", "/v2/groups/versions/"+v1.Version, nil, http.StatusOK, &rootThen)
	assert.Equal(t, "/", rootThen.ID)
	assert.NotNil(t, rootThen.sub("/tools"))
	e.doJSON("GET", "/v2/groups/tools/versions/"+v1.Version, nil, http.StatusOK, &g)
	assert.Equal(t, "/tools", g.ID)
	require.Len(t, g.Apps, 1)
	assert.Equal(t, "/tools/oauth", g.Apps[0].ID)
	assert.NotNil(t, g.sub("/tools/log"))

	// Roll back to v1: oauth and the empty log group return.
	var rb marathon.DeploymentResult
	e.doJSON("PUT", "/v2/groups/tools", map[string]any{"version": v1.Version}, http.StatusOK, &rb)
	assert.NotEmpty(t, rb.DeploymentID)
	e.doJSON("GET", "/v2/groups/tools", nil, http.StatusOK, &g)
	require.Len(t, g.Apps, 1)
	assert.Equal(t, "/tools/oauth", g.Apps[0].ID)
	assert.NotNil(t, g.sub("/tools/log"))
	code, _, _ = e.do("PUT", "/v2/groups/tools", map[string]any{"version": "2001-01-01T00:00:00.000Z"})
	assert.Equal(t, http.StatusNotFound, code, "unknown version")

	// An empty group can be created on its own and deleted.
	e.doJSON("POST", "/v2/groups", map[string]any{"id": "/empty"}, http.StatusCreated, nil)
	e.doJSON("GET", "/v2/groups/empty", nil, http.StatusOK, &g)
	assert.Empty(t, g.Apps)
	e.doJSON("DELETE", "/v2/groups/empty", nil, http.StatusOK, nil)
	code, _, _ = e.do("GET", "/v2/groups/empty", nil)
	assert.Equal(t, http.StatusNotFound, code)
}

func TestPatchGroupEnforceRole(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.doJSON("POST", "/v2/groups", map[string]any{"id": "/dev", "apps": []any{groupApp("old", 0)}}, http.StatusCreated, nil)
	assert.Equal(t, "*", e.app("/dev/old").Role, "the default role")

	code, body, _ := e.do("PATCH", "/v2/groups/dev", map[string]any{"enforceRole": true})
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Empty(t, body)
	var g groupInfo
	e.doJSON("GET", "/v2/groups/dev", nil, http.StatusOK, &g)
	require.NotNil(t, g.EnforceRole)
	assert.True(t, *g.EnforceRole)

	createApp(e, groupApp("/dev/new", 0))
	assert.Equal(t, "dev", e.app("/dev/new").Role, "enforceRole: the group role")
	assert.Equal(t, "*", e.app("/dev/old").Role, "existing apps keep theirs")

	code, _, _ = e.do("PATCH", "/v2/groups/nope", map[string]any{"enforceRole": true})
	assert.Equal(t, http.StatusNotFound, code)
	code, _, _ = e.do("PATCH", "/v2/groups/dev/sub", map[string]any{"enforceRole": true})
	assert.Equal(t, http.StatusUnprocessableEntity, code, "only top-level groups")
	code, _, _ = e.do("PATCH", "/v2/groups", map[string]any{"enforceRole": true})
	assert.Equal(t, http.StatusMethodNotAllowed, code, "the root has no PATCH")

	// enforceRole can be given when a top-level group is created, not on
	// a subgroup.
	e.doJSON("POST", "/v2/groups", map[string]any{"id": "/ops", "enforceRole": true}, http.StatusCreated, nil)
	createApp(e, groupApp("/ops/a", 0))
	assert.Equal(t, "ops", e.app("/ops/a").Role)
	code, body, _ = e.do("POST", "/v2/groups", map[string]any{"id": "/ops/sub", "enforceRole": true})
	assert.Equal(t, http.StatusUnprocessableEntity, code, string(body))
}

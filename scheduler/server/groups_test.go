package server_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/scheduler"
)

// The scheduler serves the write side of /v2/groups.
var _ httpapi.GroupService = (*scheduler.Scheduler)(nil)

func groupApp(id string, instances int) map[string]any {
	return map[string]any{"id": id, "cmd": "sleep 1000", "instances": instances, "cpus": 0.1, "mem": 16}
}

func TestGroupWriteLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	s := openStream(t, e, "")
	require.Equal(t, marathon.EventStreamAttached, s.next().event)

	// POST a group with two apps (one in a subgroup): both run.
	var res marathon.DeploymentResult
	hdr := e.doJSON("POST", "/v2/groups", map[string]any{
		"id":     "/shop",
		"apps":   []any{groupApp("web", 1)},
		"groups": []any{map[string]any{"id": "db", "apps": []any{groupApp("pg", 2)}}},
	}, http.StatusCreated, &res)
	require.NotEmpty(t, res.DeploymentID)
	assert.Equal(t, res.DeploymentID, hdr.Get("Marathon-Deployment-Id"))
	assert.NotEmpty(t, res.Version)
	var groupID string
	s.until(marathon.EventGroupChangeSuccess, func(f frame) {
		if f.event == marathon.EventGroupChangeSuccess {
			var ev marathon.GroupChangeEvent
			require.NoError(t, json.Unmarshal([]byte(f.data), &ev))
			groupID = ev.GroupID
		}
	})
	assert.Equal(t, "/shop", groupID)
	s.until(marathon.EventDeploymentSuccess, nil)
	e.settled("/shop/web", 1)
	e.settled("/shop/db/pg", 2)

	// The group is visible through GET.
	var g struct {
		ID     string `json:"id"`
		Apps   []marathon.App
		Groups []struct {
			ID   string `json:"id"`
			Apps []marathon.App
		}
	}
	e.doJSON("GET", "/v2/groups/shop", nil, http.StatusOK, &g)
	require.Len(t, g.Apps, 1)
	assert.Equal(t, "/shop/web", g.Apps[0].ID)
	require.Len(t, g.Groups, 1)
	assert.Equal(t, "/shop/db", g.Groups[0].ID)

	// POST again: 409.
	code, body, _ := e.do("POST", "/v2/groups", map[string]any{"id": "shop", "apps": []any{groupApp("x", 1)}})
	assert.Equal(t, http.StatusConflict, code)
	assert.JSONEq(t, `{"message":"Group /shop is already created. Use PUT to change this group."}`, string(body))

	// dryRun lists the steps and changes nothing.
	var dry struct {
		Steps []marathon.DeploymentStep `json:"steps"`
	}
	e.doJSON("PUT", "/v2/groups/shop?dryRun=true", map[string]any{"scaleBy": 2}, http.StatusOK, &dry)
	require.Len(t, dry.Steps, 1)
	assert.Equal(t, []marathon.DeploymentAction{
		{Action: "ScaleApplication", App: "/shop/db/pg"}, {Action: "ScaleApplication", App: "/shop/web"},
	}, dry.Steps[0].Actions)
	assert.Equal(t, 1, e.app("/shop/web").Instances)
	assert.Empty(t, e.deployments())

	// scaleBy 2 doubles every app.
	e.doJSON("PUT", "/v2/groups/shop", map[string]any{"scaleBy": 2}, http.StatusOK, &res)
	e.settled("/shop/web", 2)
	e.settled("/shop/db/pg", 4)

	// PUT with a group body: listed apps are created or updated, unlisted
	// direct apps removed, subgroups kept when "groups" is absent.
	e.doJSON("PUT", "/v2/groups/shop", map[string]any{"apps": []any{groupApp("api", 1)}}, http.StatusOK, &res)
	e.settled("/shop/api", 1)
	assert.Nil(t, e.running("/shop/web"), "/shop/web removed")
	e.settled("/shop/db/pg", 4)

	// Resubmitting the same definition is no change.
	webPort := map[string]any{"id": "api", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
		"portDefinitions": []any{map[string]any{"port": 0}}}
	e.doJSON("PUT", "/v2/groups/shop", map[string]any{"apps": []any{webPort}}, http.StatusOK, &res)
	e.settled("/shop/api", 1)
	e.doJSON("PUT", "/v2/groups/shop?dryRun=true", map[string]any{"apps": []any{webPort}}, http.StatusOK, &dry)
	assert.Empty(t, dry.Steps)

	// DELETE stops both apps and emits app_terminated_event for each.
	hdr = e.doJSON("DELETE", "/v2/groups/shop", nil, http.StatusOK, &res)
	assert.Equal(t, res.DeploymentID, hdr.Get("Marathon-Deployment-Id"))
	// Earlier deployments' events are still queued in the stream (the
	// PUT terminated /shop/web): read until every app is terminated.
	terminated := map[string]bool{}
	for !terminated["/shop/api"] || !terminated["/shop/db/pg"] {
		f := s.next()
		if f.event == marathon.EventAppTerminated {
			var ev marathon.AppTerminatedEvent
			require.NoError(t, json.Unmarshal([]byte(f.data), &ev))
			terminated[ev.AppID] = true
		}
	}
	assert.Equal(t, map[string]bool{"/shop/web": true, "/shop/api": true, "/shop/db/pg": true}, terminated)
	e.waitFor("group deleted", func() bool { return len(e.deployments()) == 0 })
	var apps marathon.AppsResponse
	e.doJSON("GET", "/v2/apps", nil, http.StatusOK, &apps)
	assert.Empty(t, apps.Apps)
	e.waitFor("agent idle", func() bool { return len(e.agents[0].Tasks()) == 0 })
	code, body, _ = e.do("DELETE", "/v2/groups/shop", nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"message":"Group '/shop' does not exist"}`, string(body))
}

func TestGroupWriteConflicts(t *testing.T) {
	e := newEnv(t, envOpts{})
	// Without agents deployments stay running, so locks can be observed.
	var res marathon.DeploymentResult
	e.doJSON("POST", "/v2/groups", map[string]any{"id": "/g", "apps": []any{groupApp("a", 1)}}, http.StatusCreated, &res)

	// Locked by the running deployment.
	code, body, _ := e.do("PUT", "/v2/groups/g", map[string]any{"scaleBy": 2})
	assert.Equal(t, http.StatusConflict, code)
	var locked marathon.ErrorResponse
	require.NoError(t, json.Unmarshal(body, &locked))
	assert.Contains(t, locked.Message, "locked")
	assert.Equal(t, []marathon.DeploymentRef{{ID: res.DeploymentID}}, locked.Deployments)
	code, _, _ = e.do("DELETE", "/v2/groups/g", nil)
	assert.Equal(t, http.StatusConflict, code)
	e.doJSON("PUT", "/v2/groups/g?force=true", map[string]any{"scaleBy": 2}, http.StatusOK, &res)
	assert.Equal(t, 2, e.app("/g/a").Instances)
	e.doJSON("DELETE", "/v2/groups/g?force=true", nil, http.StatusOK, &res)
	code, _, _ = e.do("GET", "/v2/apps/g/a", nil)
	assert.Equal(t, http.StatusNotFound, code)
}

func TestGroupWriteIDClash(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.doJSON("POST", "/v2/apps", groupApp("/x", 0), http.StatusCreated, nil)
	e.doJSON("POST", "/v2/groups", map[string]any{"id": "/g", "apps": []any{groupApp("a", 0)}}, http.StatusCreated, nil)
	e.waitFor("deployments done", func() bool { return len(e.deployments()) == 0 })

	clash := func(method, path string, body any) {
		t.Helper()
		code, data, _ := e.do(method, path, body)
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s %s: %s", method, path, data)
		var er marathon.ErrorResponse
		require.NoError(t, json.Unmarshal(data, &er))
		require.NotEmpty(t, er.Details, "%s", data)
		assert.Contains(t, er.Details[0].Errors[0], "Groups and Applications may not have the same identifier.")
	}
	// An app whose id is a group.
	clash("POST", "/v2/apps", groupApp("/g", 1))
	clash("PUT", "/v2/apps/g", groupApp("/g", 1))
	// An app under an app.
	clash("POST", "/v2/apps", groupApp("/x/y", 1))
	// A group whose id is an app.
	clash("POST", "/v2/groups", map[string]any{"id": "/x", "apps": []any{groupApp("y", 1)}})
	clash("PUT", "/v2/groups/x", map[string]any{"apps": []any{groupApp("y", 1)}})
	// An app in a group that equals a group made by another app of it.
	clash("POST", "/v2/groups", map[string]any{"id": "/n", "apps": []any{groupApp("s", 1)},
		"groups": []any{map[string]any{"id": "s", "apps": []any{groupApp("t", 1)}}}})

	var apps marathon.AppsResponse
	e.doJSON("GET", "/v2/apps", nil, http.StatusOK, &apps)
	ids := []string{}
	for _, a := range apps.Apps {
		ids = append(ids, a.ID)
	}
	sort.Strings(ids)
	assert.Equal(t, []string{"/g/a", "/x"}, ids, "rejected writes changed nothing")
}

package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
)

func TestAppLifecycle(t *testing.T) {
	e := newEnv(t, envOpts{agents: 3})

	// Create.
	var created marathon.App
	hdr := e.doJSON("POST", "/v2/apps", map[string]any{"id": "/prod/web", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 32}, http.StatusCreated, &created)
	require.NotEmpty(t, hdr.Get("Marathon-Deployment-Id"))
	assert.Equal(t, "no-cache, no-store, must-revalidate", hdr.Get("Cache-Control"))
	assert.Equal(t, "no-cache", hdr.Get("Pragma"))
	assert.Equal(t, "http://127.0.0.1:8080", hdr.Get("X-Marathon-Leader"))
	assert.Equal(t, "/prod/web", hdr.Get("Location"))
	assert.Equal(t, "/prod/web", created.ID)
	require.Len(t, created.Deployments, 1)
	assert.Equal(t, hdr.Get("Marathon-Deployment-Id"), created.Deployments[0].ID)
	require.Len(t, created.PortDefinitions, 1)
	assert.GreaterOrEqual(t, created.PortDefinitions[0].Port, 10000, "service port assigned")
	assert.Equal(t, []int{created.PortDefinitions[0].Port}, created.Ports, "ports mirror")
	first := e.settled("/prod/web", 2)
	for _, id := range first {
		assert.Regexp(t, `^prod_web\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
	}
	app := e.app("/prod/web")
	assert.Equal(t, 2, app.TasksRunning)
	require.Len(t, app.Tasks, 2)
	assert.Len(t, app.Tasks[0].Ports, 1)

	// Pure scale: version and lastScalingAt move, config does not.
	var res marathon.DeploymentResult
	e.doJSON("PUT", "/v2/apps/prod/web", map[string]any{"instances": 3}, http.StatusOK, &res)
	require.NotEmpty(t, res.DeploymentID)
	scaled := e.settled("/prod/web", 3)
	assert.Subset(t, scaled, first, "scale up keeps running tasks")
	app = e.app("/prod/web")
	assert.Equal(t, created.VersionInfo.LastConfigChangeAt, app.VersionInfo.LastConfigChangeAt)
	assert.NotEqual(t, created.Version, app.Version)
	assert.Equal(t, "sleep 1000", app.Cmd, "partial update keeps other fields")
	assert.Equal(t, created.PortDefinitions, app.PortDefinitions, "service ports are stable")

	// Scale down.
	e.doJSON("PATCH", "/v2/apps/prod/web", map[string]any{"instances": 1}, http.StatusOK, &res)
	down := e.settled("/prod/web", 1)
	assert.Subset(t, scaled, down)

	// Restart replaces every task.
	e.doJSON("POST", "/v2/apps/prod/web/restart", map[string]any{}, http.StatusOK, &res)
	restarted := e.settled("/prod/web", 1)
	assert.NotEqual(t, down, restarted)
	app = e.app("/prod/web")
	assert.NotEqual(t, created.VersionInfo.LastConfigChangeAt, app.VersionInfo.LastConfigChangeAt)

	// A config change (label edit) rolls the tasks too.
	e.doJSON("PUT", "/v2/apps/prod/web", map[string]any{"labels": map[string]string{"HAPROXY_GROUP": "external"}}, http.StatusOK, &res)
	relabeled := e.settled("/prod/web", 1)
	assert.NotEqual(t, restarted, relabeled)
	assert.Equal(t, map[string]string{"HAPROXY_GROUP": "external"}, e.app("/prod/web").Labels)

	// Versions and rollback.
	var versions struct {
		Versions []string `json:"versions"`
	}
	e.doJSON("GET", "/v2/apps/prod/web/versions", nil, http.StatusOK, &versions)
	require.GreaterOrEqual(t, len(versions.Versions), 4)
	e.doJSON("PUT", "/v2/apps/prod/web", map[string]any{"version": created.Version}, http.StatusOK, &res)
	e.settled("/prod/web", 2)
	assert.Empty(t, e.app("/prod/web").Labels)

	// Delete.
	hdr = e.doJSON("DELETE", "/v2/apps/prod/web", nil, http.StatusOK, &res)
	assert.Equal(t, res.DeploymentID, hdr.Get("Marathon-Deployment-Id"))
	assert.NotEmpty(t, res.Version)
	code, _, _ := e.do("GET", "/v2/apps/prod/web", nil)
	assert.Equal(t, http.StatusNotFound, code, "app gone at once")
	e.waitFor("tasks killed", func() bool {
		var all marathon.TasksResponse
		e.doJSON("GET", "/v2/tasks", nil, http.StatusOK, &all)
		return len(all.Tasks) == 0 && len(e.deployments()) == 0
	})
	for _, a := range e.agents {
		assert.Empty(t, a.Tasks(), "agent %s still runs tasks", a.Hostname)
	}
}

func TestPutCreates(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	var res marathon.DeploymentResult
	hdr := e.doJSON("PUT", "/v2/apps/made-by-put", map[string]any{"cmd": "sleep 1", "cpus": 0.1, "mem": 16}, http.StatusCreated, &res)
	assert.Equal(t, res.DeploymentID, hdr.Get("Marathon-Deployment-Id"))
	e.settled("/made-by-put", 1)
	code, _, _ := e.do("PATCH", "/v2/apps/nope", map[string]any{"instances": 2})
	assert.Equal(t, http.StatusNotFound, code, "PATCH never creates")
}

// TestAgentOverHTTP runs a fake agent through the real agent API client and
// the /agentapi/ handlers mounted by server.New.
func TestAgentOverHTTP(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := schedulertest.NewFakeAgent(agentapi.NewClient(e.srv.URL, nil), "http-agent")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	createApp(e, map[string]any{"id": "/over-http", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16})
	ids := e.settled("/over-http", 2)
	assert.Equal(t, ids, a.Tasks())
	for _, task := range e.app("/over-http").Tasks {
		assert.Equal(t, "http-agent", task.Host)
		require.Len(t, task.Ports, 1)
		assert.GreaterOrEqual(t, task.Ports[0], 31000)
	}

	// A bridged Docker app: fixed and dynamic host ports, then a restart
	// while the agent keeps polling (assignments are encoded concurrently).
	// With one agent and a fixed host port, only {0, 0} can roll: the old
	// task must free the port before the new one starts.
	createApp(e, map[string]any{"id": "/bridged", "instances": 1, "cpus": 0.1, "mem": 16,
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 0, "maximumOverCapacity": 0},
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "httpd", "network": "BRIDGE",
			"portMappings": []map[string]any{{"containerPort": 80, "hostPort": 31999}, {"containerPort": 443, "hostPort": 0}}}}})
	first := e.settled("/bridged", 1)
	app := e.app("/bridged")
	require.Len(t, app.Tasks, 1)
	assert.Equal(t, 31999, app.Tasks[0].Ports[0], "fixed host port")
	assert.Len(t, app.Tasks[0].Ports, 2)
	require.Len(t, app.Container.Docker.PortMappings, 2, "docker.portMappings mirror")
	assert.Equal(t, app.Ports, []int{app.Container.PortMappings[0].ServicePort, app.Container.PortMappings[1].ServicePort})
	e.doJSON("POST", "/v2/apps/bridged/restart", nil, http.StatusOK, nil)
	e.waitFor("bridged app restarted", func() bool {
		r := e.running("/bridged")
		return len(r) == 1 && r[0] != first[0] && len(e.deployments()) == 0
	})
}

func TestListAppsEmbed(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	createApp(e, map[string]any{"id": "/a/one", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16, "labels": map[string]string{"HAPROXY_GROUP": "external"}})
	createApp(e, map[string]any{"id": "/b/two", "cmd": "run-two", "instances": 0})
	e.settled("/a/one", 1)
	keys := func(path string) []map[string]json.RawMessage {
		t.Helper()
		var r struct {
			Apps []map[string]json.RawMessage `json:"apps"`
		}
		e.doJSON("GET", path, nil, http.StatusOK, &r)
		return r.Apps
	}
	tests := []struct {
		name      string
		query     string
		ids       []string
		tasks     bool
		readiness bool
	}{
		{"plain list", "", []string{"/a/one", "/b/two"}, false, false},
		{"embed tasks", "?embed=apps.tasks", []string{"/a/one", "/b/two"}, true, false},
		{"embed readiness and counts", "?embed=apps.readiness&embed=apps.counts", []string{"/a/one", "/b/two"}, false, true},
		{"failures", "?embed=apps.failures", []string{"/a/one", "/b/two"}, true, false},
		{"id filter", "?id=ONE", []string{"/a/one"}, false, false},
		{"cmd filter", "?cmd=run-", []string{"/b/two"}, false, false},
		{"label filter", "?label=HAPROXY_GROUP==external", []string{"/a/one"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			apps := keys("/v2/apps" + tc.query)
			var ids []string
			for _, a := range apps {
				var id string
				require.NoError(t, json.Unmarshal(a["id"], &id))
				ids = append(ids, id)
				for _, k := range []string{"labels", "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy", "deployments", "instances", "ports"} {
					assert.Contains(t, a, k, "app %s", id)
				}
				_, hasTasks := a["tasks"]
				assert.Equal(t, tc.tasks, hasTasks, "tasks key for %s", id)
				_, hasReadiness := a["readinessCheckResults"]
				assert.Equal(t, tc.readiness, hasReadiness)
				assert.NotContains(t, string(a["instances"]), ".", "integers stay integers")
				assert.NotContains(t, string(a["backoffSeconds"]), ".")
			}
			assert.Equal(t, tc.ids, ids)
		})
	}
	one := keys("/v2/apps?embed=apps.tasks")[0]
	assert.JSONEq(t, `1`, string(one["tasksRunning"]))
	var tasks []marathon.Task
	require.NoError(t, json.Unmarshal(one["tasks"], &tasks))
	require.Len(t, tasks, 1)
	assert.Equal(t, "/a/one", tasks[0].AppID)
	assert.NotEmpty(t, tasks[0].StartedAt)
	assert.Equal(t, "127.0.0.1", tasks[0].IPAddresses[0].IPAddress)
}

// Marathon fields outside Switchyard's scope are accepted, stored and
// returned verbatim (spec: tier 3, "accept and store"), also after a
// partial update and a scheduler restart.
func TestOpaqueFieldsRoundTrip(t *testing.T) {
	e := newEnv(t, envOpts{dir: t.TempDir()})
	opaque := map[string]any{
		"secrets":           map[string]any{"db": map[string]any{"source": "/db/password"}},
		"residency":         map[string]any{"taskLostBehavior": "WAIT_FOREVER"},
		"tty":               true,
		"role":              "slave_public",
		"resourceLimits":    map[string]any{"cpus": "unlimited"},
		"check":             map[string]any{"http": map[string]any{"portIndex": 0, "path": "/"}},
		"executorResources": map[string]any{"cpus": 0.1, "mem": 32},
	}
	app := map[string]any{"id": "/opaque", "cmd": "sleep 100", "instances": 0, "cpus": 0.1, "mem": 16,
		"container": map[string]any{"type": "DOCKER", "docker": map[string]any{"image": "nginx",
			"credential": map[string]any{"principal": "p", "secret": "s"}, "pullConfig": map[string]any{"secret": "pull"}},
			"volumes": []any{map[string]any{"containerPath": "/etc/secret", "secret": "db"}}}}
	for k, v := range opaque {
		app[k] = v
	}
	e.doJSON("POST", "/v2/apps", app, http.StatusCreated, nil)
	check := func(when string) {
		_, body, _ := e.do("GET", "/v2/apps/opaque", nil)
		var got struct {
			App map[string]any `json:"app"`
		}
		require.NoError(t, json.Unmarshal(body, &got), when)
		for k, v := range opaque {
			assert.Equal(t, jsonRoundTrip(t, v), got.App[k], "%s: %s", when, k)
		}
		docker := got.App["container"].(map[string]any)["docker"].(map[string]any)
		assert.Equal(t, map[string]any{"principal": "p", "secret": "s"}, docker["credential"], when)
		assert.Equal(t, map[string]any{"secret": "pull"}, docker["pullConfig"], when)
		vol := got.App["container"].(map[string]any)["volumes"].([]any)[0].(map[string]any)
		assert.Equal(t, "db", vol["secret"], when)
	}
	check("after POST")
	e.doJSON("PATCH", "/v2/apps/opaque", map[string]any{"instances": 0, "labels": map[string]string{"a": "b"}}, http.StatusOK, nil)
	check("after PATCH")
	e.restart(envOpts{})
	check("after restart")
}

// jsonRoundTrip normalises v (numbers as float64) for comparison with a
// decoded body.
func jsonRoundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

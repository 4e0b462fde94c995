package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestErrorBodies(t *testing.T) {
	// No agents: deployments never finish, so the app stays locked.
	e := newEnv(t, envOpts{})
	var created marathon.App
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/locked", "cmd": "sleep 1"}, http.StatusCreated, &created)
	depID := created.Deployments[0].ID

	tests := []struct {
		name   string
		method string
		path   string
		body   any
		code   int
		want   string // exact JSON body
	}{
		{name: "non-JSON body", method: "POST", path: "/v2/apps", body: "nope", code: 400,
			want: `{"message":"Invalid JSON","details":"invalid character 'o' in literal null (expecting 'u')"}`},
		{name: "wrong type", method: "POST", path: "/v2/apps", body: `{"id":"/x","cmd":"a","instances":"three"}`, code: 400,
			want: `{"message":"Invalid JSON","details":[{"path":"/instances","errors":["error.expected.jsnumber"]}]}`},
		{name: "wrong nested type", method: "POST", path: "/v2/apps", body: `{"id":"/x","container":{"docker":{"image":5}}}`, code: 400,
			want: `{"message":"Invalid JSON","details":[{"path":"/container/docker/image","errors":["error.expected.jsstring"]}]}`},
		{name: "illegal id", method: "POST", path: "/v2/apps", body: `{"id":"/Bad_Id","cmd":"a"}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/id","errors":["must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'"]}]}`},
		{name: "reserved id", method: "POST", path: "/v2/apps", body: `{"id":"/a/restart","cmd":"a"}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/id","errors":["must not end with any of the following reserved keywords: restart, tasks, versions, ., .."]}]}`},
		{name: "negative instances", method: "POST", path: "/v2/apps", body: `{"id":"/x","cmd":"a","instances":-1}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/instances","errors":["got -1, expected 0 or more"]}]}`},
		{name: "unknown operator", method: "POST", path: "/v2/apps", body: `{"id":"/x","cmd":"a","constraints":[["hostname","NEAR"]]}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/constraints(0)","errors":["operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"]}]}`},
		{name: "cmd and args", method: "POST", path: "/v2/apps", body: `{"id":"/x","cmd":"a","args":["b"]}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/","errors":["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."]}]}`},
		{name: "health check port index", method: "POST", path: "/v2/apps", body: `{"id":"/x","cmd":"a","healthChecks":[{"protocol":"HTTP","portIndex":1}]}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/healthChecks(0)","errors":["Health check port indices must address an element of the ports array or container port mappings."]}]}`},
		{name: "capacity above 1", method: "POST", path: "/v2/apps", body: `{"id":"/x","cmd":"a","upgradeStrategy":{"minimumHealthCapacity":1.5}}`, code: 422,
			want: `{"message":"Object is not valid","details":[{"path":"/upgradeStrategy/minimumHealthCapacity","errors":["is greater than 1"]}]}`},
		{name: "duplicate", method: "POST", path: "/v2/apps", body: `{"id":"locked","cmd":"a"}`, code: 409,
			want: `{"message":"An app with id [/locked] already exists."}`},
		{name: "locked put", method: "PUT", path: "/v2/apps/locked", body: `{"instances":2}`, code: 409,
			want: `{"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/` + depID + `'.","deployments":[{"id":"` + depID + `"}]}`},
		{name: "locked restart", method: "POST", path: "/v2/apps/locked/restart", body: `{}`, code: 409,
			want: `{"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/` + depID + `'.","deployments":[{"id":"` + depID + `"}]}`},
		{name: "unknown app", method: "GET", path: "/v2/apps/nope", code: 404, want: `{"message":"App '/nope' does not exist"}`},
		{name: "unknown app tasks", method: "GET", path: "/v2/apps/nope/tasks", code: 404, want: `{"message":"App '/nope' does not exist"}`},
		{name: "unknown task", method: "DELETE", path: "/v2/apps/locked/tasks/locked.1234", code: 404, want: `{"message":"Task 'locked.1234' does not exist"}`},
		{name: "unknown deployment", method: "DELETE", path: "/v2/deployments/abc", code: 404, want: `{"message":"DeploymentPlan abc does not exist"}`},
		{name: "unknown version", method: "GET", path: "/v2/apps/locked/versions/2020-01-01T00:00:00.000Z", code: 404,
			want: `{"message":"App '/locked' does not exist in version 2020-01-01T00:00:00.000Z"}`},
		{name: "scale and wipe", method: "DELETE", path: "/v2/apps/locked/tasks?scale=true&wipe=true", code: 400,
			want: `{"message":"You cannot use scale and wipe at the same time."}`},
		{name: "bad task id", method: "POST", path: "/v2/tasks/delete", body: `{"ids":["nodot"]}`, code: 400,
			want: `{"message":"Invalid task id 'nodot'. [expected <appId>.<uuid>]"}`},
		{name: "leader", method: "GET", path: "/v2/leader", code: 200, want: `{"leader":"127.0.0.1:8080"}`},
		{name: "pods", method: "GET", path: "/v2/pods", code: 404, want: `{"message":"Not Found: /v2/pods"}`},
		{name: "events without accept", method: "GET", path: "/v2/events", code: 405,
			want: `{"message":"The /v2/events endpoint serves text/event-stream only; send 'Accept: text/event-stream'."}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := e.do(tc.method, tc.path, tc.body)
			assert.Equal(t, tc.code, code, "body: %s", body)
			assert.JSONEq(t, tc.want, string(body))
		})
	}

	t.Run("force overrides the lock", func(t *testing.T) {
		var res marathon.DeploymentResult
		e.doJSON("PUT", "/v2/apps/locked?force=true", map[string]any{"instances": 3}, http.StatusOK, &res)
		ds := e.deployments()
		require.Len(t, ds, 1)
		assert.Equal(t, res.DeploymentID, ds[0].ID)
	})
	t.Run("head pods", func(t *testing.T) {
		code, _, _ := e.do("HEAD", "/v2/pods", nil)
		assert.Equal(t, http.StatusNotFound, code)
	})
	t.Run("ping", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/ping", nil)
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("info keeps integer types", func(t *testing.T) {
		_, body, _ := e.do("GET", "/v2/info", nil)
		var info map[string]any
		require.NoError(t, json.Unmarshal(body, &info))
		assert.Equal(t, "marathon", info["name"])
		assert.Contains(t, string(body), `"local_port_min":10000`)
	})
	t.Run("metrics", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
		req.Header.Set("Accept", "text/plain") // as Prometheus asks; JSON otherwise
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
		assert.Contains(t, string(body), "switchyard_scheduler_apps 1")
		assert.Contains(t, string(body), `marathon_http_requests_total{code="409",route="app"}`)
	})
}

package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// storedApp is an app as a backend returns it: AppInfo additions filled.
func storedApp() marathon.App {
	return marathon.App{
		ID: "/web", Cmd: "serve", Instances: 2, CPUs: 0.5, Mem: 64, Version: "2024-01-01T00:00:00.000Z",
		TasksStaged: 1, TasksRunning: 1, TasksHealthy: 1, TasksUnhealthy: 1,
		Deployments:     []marathon.DeploymentRef{{ID: "d1"}},
		Tasks:           []marathon.Task{{ID: "web.1", AppID: "/web", Host: "h"}},
		LastTaskFailure: &marathon.TaskFailure{AppID: "/web", TaskID: "web.0"},
	}
}

func decodeObject(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m
}

func TestAppVersionIsBareApp(t *testing.T) {
	srv := newTestServer(t, &fakeBackend{apps: []marathon.App{storedApp()}})
	code, body := call(t, srv, "GET", "/v2/apps/web/versions/2024-01-01T00:00:00.000Z", "")
	require.Equal(t, http.StatusOK, code, body)
	m := decodeObject(t, body)
	for _, k := range []string{"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks", "lastTaskFailure"} {
		assert.NotContains(t, m, k, "a stored version has no AppInfo additions")
	}
	assert.JSONEq(t, `"/web"`, string(m["id"]))
	assert.JSONEq(t, `2`, string(m["instances"]))
	assert.JSONEq(t, `"2024-01-01T00:00:00.000Z"`, string(m["version"]))

	// The single-app endpoint still carries them.
	code, body = call(t, srv, "GET", "/v2/apps/web", "")
	require.Equal(t, http.StatusOK, code, body)
	app := decodeObject(t, string(decodeObject(t, body)["app"]))
	for _, k := range []string{"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks", "lastTaskFailure"} {
		assert.Contains(t, app, k)
	}
}

func TestEmptyDefaultsEmitted(t *testing.T) {
	bare := storedApp()
	full := storedApp()
	full.Env = map[string]string{"A": "b"}
	full.Fetch = []marathon.Fetch{{URI: "http://x/a.tgz", Extract: true}}
	full.URIs = []string{"http://x/b"}
	full.Labels = map[string]string{"l": "v"}
	tests := []struct {
		name  string
		app   marathon.App
		paths []string
		want  map[string]string
	}{
		{"empty", bare, nil, map[string]string{"env": `{}`, "fetch": `[]`, "uris": `[]`, "labels": `{}`}},
		{"set", full, nil, map[string]string{"env": `{"A":"b"}`, "fetch": `[{"uri":"http://x/a.tgz","extract":true,"executable":false,"cache":false}]`,
			"uris": `["http://x/b"]`, "labels": `{"l":"v"}`}},
	}
	for _, tc := range tests {
		srv := newTestServer(t, &fakeBackend{apps: []marathon.App{tc.app}})
		bodies := map[string]func(string) json.RawMessage{
			"/v2/apps": func(b string) json.RawMessage {
				var r struct{ Apps []json.RawMessage }
				require.NoError(t, json.Unmarshal([]byte(b), &r))
				require.Len(t, r.Apps, 1)
				return r.Apps[0]
			},
			"/v2/apps/web":            func(b string) json.RawMessage { return decodeObject(t, b)["app"] },
			"/v2/apps/web/versions/v": func(b string) json.RawMessage { return json.RawMessage(b) },
			"/v2/groups": func(b string) json.RawMessage {
				var g struct{ Apps []json.RawMessage }
				require.NoError(t, json.Unmarshal([]byte(b), &g))
				require.Len(t, g.Apps, 1)
				return g.Apps[0]
			},
		}
		for path, pick := range bodies {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				code, body := call(t, srv, "GET", path, "")
				require.Equal(t, http.StatusOK, code, body)
				m := decodeObject(t, string(pick(body)))
				for k, v := range tc.want {
					require.Contains(t, m, k)
					assert.JSONEq(t, v, string(m[k]), k)
				}
			})
		}
	}
}

func TestCreateAppAnswerHasEmptyDefaults(t *testing.T) {
	srv := newTestServer(t, &fakeBackend{})
	code, body := call(t, srv, "POST", "/v2/apps", `{"id":"a","cmd":"x"}`)
	require.Equal(t, http.StatusCreated, code, body)
	m := decodeObject(t, body)
	assert.JSONEq(t, `{}`, string(m["env"]))
	assert.JSONEq(t, `[]`, string(m["fetch"]))
	assert.JSONEq(t, `[]`, string(m["uris"]))
	assert.JSONEq(t, `0`, string(m["tasksRunning"]))
}

func TestListAppsLabelEscapes(t *testing.T) {
	f := &fakeBackend{apps: []marathon.App{
		{ID: "/a", Labels: map[string]string{"a.b": "x y"}},
		{ID: "/b", Labels: map[string]string{"a.b": "x"}},
	}}
	srv := newTestServer(t, f)
	tests := []struct {
		query string
		code  int
		ids   []string
	}{
		{`label=a.b==x\ y`, 200, []string{"/a"}},
		{`label=a.b%3D%3Dx%5C%20y`, 200, []string{"/a"}},
		{`label=a.b!=x\ y`, 200, []string{"/b"}},
		{`label=a.b==x y`, 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			code, body := call(t, srv, "GET", "/v2/apps?"+strings.ReplaceAll(tc.query, " ", "%20"), "")
			require.Equal(t, tc.code, code, body)
			if code != http.StatusOK {
				return
			}
			var r struct{ Apps []marathon.App }
			require.NoError(t, json.Unmarshal([]byte(body), &r))
			var ids []string
			for _, a := range r.Apps {
				ids = append(ids, a.ID)
			}
			assert.Equal(t, tc.ids, ids)
		})
	}
}

func TestGroupWildcard(t *testing.T) {
	f := &fakeBackend{
		apps: []marathon.App{{ID: "/g/a", Ports: []int{}}, {ID: "/g/sub/b", Ports: []int{}}, {ID: "/gx"}, {ID: "/other"}},
		tasks: []marathon.Task{running("g_a.1", "/g/a", "h1"), running("g_sub_b.1", "/g/sub/b", "h2"),
			running("gx.1", "/gx", "h3")},
	}
	srv := newTestServer(t, f)
	appIDs := func(t *testing.T, body string) []string {
		var r map[string][]marathon.App
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		require.Contains(t, r, "*")
		var ids []string
		for _, a := range r["*"] {
			ids = append(ids, a.ID)
		}
		return ids
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{"group", "/v2/apps/g/*", []string{"/g/a", "/g/sub/b"}},
		{"subgroup", "/v2/apps/g/sub/*", []string{"/g/sub/b"}},
		{"root", "/v2/apps/*", []string{"/g/a", "/g/sub/b", "/gx", "/other"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, srv, "GET", tc.path, "")
			require.Equal(t, http.StatusOK, code, body)
			assert.Equal(t, tc.want, appIDs(t, body))
		})
	}
	t.Run("apps carry tasks and counts", func(t *testing.T) {
		_, body := call(t, srv, "GET", "/v2/apps/g/sub/*", "")
		var r map[string][]map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		require.Len(t, r["*"], 1)
		assert.Contains(t, r["*"][0], "tasks")
		assert.Contains(t, r["*"][0], "tasksRunning")
	})
	t.Run("unknown group", func(t *testing.T) {
		code, body := call(t, srv, "GET", "/v2/apps/nope/*", "")
		assert.Equal(t, http.StatusNotFound, code)
		assert.JSONEq(t, `{"message":"Group '/nope' does not exist"}`, body)
	})
	t.Run("only GET", func(t *testing.T) {
		code, _ := call(t, srv, "PUT", "/v2/apps/g/*", `{"instances":1}`)
		assert.Equal(t, http.StatusMethodNotAllowed, code)
	})
	t.Run("group tasks", func(t *testing.T) {
		code, body := call(t, srv, "GET", "/v2/apps/g/*/tasks", "")
		require.Equal(t, http.StatusOK, code, body)
		var r marathon.TasksResponse
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		var ids []string
		for _, tk := range r.Tasks {
			ids = append(ids, tk.ID)
		}
		assert.Equal(t, []string{"g_a.1", "g_sub_b.1"}, ids)
		code, body = call(t, srv, "GET", "/v2/apps/g/*/tasks", "", "Accept", "text/plain")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "g_a\t \th1\ng_sub_b\t \th2\n", body)
		code, _ = call(t, srv, "GET", "/v2/apps/nope/*/tasks", "")
		assert.Equal(t, http.StatusNotFound, code)
	})
}

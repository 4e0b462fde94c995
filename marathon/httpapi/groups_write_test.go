package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// groupBackend is a fakeBackend that keeps apps in memory and applies
// group updates to them, recording the last call.
type groupBackend struct {
	fakeBackend
	store  map[string]marathon.App
	force  bool
	dryRun bool
}

func (g *groupBackend) UpdateGroup(_ context.Context, id string, update func([]marathon.App) ([]marathon.App, error), force, dryRun bool, _, _ string) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
	g.force, g.dryRun = force, dryRun
	var cur []marathon.App
	for aid, a := range g.store {
		if id == "/" || strings.HasPrefix(aid, id+"/") {
			cur = append(cur, a)
		}
	}
	sort.Slice(cur, func(i, j int) bool { return cur[i].ID < cur[j].ID })
	next, err := update(cur)
	if err != nil {
		return marathon.DeploymentResult{}, nil, err
	}
	if dryRun {
		var actions []marathon.DeploymentAction
		for _, a := range next {
			actions = append(actions, marathon.DeploymentAction{Action: "ScaleApplication", App: a.ID})
		}
		return marathon.DeploymentResult{}, []marathon.DeploymentStep{{Actions: actions}}, nil
	}
	for _, a := range cur {
		delete(g.store, a.ID)
	}
	for _, a := range next {
		g.store[a.ID] = a
	}
	return marathon.DeploymentResult{DeploymentID: "dg", Version: "vg"}, nil, nil
}

func (g *groupBackend) ids() []string {
	var ids []string
	for id := range g.store {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func groupRequest(t *testing.T, url, method, path, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

func TestGroupWrites(t *testing.T) {
	existing := func() map[string]marathon.App {
		return map[string]marathon.App{
			"/g/a":   {ID: "/g/a", Cmd: "x", Instances: 1},
			"/g/b":   {ID: "/g/b", Cmd: "x", Instances: 3},
			"/g/s/c": {ID: "/g/s/c", Cmd: "x", Instances: 0},
			"/other": {ID: "/other", Cmd: "x", Instances: 1},
		}
	}
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		wantCode int
		wantBody string // JSON, compared with JSONEq when set
		wantIDs  []string
		check    func(t *testing.T, store map[string]marathon.App)
	}{
		{
			name: "post creates nested apps with relative ids", method: "POST", path: "/v2/groups",
			body:     `{"id":"new","apps":[{"id":"web","cmd":"x"}],"groups":[{"id":"db","apps":[{"id":"pg","cmd":"y","dependencies":["../web"]}]}]}`,
			wantCode: http.StatusCreated, wantBody: `{"deploymentId":"dg","version":"vg"}`,
			wantIDs: []string{"/g/a", "/g/b", "/g/s/c", "/new/db/pg", "/new/web", "/other"},
			check: func(t *testing.T, st map[string]marathon.App) {
				assert.Equal(t, []string{"/new/web"}, st["/new/db/pg"].Dependencies)
				assert.Equal(t, 1, st["/new/web"].Instances, "defaults applied")
			},
		},
		{
			name: "post with id in path", method: "POST", path: "/v2/groups/new",
			body: `{"apps":[{"id":"web","cmd":"x"}]}`, wantCode: http.StatusCreated,
			wantIDs: []string{"/g/a", "/g/b", "/g/s/c", "/new/web", "/other"},
		},
		{
			name: "post existing group", method: "POST", path: "/v2/groups",
			body: `{"id":"/g","apps":[{"id":"z","cmd":"x"}]}`, wantCode: http.StatusConflict,
			wantBody: `{"message":"Group /g is already created. Use PUT to change this group."}`,
		},
		{
			name: "post root", method: "POST", path: "/v2/groups", body: `{"apps":[{"id":"z","cmd":"x"}]}`,
			wantCode: http.StatusConflict, wantBody: `{"message":"Group / is already created. Use PUT to change this group."}`,
		},
		{
			name: "post invalid apps", method: "POST", path: "/v2/groups",
			body:     `{"id":"n","apps":[{"id":"ok","cmd":"x"},{"id":"Bad_Id","cmd":"x"},{"id":"nocmd"}]}`,
			wantCode: http.StatusUnprocessableEntity,
			wantBody: `{"message":"Object is not valid","details":[` +
				`{"path":"/apps(1)/id","errors":["must fully match regular expression '` + jsonEscape(idPatternText) + `'"]},` +
				`{"path":"/apps(2)","errors":["` + msgCmdArgs + `"]}]}`,
		},
		{
			name: "post app not child of group", method: "POST", path: "/v2/groups",
			body:     `{"id":"n","apps":[{"id":"/elsewhere/x","cmd":"x"}]}`,
			wantCode: http.StatusUnprocessableEntity,
			wantBody: `{"message":"Object is not valid","details":[{"path":"/apps(0)/id","errors":["Identifier is not child of '/n'. Hint: use relative paths."]}]}`,
		},
		{
			name: "post empty group", method: "POST", path: "/v2/groups", body: `{"id":"n"}`,
			wantCode: http.StatusUnprocessableEntity,
			wantBody: `{"message":"Object is not valid","details":[{"path":"/apps","errors":["` + msgEmptyGroup + `"]}]}`,
		},
		{
			name: "post nested wrong type", method: "POST", path: "/v2/groups",
			body:     `{"id":"n","groups":[{"id":"s","apps":[{"id":"a","cmd":"x","instances":"two"}]}]}`,
			wantCode: http.StatusBadRequest,
			wantBody: `{"message":"Invalid JSON","details":[{"path":"/groups(0)/apps(0)/instances","errors":["error.expected.jsnumber"]}]}`,
		},
		{
			name: "post not json", method: "POST", path: "/v2/groups", body: `nope`, wantCode: http.StatusBadRequest,
		},
		{
			name: "put replaces listed apps and keeps subgroups", method: "PUT", path: "/v2/groups/g",
			body: `{"apps":[{"id":"a","cmd":"x","instances":2},{"id":"new","cmd":"x"}]}`, wantCode: http.StatusOK,
			wantBody: `{"deploymentId":"dg","version":"vg"}`,
			wantIDs:  []string{"/g/a", "/g/new", "/g/s/c", "/other"},
			check: func(t *testing.T, st map[string]marathon.App) {
				assert.Equal(t, 2, st["/g/a"].Instances)
			},
		},
		{
			name: "put groups replaces subgroups", method: "PUT", path: "/v2/groups/g",
			body: `{"groups":[{"id":"t","apps":[{"id":"d","cmd":"x"}]}]}`, wantCode: http.StatusOK,
			wantIDs: []string{"/g/a", "/g/b", "/g/t/d", "/other"},
		},
		{
			name: "put creates", method: "PUT", path: "/v2/groups/fresh",
			body: `{"apps":[{"id":"a","cmd":"x"}]}`, wantCode: http.StatusCreated,
			wantIDs: []string{"/fresh/a", "/g/a", "/g/b", "/g/s/c", "/other"},
		},
		{
			name: "scaleBy rounds up", method: "PUT", path: "/v2/groups/g", body: `{"scaleBy":1.5}`, wantCode: http.StatusOK,
			wantIDs: []string{"/g/a", "/g/b", "/g/s/c", "/other"},
			check: func(t *testing.T, st map[string]marathon.App) {
				assert.Equal(t, 2, st["/g/a"].Instances)
				assert.Equal(t, 5, st["/g/b"].Instances)
				assert.Equal(t, 0, st["/g/s/c"].Instances)
				assert.Equal(t, 1, st["/other"].Instances)
			},
		},
		{
			name: "scaleBy unknown group", method: "PUT", path: "/v2/groups/none", body: `{"scaleBy":2}`,
			wantCode: http.StatusNotFound, wantBody: `{"message":"Group '/none' does not exist"}`,
		},
		{
			name: "scaleBy negative", method: "PUT", path: "/v2/groups/g", body: `{"scaleBy":-1}`,
			wantCode: http.StatusUnprocessableEntity,
		},
		{
			name: "scaleBy with apps", method: "PUT", path: "/v2/groups/g", body: `{"scaleBy":2,"apps":[]}`,
			wantCode: http.StatusUnprocessableEntity,
			wantBody: `{"message":"Object is not valid","details":[{"path":"/","errors":["` + msgScaleByAlone + `"]}]}`,
		},
		{
			name: "version rollback not stored", method: "PUT", path: "/v2/groups/g", body: `{"version":"2020-01-01T00:00:00.000Z"}`,
			wantCode: http.StatusNotFound,
		},
		{
			name: "dry run", method: "PUT", path: "/v2/groups/g?dryRun=true", body: `{"scaleBy":2}`, wantCode: http.StatusOK,
			wantBody: `{"steps":[{"actions":[{"action":"ScaleApplication","app":"/g/a"},{"action":"ScaleApplication","app":"/g/b"},{"action":"ScaleApplication","app":"/g/s/c"}]}]}`,
			wantIDs:  []string{"/g/a", "/g/b", "/g/s/c", "/other"},
			check: func(t *testing.T, st map[string]marathon.App) {
				assert.Equal(t, 3, st["/g/b"].Instances, "dry run changes nothing")
			},
		},
		{
			name: "delete", method: "DELETE", path: "/v2/groups/g", wantCode: http.StatusOK,
			wantBody: `{"deploymentId":"dg","version":"vg"}`, wantIDs: []string{"/other"},
		},
		{
			name: "delete subgroup", method: "DELETE", path: "/v2/groups/g/s/", wantCode: http.StatusOK,
			wantIDs: []string{"/g/a", "/g/b", "/other"},
		},
		{
			name: "delete unknown", method: "DELETE", path: "/v2/groups/none", wantCode: http.StatusNotFound,
			wantBody: `{"message":"Group '/none' does not exist"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &groupBackend{store: existing()}
			srv := httptest.NewServer(New(Config{Apps: b, Tasks: b, Deployments: b, Events: b, Cluster: b,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
			t.Cleanup(srv.Close)
			code, body, hdr := groupRequest(t, srv.URL, tc.method, tc.path, tc.body)
			require.Equal(t, tc.wantCode, code, body)
			if tc.wantBody != "" {
				assert.JSONEq(t, tc.wantBody, body)
			}
			if code < 300 && !strings.Contains(tc.path, "dryRun") {
				assert.Equal(t, "dg", hdr.Get("Marathon-Deployment-Id"))
			}
			if tc.wantIDs != nil {
				assert.Equal(t, tc.wantIDs, b.ids())
			} else {
				assert.Equal(t, []string{"/g/a", "/g/b", "/g/s/c", "/other"}, b.ids(), "a failed call changes nothing")
			}
			if tc.check != nil {
				tc.check(t, b.store)
			}
		})
	}
}

func TestGroupWritesWithoutBackend(t *testing.T) {
	srv := newTestServer(t, &fakeBackend{})
	code, _, _ := groupRequest(t, srv.URL, "POST", "/v2/groups", `{"id":"g"}`)
	assert.Equal(t, http.StatusMethodNotAllowed, code)
}

func TestResolveID(t *testing.T) {
	for _, tc := range []struct{ base, id, want string }{
		{"/", "a", "/a"},
		{"/g", "a", "/g/a"},
		{"/g", "/x/a", "/x/a"},
		{"/g/s", "../a", "/g/a"},
		{"/g", "./a/", "/g/a"},
		{"/g", "../../..", "/"},
	} {
		assert.Equal(t, tc.want, resolveID(tc.base, tc.id), "%s + %s", tc.base, tc.id)
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// FuzzGroupBody feeds arbitrary bodies to the group decoder: it must never
// panic, and what it accepts lies inside the group.
func FuzzGroupBody(f *testing.F) {
	f.Add([]byte(`{"id":"g","apps":[{"id":"a","cmd":"x"}],"groups":[{"id":"s","apps":[{"id":"b","cmd":"y"}]}]}`))
	f.Add([]byte(`{"scaleBy":2}`))
	f.Add([]byte(`{"groups":[{"id":"../x"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := decodeGroup(data, "")
		if err != nil {
			return
		}
		apps, groups, err := applyGroup("/g", body, "", []marathon.App{{ID: "/g/old", Cmd: "x"}}, []marathon.GroupMeta{{ID: "/g/e"}})
		if err != nil {
			return
		}
		for _, a := range apps {
			if !strings.HasPrefix(a.ID, "/g/") {
				t.Fatalf("app %q escaped group /g", a.ID)
			}
		}
		for _, g := range groups {
			if g.ID != "/g" && !strings.HasPrefix(g.ID, "/g/") {
				t.Fatalf("group %q escaped group /g", g.ID)
			}
		}
	})
}

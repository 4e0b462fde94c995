package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// fakeBackend answers every call with canned values or err.
type fakeBackend struct {
	apps   []marathon.App
	tasks  []marathon.Task
	err    error
	events chan marathon.Event
}

func (f *fakeBackend) ListApps(context.Context) ([]marathon.App, error) { return f.apps, f.err }
func (f *fakeBackend) GetApp(context.Context, string) (marathon.App, error) {
	if len(f.apps) == 0 {
		return marathon.App{}, f.err
	}
	return f.apps[0], f.err
}
func (f *fakeBackend) AppVersions(context.Context, string) ([]string, error) { return nil, f.err }
func (f *fakeBackend) AppVersion(context.Context, string, string) (marathon.App, error) {
	if len(f.apps) == 0 {
		return marathon.App{}, f.err
	}
	return f.apps[0], f.err
}
func (f *fakeBackend) CreateApp(_ context.Context, a marathon.App, _ bool, _, _ string) (marathon.App, error) {
	return a, f.err
}
func (f *fakeBackend) UpdateApp(_ context.Context, _ string, u func(*marathon.App) (marathon.App, error), _ bool, _, _ string) (marathon.DeploymentResult, bool, error) {
	if _, err := u(nil); err != nil {
		return marathon.DeploymentResult{}, false, err
	}
	return marathon.DeploymentResult{DeploymentID: "d1", Version: "v1"}, true, f.err
}
func (f *fakeBackend) DeleteApp(context.Context, string, bool) (marathon.DeploymentResult, error) {
	return marathon.DeploymentResult{DeploymentID: "d2"}, f.err
}
func (f *fakeBackend) RestartApp(context.Context, string, bool) (marathon.DeploymentResult, error) {
	return marathon.DeploymentResult{DeploymentID: "d3"}, f.err
}
func (f *fakeBackend) ListTasks(_ context.Context, appID string) ([]marathon.Task, error) {
	var out []marathon.Task
	for _, t := range f.tasks {
		if appID == "" || t.AppID == appID {
			out = append(out, t)
		}
	}
	return out, f.err
}
func (f *fakeBackend) KillTasks(context.Context, string, []string, string, bool, bool) ([]marathon.Task, *marathon.DeploymentResult, error) {
	return nil, nil, f.err
}
func (f *fakeBackend) ListDeployments(context.Context) ([]marathon.Deployment, error) {
	return nil, f.err
}
func (f *fakeBackend) CancelDeployment(context.Context, string, bool) (*marathon.DeploymentResult, error) {
	return nil, f.err
}
func (f *fakeBackend) Subscribe(string) (<-chan marathon.Event, func()) { return f.events, func() {} }
func (f *fakeBackend) Info(context.Context) (any, error)                { return map[string]int{"n": 1}, f.err }
func (f *fakeBackend) Leader(context.Context) (string, error)           { return "", f.err }
func (f *fakeBackend) Abdicate(context.Context) error                   { return f.err }
func (f *fakeBackend) Queue(context.Context) (any, error) {
	return map[string]any{"queue": []any{}}, f.err
}
func (f *fakeBackend) ResetDelay(context.Context, string) error { return f.err }

func newTestServer(t *testing.T, f *fakeBackend) *httptest.Server {
	t.Helper()
	h := New(Config{Apps: f, Tasks: f, Deployments: f, Events: f, Cluster: f, Keepalive: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

type conflict struct{}

func (conflict) Error() string   { return "locked" }
func (conflict) HTTPStatus() int { return http.StatusConflict }
func (conflict) ErrorResponse() marathon.ErrorResponse {
	return marathon.ErrorResponse{Message: "locked", Deployments: []marathon.DeploymentRef{{ID: "x"}}}
}

func TestHandlers(t *testing.T) {
	ok := newTestServer(t, &fakeBackend{})
	failing := newTestServer(t, &fakeBackend{err: errors.New("boom")})
	locked := newTestServer(t, &fakeBackend{err: conflict{}})
	tests := []struct {
		name         string
		srv          *httptest.Server
		method, path string
		body         string
		hdr          []string
		code         int
		want         string
	}{
		{"ping text", ok, "GET", "/ping", "", nil, 200, "pong"},
		{"ping any", ok, "GET", "/ping", "", []string{"Accept", "*/*"}, 200, "pong"},
		{"ping text preferred", ok, "GET", "/ping", "", []string{"Accept", "application/json;q=0.5, text/plain"}, 200, "pong"},
		{"ping json", ok, "GET", "/ping", "", []string{"Accept", "application/json"}, 200, "\"pong\"\n"},
		{"ping json preferred", ok, "GET", "/ping", "", []string{"Accept", "text/plain;q=0.5, application/json"}, 200, "\"pong\"\n"},
		{"ping neither", ok, "GET", "/ping", "", []string{"Accept", "image/png"}, 204, ""},
		{"ping text refused", ok, "GET", "/ping", "", []string{"Accept", "text/plain;q=0"}, 204, ""},
		{"no leader", ok, "GET", "/v2/leader", "", nil, 404, `{"message":"There is no leader"}` + "\n"},
		{"empty apps", ok, "GET", "/v2/apps", "", nil, 200, `{"apps":[]}` + "\n"},
		{"empty deployments", ok, "GET", "/v2/deployments", "", nil, 200, "[]\n"},
		{"empty tasks", ok, "GET", "/v2/tasks", "", nil, 200, `{"tasks":[]}` + "\n"},
		{"force cancel", ok, "DELETE", "/v2/deployments/x?force=true", "", nil, 202, ""},
		{"queue", ok, "GET", "/v2/queue", "", nil, 200, `{"queue":[]}` + "\n"},
		{"reset delay", ok, "DELETE", "/v2/queue/a/b/delay", "", nil, 204, ""},
		{"unknown route", ok, "GET", "/v3/nothing", "", nil, 404, `{"message":"Not Found: /v3/nothing"}` + "\n"},
		{"put validates", ok, "PUT", "/v2/apps/a", `{"cmd":"x","instances":-1}`, nil, 422,
			`{"message":"Object is not valid","details":[{"path":"/instances","errors":["got -1, expected 0 or more"]}]}` + "\n"},
		{"bad shutdown delay label", ok, "POST", "/v2/apps", `{"id":"a","cmd":"x","labels":{"SWITCHYARD_SHUTDOWN_DELAY":"soon"}}`, nil, 422,
			`{"message":"Object is not valid","details":[{"path":"/labels/SWITCHYARD_SHUTDOWN_DELAY","errors":["\"soon\": expected seconds (5) or a duration (5s)"]}]}` + "\n"},
		{"shutdown delay label too long", ok, "PUT", "/v2/apps/a", `{"cmd":"x","labels":{"SWITCHYARD_SHUTDOWN_DELAY":"1h"}}`, nil, 422,
			`{"message":"Object is not valid","details":[{"path":"/labels/SWITCHYARD_SHUTDOWN_DELAY","errors":["\"1h\": expected 0 to 10m0s"]}]}` + "\n"},
		{"zero cpus", ok, "POST", "/v2/apps", `{"id":"a","cmd":"x","cpus":0}`, nil, 422,
			`{"message":"Object is not valid","details":[{"path":"/cpus","errors":["got 0, expected 0.001 or more"]}]}` + "\n"},
		{"gpus", ok, "POST", "/v2/apps", `{"id":"a","cmd":"x","gpus":2}`, nil, 422,
			`{"message":"Object is not valid","details":[{"path":"/gpus","errors":["GPUs are not supported by this scheduler"]}]}` + "\n"},
		{"backend error is 500", failing, "GET", "/v2/apps", "", nil, 500, `{"message":"boom"}` + "\n"},
		{"status error", locked, "POST", "/v2/apps/a/restart", "", nil, 409, `{"message":"locked","deployments":[{"id":"x"}]}` + "\n"},
		{"method not allowed", ok, "POST", "/v2/apps/a/tasks", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"post info", ok, "POST", "/v2/info", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"delete apps", ok, "DELETE", "/v2/apps", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"put ping", ok, "PUT", "/ping", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"post deployment", ok, "POST", "/v2/deployments/x", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"patch group", ok, "PATCH", "/v2/groups/g", "{}", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"get tasks delete", ok, "GET", "/v2/tasks/delete", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"get queue delay", ok, "GET", "/v2/queue/a/delay", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"get queue other", ok, "GET", "/v2/queue/a/other", "", nil, 404, `{"message":"Not Found: /v2/queue/a/other"}` + "\n"},
		{"post events", ok, "POST", "/v2/events", "", nil, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"head leader", ok, "HEAD", "/v2/leader", "", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.srv, tc.method, tc.path, tc.body, tc.hdr...)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.want, body)
		})
	}
}

func TestMethodNotAllowedAllowHeader(t *testing.T) {
	srv := newTestServer(t, &fakeBackend{})
	tests := []struct{ method, path, allow string }{
		{"POST", "/v2/info", "GET, HEAD"},
		{"DELETE", "/v2/apps", "GET, POST, PUT, PATCH, HEAD"},
		{"PUT", "/v2/leader", "GET, DELETE, HEAD"},
		{"PUT", "/v2/tasks/delete", "POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			assert.Equal(t, tc.allow, resp.Header.Get("Allow"))
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}
}

func TestEventsHandlerFramesAndEnds(t *testing.T) {
	f := &fakeBackend{events: make(chan marathon.Event, 4)}
	srv := newTestServer(t, f)
	f.events <- marathon.Event{Type: "api_post_event", Data: []byte(`{"eventType":"api_post_event"}`)}
	f.events <- marathon.Event{Type: "status_update_event", Data: []byte(`{"eventType":"status_update_event"}`)}
	close(f.events) // the source dropped this subscriber
	req, _ := http.NewRequest("GET", srv.URL+"/v2/events?event_type=status_update_event", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(bufio.NewReader(resp.Body))
	require.NoError(t, err, "the stream ends when the source closes it")
	assert.Equal(t, "event: status_update_event\r\ndata: {\"eventType\":\"status_update_event\"}\r\n\r\n", string(body))
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestBodyOverLimitIs413(t *testing.T) {
	f := &multiBackend{groupBackend{store: map[string]marathon.App{}}}
	h := New(Config{Apps: f, Tasks: f, Deployments: f, Events: f, Cluster: f, MaxBodyBytes: 1024,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	app := `{"id":"web","cmd":"sleep 1"}`
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"small app", "POST", "/v2/apps", app, 201},
		// Marathon's parser would see valid JSON followed by padding; the
		// old 8 MiB cut made trailing garbage past the limit invisible.
		{"app then padding", "POST", "/v2/apps", app + strings.Repeat(" ", 2000), 413},
		{"app then garbage past the limit", "POST", "/v2/apps", app + strings.Repeat(" ", 1000) + "garbage", 413},
		{"app then garbage within the limit", "POST", "/v2/apps", app + " garbage", 400},
		{"group", "PUT", "/v2/groups/g", `{"apps":[` + strings.Repeat(`{"id":"a","cmd":"c"},`, 100) + `{"id":"b","cmd":"c"}]}`, 413},
		{"tasks delete", "POST", "/v2/tasks/delete", `{"ids":["` + strings.Repeat("x", 2000) + `"]}`, 413},
		{"app put", "PUT", "/v2/apps/web", strings.Repeat("[", 5000), 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, srv, tc.method, tc.path, tc.body, "Content-Type", "application/json")
			assert.Equal(t, tc.want, code, body)
			if tc.want == 413 {
				assert.Contains(t, body, "Request entity too large: the limit is 1024 bytes")
			}
		})
	}
}

func TestDotSegmentsInPathsAre422(t *testing.T) {
	f := &multiBackend{groupBackend{fakeBackend: fakeBackend{apps: []marathon.App{storedApp()}}, store: map[string]marathon.App{}}}
	srv := httptest.NewServer(New(Config{Apps: f, Tasks: f, Deployments: f, Events: f, Cluster: f,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"/v2/apps/a/%2e%2e/b", "/v2/apps/a/%2E/b/restart", "/v2/apps/%2e%2e/tasks"} {
		t.Run(path, func(t *testing.T) {
			req, err := http.NewRequest("DELETE", srv.URL+path, nil)
			require.NoError(t, err)
			if strings.HasSuffix(path, "restart") {
				req.Method = "POST"
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
			assert.Contains(t, string(b), msgDotSegment)
		})
	}
	code, body := call(t, srv, "PUT", "/v2/groups/g", `{"apps":[{"id":"../x","cmd":"c"}]}`)
	assert.Equal(t, 422, code)
	assert.Contains(t, body, msgDotSegment)
	code, body = call(t, srv, "PUT", "/v2/apps", `[{"id":"a/../b","cmd":"c"}]`)
	assert.Equal(t, 422, code)
	assert.Contains(t, body, msgDotSegment)
}

func TestArgSizeLimits(t *testing.T) {
	big := strings.Repeat("x", maxArgBytes+1)
	fits := strings.Repeat("x", maxArgBytes)
	many := make([]string, 20)
	for i := range many {
		many[i] = strings.Repeat("y", 120<<10)
	}
	manyJSON, _ := json.Marshal(many)
	labels := map[string]string{}
	for i := range 5000 {
		labels[fmt.Sprintf("L%04d", i)] = strings.Repeat("v", 500)
	}
	labelsJSON, _ := json.Marshal(labels)
	tests := []struct {
		name, body string
		path       string // "" means valid
	}{
		{"cmd at the limit", `{"id":"a","cmd":"` + fits + `"}`, ""},
		{"cmd over", `{"id":"a","cmd":"` + big + `"}`, "/cmd"},
		{"arg over", `{"id":"a","args":["ok","` + big + `"]}`, "/args(1)"},
		{"env over", `{"id":"a","cmd":"c","env":{"K":"` + fits + `"}}`, "/env/K"},
		{"total over", `{"id":"a","args":` + string(manyJSON) + `}`, "/"},
		{"labels total over", `{"id":"a","cmd":"c","labels":` + string(labelsJSON) + `}`, "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeApp([]byte(tc.body))
			if tc.path == "" {
				require.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Len(t, ve.Details, 1)
			assert.Equal(t, tc.path, ve.Details[0].Path)
			assert.Contains(t, ve.Details[0].Errors[0], "bytes")
		})
	}
}

func TestEventStreamCap(t *testing.T) {
	logs := &syncWriter{}
	f := &fakeBackend{events: make(chan marathon.Event)}
	h := New(Config{Apps: f, Tasks: f, Deployments: f, Events: f, Cluster: f, Keepalive: time.Hour, MaxEventStreams: 2,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	open := func() *http.Response {
		req, err := http.NewRequest("GET", srv.URL+"/v2/events", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		return resp
	}
	first, second := open(), open()
	assert.Equal(t, 200, first.StatusCode)
	assert.Equal(t, 200, second.StatusCode)
	third := open()
	assert.Equal(t, http.StatusServiceUnavailable, third.StatusCode)
	assert.Equal(t, "5", third.Header.Get("Retry-After"))
	third.Body.Close()
	assert.Contains(t, logs.String(), "event stream refused: too many open streams")

	// A closed stream frees its slot.
	first.Body.Close()
	require.Eventually(t, func() bool {
		resp := open()
		defer resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second, 10*time.Millisecond)
	second.Body.Close()
}

// multiBackend adds PUT /v2/apps to groupBackend: every update is applied
// to an absent app.
type multiBackend struct{ groupBackend }

func (m *multiBackend) UpdateApps(_ context.Context, updates map[string]func(*marathon.App) (marathon.App, error), _ bool, _, _ string) (marathon.DeploymentResult, error) {
	for _, u := range updates {
		if _, err := u(nil); err != nil {
			return marathon.DeploymentResult{}, err
		}
	}
	return marathon.DeploymentResult{DeploymentID: "dm"}, nil
}

// syncWriter is a log sink that handlers on several goroutines may share.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

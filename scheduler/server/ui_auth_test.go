package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/server"
)

// TestUIBehindTheAPIsUsers: with users configured, the web UI and its
// agents listing (agent addresses) need them as the API does; the agent
// API keeps its own authentication.
func TestUIBehindTheAPIsUsers(t *testing.T) {
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{Leader: "127.0.0.1:8080"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth:      httpapi.AuthConfig{Users: []httpapi.Credential{{User: "admin", Password: "pw"}}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sched.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	get := func(path string, auth bool) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/html")
		if auth {
			req.SetBasicAuth("admin", "pw")
		}
		resp, err := srv.Client().Transport.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/ui/", "/ui/api/agents", "/", "/v2/apps"} {
		assert.Equal(t, http.StatusUnauthorized, get(p, false), p)
	}
	assert.Equal(t, http.StatusOK, get("/ui/", true))
	assert.Equal(t, http.StatusOK, get("/ui/api/agents", true))
	assert.Equal(t, http.StatusFound, get("/", true), "a browser is sent to the UI")
	assert.NotEqual(t, http.StatusUnauthorized, get("/ping", false), "/ping stays open")
}

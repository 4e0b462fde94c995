package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler"
)

// TestUIMounted: server.New serves the web UI at /ui/, sends browsers
// asking for "/" there, and keeps the API's 404 for API clients.
func TestUIMounted(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, accept string) *http.Response {
		req, err := http.NewRequest("GET", e.srv.URL+path, nil)
		require.NoError(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get("/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, "/ui/", resp.Header.Get("Location"))

	for _, accept := range []string{"application/json", "*/*", ""} {
		resp = get("/", accept)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "Accept %q", accept)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), "Accept %q", accept)
		assert.Contains(t, body, "message", "the API's error body for Accept %q", accept)
	}

	resp = get("/ui/", "text/html")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")

	// The agents listing: the fake agent, reachable, with its task.
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/ui-test", "cmd": "sleep 100", "instances": 1, "cpus": 0.25, "mem": 64}, http.StatusCreated, nil)
	e.settled("/ui-test", 1)
	var list struct {
		Agents []scheduler.AgentInfo `json:"agents"`
	}
	e.doJSON("GET", "/ui/api/agents", nil, http.StatusOK, &list)
	require.Len(t, list.Agents, 1)
	a := list.Agents[0]
	assert.Equal(t, e.agents[0].ID(), a.ID)
	assert.Equal(t, "agent0", a.Hostname)
	assert.True(t, a.Reachable)
	assert.NotNil(t, a.LastSeen)
	assert.InDelta(t, 0.25, a.Used.CPUs, 1e-9)
	assert.InDelta(t, 64, a.Used.Mem, 1e-9)
	require.Len(t, a.Tasks, 1)
	assert.Equal(t, "/ui-test", a.Tasks[0].AppID)
	assert.Equal(t, "TASK_RUNNING", a.Tasks[0].State)
}

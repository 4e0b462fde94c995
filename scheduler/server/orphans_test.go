package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/server"
)

// TestTasksOrphansQuery: GET /v2/tasks?orphans lists the tasks agents run
// that the scheduler has no record of; plain GET /v2/tasks does not.
func TestTasksOrphansQuery(t *testing.T) {
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{Leader: "127.0.0.1:8080"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sched.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, err = sched.Register(context.Background(), agentapi.RegisterRequest{Hostname: "h1",
		Tasks: []agentapi.TaskStatus{{TaskID: "old.1", AppID: "/old", State: marathon.TaskRunning}}})
	require.NoError(t, err)

	get := func(path string) []marathon.Task {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var body struct {
			Tasks []marathon.Task `json:"tasks"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return body.Tasks
	}
	orphans := get("/v2/tasks?orphans")
	require.Len(t, orphans, 1)
	assert.Equal(t, "old.1", orphans[0].ID)
	assert.Equal(t, "h1", orphans[0].Host)
	assert.Empty(t, get("/v2/tasks"))
}

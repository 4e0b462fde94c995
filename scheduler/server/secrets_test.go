package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretsReachTheAgentAsSources: an env variable that references a
// secret is handed to the agent as the secret's source (which the agent
// reads from its --secrets-dir), never as a plain env value, and the app
// reads back as it was sent.
func TestSecretsReachTheAgentAsSources(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	app := map[string]any{"id": "/sec", "cmd": "sleep 100", "instances": 1, "cpus": 0.1, "mem": 16,
		"env":     map[string]any{"DB_PASS": map[string]any{"secret": "db"}, "MODE": "prod"},
		"secrets": map[string]any{"db": map[string]any{"source": "/db/pass"}}}
	e.doJSON("POST", "/v2/apps", app, http.StatusCreated, nil)

	var got struct {
		App struct {
			Env     map[string]any `json:"env"`
			Secrets map[string]any `json:"secrets"`
		} `json:"app"`
	}
	e.doJSON("GET", "/v2/apps/sec", nil, http.StatusOK, &got)
	assert.Equal(t, app["env"], got.App.Env)
	assert.Equal(t, app["secrets"], got.App.Secrets)

	e.waitFor("the task is assigned", func() bool { return len(e.agents[0].Tasks()) == 1 })
	list, err := e.sched.Assignments(t.Context(), e.agents[0].ID(), 0, 0)
	require.NoError(t, err)
	require.Len(t, list.Tasks, 1)
	asg := list.Tasks[0]
	assert.Equal(t, map[string]string{"DB_PASS": "/db/pass"}, asg.Secrets)
	assert.Equal(t, "prod", asg.Env["MODE"])
	assert.NotContains(t, asg.Env, "DB_PASS")
}

package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestMultiAppPutPatch(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	var res marathon.DeploymentResult
	e.doJSON("PUT", "/v2/apps", []map[string]any{
		{"id": "/m/one", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16},
		{"id": "/m/two", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16},
	}, http.StatusOK, &res)
	require.NotEmpty(t, res.DeploymentID)
	e.settled("/m/one", 1)
	e.settled("/m/two", 2)
	e.doJSON("PATCH", "/v2/apps", []map[string]any{{"id": "/m/one", "instances": 2}, {"id": "/m/two", "instances": 1}}, http.StatusOK, &res)
	e.settled("/m/one", 2)
	e.settled("/m/two", 1)
	code, body, _ := e.do("PATCH", "/v2/apps", []map[string]any{{"id": "/m/none", "instances": 1}})
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"message":"App '/m/none' does not exist"}`, string(body))
	code, _, _ = e.do("PUT", "/v2/apps", []map[string]any{{"instances": 1}})
	assert.Equal(t, http.StatusUnprocessableEntity, code)

	// Groups are derived from app ids.
	var root struct {
		ID     string `json:"id"`
		Groups []struct {
			ID   string         `json:"id"`
			Apps []marathon.App `json:"apps"`
		} `json:"groups"`
	}
	e.doJSON("GET", "/v2/groups", nil, http.StatusOK, &root)
	assert.Equal(t, "/", root.ID)
	require.Len(t, root.Groups, 1)
	assert.Equal(t, "/m", root.Groups[0].ID)
	assert.Len(t, root.Groups[0].Apps, 2)
	code, _, _ = e.do("GET", "/v2/groups/m", nil)
	assert.Equal(t, http.StatusOK, code)
	code, body, _ = e.do("GET", "/v2/groups/nope", nil)
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"message":"Group '/nope' does not exist"}`, string(body))

	// Legacy text form of /v2/tasks.
	req, _ := http.NewRequest("GET", e.srv.URL+"/v2/tasks", nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	require.Len(t, lines, 2, "%s", text)
	assert.True(t, strings.HasPrefix(lines[0], "m_one\t1000"), lines[0])
	assert.Len(t, strings.Split(lines[0], "\t"), 4, "two endpoints for /m/one")
}

func TestGetDeployment(t *testing.T) {
	e := newEnv(t, envOpts{})
	var created marathon.App
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/d", "cmd": "x", "instances": 2}, http.StatusCreated, &created)
	var d marathon.Deployment
	e.doJSON("GET", "/v2/deployments/"+created.Deployments[0].ID, nil, http.StatusOK, &d)
	assert.Equal(t, []string{"/d"}, d.AffectedApps)
	assert.Equal(t, 2, d.TotalSteps)
	assert.Equal(t, 2, d.CurrentStep)
	assert.Equal(t, []marathon.DeploymentAction{{Action: "ScaleApplication", App: "/d",
		ReadinessCheckResults: &[]marathon.ReadinessCheckResult{}}}, d.CurrentActions)
	code, _, _ := e.do("GET", "/v2/deployments/nope", nil)
	assert.Equal(t, http.StatusNotFound, code)
}

func TestEventSubscriptions(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	got := make(chan map[string]any, 100)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if json.NewDecoder(r.Body).Decode(&ev) == nil {
			got <- ev
		}
	}))
	t.Cleanup(cb.Close)
	var sub map[string]any
	e.doJSON("POST", "/v2/eventSubscriptions?callbackUrl="+cb.URL+"/event", nil, http.StatusOK, &sub)
	assert.Equal(t, "subscribe_event", sub["eventType"])
	assert.Equal(t, cb.URL+"/event", sub["callbackUrl"])
	var list struct {
		CallbackURLs []string `json:"callbackUrls"`
	}
	e.doJSON("GET", "/v2/eventSubscriptions", nil, http.StatusOK, &list)
	assert.Equal(t, []string{cb.URL + "/event"}, list.CallbackURLs)

	createApp(e, map[string]any{"id": "/cb", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16})
	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case ev := <-got:
			seen = ev["eventType"] == marathon.EventStatusUpdate && ev["taskStatus"] == marathon.TaskRunning
		case <-deadline:
			t.Fatal("no status_update_event delivered to the callback")
		}
	}
	e.doJSON("DELETE", "/v2/eventSubscriptions?callbackUrl="+cb.URL+"/event", nil, http.StatusOK, &sub)
	assert.Equal(t, "unsubscribe_event", sub["eventType"])
	e.doJSON("GET", "/v2/eventSubscriptions", nil, http.StatusOK, &list)
	assert.Empty(t, list.CallbackURLs)
	code, _, _ := e.do("POST", "/v2/eventSubscriptions?callbackUrl=ftp://x", nil)
	assert.Equal(t, http.StatusBadRequest, code)
}

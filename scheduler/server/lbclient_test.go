package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// TestLBClientAgainstScheduler drives our own LB-side Marathon client (REST
// snapshot and SSE stream) against the scheduler: the two sides of the
// project meet only at this contract.
func TestLBClientAgainstScheduler(t *testing.T) {
	e := newEnv(t, envOpts{agents: 2})
	c, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{e.srv.URL}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := c.Events(ctx, []string{marathon.EventAPIPost, marathon.EventStatusUpdate, marathon.EventHealthStatusChanged})
	select {
	case ev := <-events:
		require.Equal(t, marathon.EventStreamAttached, ev.Type, "the client announces its connection first")
	case <-time.After(10 * time.Second):
		t.Fatal("event stream did not connect")
	}

	createApp(e, map[string]any{"id": "/lb/web", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16,
		"labels":       map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"},
		"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/health"}}})
	running := 0
	deadline := time.After(15 * time.Second)
	for running < 2 {
		select {
		case ev, ok := <-events:
			require.True(t, ok)
			if ev.Type != marathon.EventStatusUpdate {
				continue
			}
			var su marathon.StatusUpdateEvent
			require.NoError(t, json.Unmarshal(ev.Data, &su))
			if su.TaskStatus == marathon.TaskRunning {
				running++
			}
		case <-deadline:
			t.Fatal("status updates not received through the LB client")
		}
	}
	apps, err := c.Apps(ctx)
	require.NoError(t, err)
	require.Len(t, apps, 1)
	app := apps[0]
	assert.Equal(t, "external", app.Labels["HAPROXY_GROUP"])
	require.Len(t, app.Tasks, 2)
	for _, task := range app.Tasks {
		assert.NotEmpty(t, task.Host)
		assert.Len(t, task.Ports, 1)
		assert.Equal(t, marathon.TaskRunning, task.State)
	}
	require.Len(t, app.PortDefinitions, 1)
	assert.Equal(t, app.PortDefinitions[0].Port, app.Tasks[0].ServicePorts[0])
	require.NoError(t, c.Ping(ctx))
}

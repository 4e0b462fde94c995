package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/server"
)

// zddCluster is our scheduler behind httptest with in-process fake agents
// that report every task RUNNING and, while failGreen is false, healthy.
type zddCluster struct {
	url       string
	client    *marathon.Client
	failGreen atomic.Bool
}

func startZDDCluster(t *testing.T, hosts ...string) *zddCluster {
	t.Helper()
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{AgentTimeout: 5 * time.Second, ReconcileInterval: 20 * time.Millisecond, Leader: "127.0.0.1:8080"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()

	c := &zddCluster{url: srv.URL}
	agentCtx, stopAgents := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var agents []*schedulertest.FakeAgent
	for _, host := range hosts {
		a := schedulertest.NewFakeAgent(sched, host)
		a.Wait = 50 * time.Millisecond
		a.Healthy = func(taskID string) bool { return !(c.failGreen.Load() && strings.HasPrefix(taskID, "web-green")) }
		agents = append(agents, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.Run(agentCtx)
		}()
	}
	t.Cleanup(func() {
		stopAgents()
		wg.Wait()
		cancel()
		srv.Close()
		<-done
	})
	c.client, err = marathon.NewClient(marathon.ClientConfig{URLs: []string{srv.URL}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, a := range agents {
			if a.ID() == "" {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "fake agents registered")
	return c
}

// zddAppJSON is the app definition deployed; version changes its cmd.
func zddAppJSON(version string) string {
	return `{
  "id": "/web",
  "cmd": "serve ` + version + `",
  "instances": 3,
  "cpus": 0.1,
  "mem": 32,
  "portDefinitions": [{"port": 10000, "protocol": "tcp"}],
  "healthChecks": [{"protocol": "TCP", "portIndex": 0, "gracePeriodSeconds": 5, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}
}`
}

// runZDD runs "lb zdd" against the cluster and returns the exit code and
// the output.
func runZDD(t *testing.T, c *zddCluster, appJSON string, extra ...string) (int, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "app.json")
	require.NoError(t, os.WriteFile(file, []byte(appJSON), 0o644))
	var out bytes.Buffer
	args := append([]string{"lb", "zdd", "--marathon", c.url, "--json", file, "--force",
		"--step-delay", "50ms", "--max-wait", "15s"}, extra...)
	code := run(args, &out, &out, func(string) string { return "" })
	return code, out.String()
}

// groupApps returns the deployment group's apps by id.
func groupApps(t *testing.T, c *zddCluster) map[string]marathon.App {
	t.Helper()
	apps, err := c.client.Apps(context.Background())
	require.NoError(t, err)
	out := map[string]marathon.App{}
	for _, a := range apps {
		if a.Labels["HAPROXY_DEPLOYMENT_GROUP"] == "web" {
			out[a.ID] = a
		}
	}
	return out
}

func healthyCount(a marathon.App) int {
	n := 0
	for _, tk := range a.Tasks {
		alive := tk.State == marathon.TaskRunning && len(tk.HealthCheckResults) > 0
		for _, r := range tk.HealthCheckResults {
			alive = alive && r.Alive
		}
		if alive {
			n++
		}
	}
	return n
}

func TestZDDAgainstScheduler(t *testing.T) {
	c := startZDDCluster(t, "127.0.0.1", "127.0.0.2")

	// 1. First deployment: blue on the main port with all instances.
	code, out := runZDD(t, c, zddAppJSON("v1"))
	require.Equal(t, 0, code, out)
	apps := groupApps(t, c)
	require.Len(t, apps, 1, out)
	blue := apps["/web-blue"]
	assert.Equal(t, 3, blue.Instances)
	assert.Equal(t, 3, healthyCount(blue))
	assert.Equal(t, 10000, blue.PortDefinitions[0].Port)

	// 2. Blue/green switch: green on the alternate port takes over.
	code, out = runZDD(t, c, zddAppJSON("v2"))
	t.Logf("lb zdd output:\n%s", out)
	require.Equal(t, 0, code, out)
	apps = groupApps(t, c)
	require.Len(t, apps, 1, "old colour deleted: %v\n%s", apps, out)
	green, ok := apps["/web-green"]
	require.True(t, ok, out)
	assert.Equal(t, 3, green.Instances)
	assert.Equal(t, 3, healthyCount(green))
	assert.Equal(t, "serve v2", green.Cmd)
	assert.Equal(t, 10001, green.PortDefinitions[0].Port)
	assert.Equal(t, "green", green.Labels["HAPROXY_DEPLOYMENT_COLOUR"])
	assert.Equal(t, "3", green.Labels["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"])
	assert.Equal(t, "10000", green.Labels["HAPROXY_0_PORT"])
	assert.Equal(t, "/web", green.Labels["HAPROXY_APP_ID"])
	started, err := time.Parse(time.RFC3339Nano, green.Labels["HAPROXY_DEPLOYMENT_STARTED_AT"])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), started, time.Minute)
	for _, want := range []string{"created new app", "scaling old app down", "scaling new app up", "deleting old app", "deployment complete"} {
		assert.Contains(t, out, want)
	}

	// 3. --dry plans the way back to blue and changes nothing.
	code, out = runZDD(t, c, zddAppJSON("v3"), "--dry")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, `"id": "/web-blue"`)
	assert.Contains(t, out, "plan: delete /web-green")
	assert.Len(t, groupApps(t, c), 1)

	// 4. A new colour that never gets healthy is rolled back.
	c.failGreen.Store(false)
	code, out = runZDD(t, c, zddAppJSON("v3"))
	require.Equal(t, 0, code, out)
	apps = groupApps(t, c)
	require.Contains(t, apps, "/web-blue", out)
	require.Len(t, apps, 1, out)

	c.failGreen.Store(true)
	code, out = runZDD(t, c, zddAppJSON("v4"), "--max-wait", "2s")
	t.Logf("lb zdd output (rollback):\n%s", out)
	require.Equal(t, 1, code, out)
	assert.Contains(t, out, "rolled back")
	require.Eventually(t, func() bool {
		apps := groupApps(t, c)
		b, ok := apps["/web-blue"]
		return len(apps) == 1 && ok && b.Instances == 3 && healthyCount(b) == 3
	}, 20*time.Second, 50*time.Millisecond, "blue restored, green deleted")

	// 5. Hybrid: one instance moves to green, both colours stay; then
	// --complete-cur moves the rest.
	c.failGreen.Store(false)
	code, out = runZDD(t, c, zddAppJSON("v5"), "--new-instances", "1")
	require.Equal(t, 0, code, out)
	apps = groupApps(t, c)
	require.Len(t, apps, 2, out)
	assert.Equal(t, 1, apps["/web-green"].Instances)
	assert.Equal(t, 2, apps["/web-blue"].Instances)
	assert.Contains(t, out, "hybrid deployment in place")

	code, out = runZDD(t, c, zddAppJSON("v5"))
	require.Equal(t, 1, code, "a two-app group needs --complete-*")
	assert.Contains(t, out, "--complete-cur")

	code, out = runZDD(t, c, zddAppJSON("v5"), "--complete-cur")
	require.Equal(t, 0, code, out)
	apps = groupApps(t, c)
	require.Len(t, apps, 1, out)
	assert.Equal(t, 3, apps["/web-green"].Instances)
	assert.Equal(t, "serve v5", apps["/web-green"].Cmd)
}

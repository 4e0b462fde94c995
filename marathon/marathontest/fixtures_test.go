package marathontest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

func TestAppDefaults(t *testing.T) {
	t.Parallel()
	a := marathontest.App("web")
	assert.Equal(t, "/web", a.ID)
	assert.Equal(t, 1, a.Instances)
	assert.Equal(t, map[string]string{}, a.Labels)
	assert.Empty(t, a.Tasks)
	assert.Empty(t, marathontest.ServicePorts(a))
	assert.Equal(t, marathontest.FixtureVersion, a.Version)
}

func TestAppHostPortsWithTasks(t *testing.T) {
	t.Parallel()
	// Options in any order: the task is added before the ports.
	a := marathontest.App("/prod/web",
		marathontest.WithTask("10.0.0.1", 31000, 31001),
		marathontest.WithServicePorts(10000, 10001),
		marathontest.WithLabels(map[string]string{"HAPROXY_GROUP": "external"}),
		marathontest.WithLabel("HAPROXY_0_VHOST", "web.example.com"),
		marathontest.WithHTTPHealthCheck("/health"),
	)
	portIndex := 0
	assert.Equal(t, []marathon.PortDefinition{{Port: 10000, Protocol: "tcp"}, {Port: 10001, Protocol: "tcp"}}, a.PortDefinitions)
	assert.Equal(t, map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"}, a.Labels)
	assert.Equal(t, []marathon.HealthCheck{{
		Protocol: "HTTP", Path: "/health", PortIndex: &portIndex, GracePeriodSeconds: 300, IntervalSeconds: 60,
		TimeoutSeconds: 20, MaxConsecutiveFailures: 3, DelaySeconds: 15, IPProtocol: "IPv4",
	}}, a.HealthChecks)
	require.Len(t, a.Tasks, 1)
	task := a.Tasks[0]
	assert.Regexp(t, `^prod_web\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, task.ID)
	assert.Equal(t, marathon.Task{
		ID: task.ID, AppID: "/prod/web", Host: "10.0.0.1", SlaveID: "marathontest-10.0.0.1", State: marathon.TaskRunning,
		StagedAt: marathontest.FixtureVersion, StartedAt: marathontest.FixtureVersion, Version: marathontest.FixtureVersion,
		Ports: []int{31000, 31001}, ServicePorts: []int{10000, 10001},
		IPAddresses: []marathon.TaskIPAddress{{IPAddress: "10.0.0.1", Protocol: "IPv4"}},
	}, task)
	assert.Equal(t, 1, a.Instances)
}

func TestAppBridgeAndHealth(t *testing.T) {
	t.Parallel()
	a := marathontest.App("/nginx",
		marathontest.WithBridgePorts(80, 10080),
		marathontest.WithBridgePorts(443, 10443),
		marathontest.WithTCPHealthCheck(),
		marathontest.WithHealthyTask("agent-1", 31000, 31001),
		marathontest.WithUnhealthyTask("agent-2", 31000, 31001),
		marathontest.WithInstances(3),
	)
	require.NotNil(t, a.Container)
	assert.Equal(t, "DOCKER", a.Container.Type)
	require.Len(t, a.Container.PortMappings, 2)
	for _, pm := range a.Container.PortMappings {
		require.NotNil(t, pm.HostPort)
		assert.Equal(t, 0, *pm.HostPort, "dynamic host port")
	}
	assert.Equal(t, []int{10080, 10443}, marathontest.ServicePorts(a))
	assert.Equal(t, []marathon.Network{{Mode: "container/bridge"}}, a.Networks)
	assert.Equal(t, "TCP", a.HealthChecks[0].Protocol)
	assert.Equal(t, 3, a.Instances)
	require.Len(t, a.Tasks, 2)
	assert.True(t, a.Tasks[0].HealthCheckResults[0].Alive)
	assert.False(t, a.Tasks[1].HealthCheckResults[0].Alive)
	assert.Empty(t, a.Tasks[0].IPAddresses, "a host name is no IP address")
	assert.Equal(t, []int{10080, 10443}, a.Tasks[1].ServicePorts)
}

func TestTaskIDs(t *testing.T) {
	t.Parallel()
	a := marathontest.App("/a", marathontest.WithTask("h", 1), marathontest.WithTask("h", 1), marathontest.WithTask("h", 2))
	ids := map[string]bool{}
	for _, task := range a.Tasks {
		ids[task.ID] = true
	}
	assert.Len(t, ids, 3, "task ids are unique within an app")
	assert.Equal(t, a, marathontest.App("/a", marathontest.WithTask("h", 1), marathontest.WithTask("h", 1), marathontest.WithTask("h", 2)),
		"fixtures are deterministic")

	custom := marathontest.Task("/a", "h", 5)
	custom.State = marathon.TaskStaging
	b := marathontest.App("/a", marathontest.WithTasks(custom))
	assert.Equal(t, marathon.TaskStaging, b.Tasks[0].State)
	assert.Equal(t, 1, b.Instances)
}

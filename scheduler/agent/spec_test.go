package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/fetch"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

func intp(i int) *int { return &i }

// baseEnv is the environment every task of app /web version v1 on host
// node1 gets, before ports, labels and app env.
func baseEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"HOST":                       "node1",
		"MESOS_TASK_ID":              "web.1",
		"MARATHON_APP_ID":            "/web",
		"MARATHON_APP_VERSION":       "v1",
		"MARATHON_APP_RESOURCE_CPUS": "0.1",
		"MARATHON_APP_RESOURCE_MEM":  "128.0",
		"MARATHON_APP_RESOURCE_DISK": "0.0",
		"MARATHON_APP_RESOURCE_GPUS": "0",
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

func assignment(mod func(*agentapi.Assignment)) agentapi.Assignment {
	a := agentapi.Assignment{TaskID: "web.1", AppID: "web", Version: "v1", CPUs: 0.1, Mem: 128}
	mod(&a)
	return a
}

func TestTaskSpecFor(t *testing.T) {
	tests := []struct {
		name       string
		a          agentapi.Assignment
		want       driver.TaskSpec
		wantDriver string
	}{
		{
			name: "command with ports names and labels",
			a: assignment(func(a *agentapi.Assignment) {
				a.Cmd = "python3 -m http.server $PORT0"
				a.HostPorts = []int{31000, 31001}
				a.ServicePorts = []int{10000, 0}
				a.PortNames = []string{"http", ""}
				a.Labels = map[string]string{"HAPROXY_GROUP": "external", "haproxy.0.vhost": "a.example.com"}
				a.Env = map[string]string{"FOO": "bar", "HOST": "overridden"}
				a.KillGracePeriod = agentapi.Duration(5 * time.Second)
			}),
			wantDriver: DriverProcess,
			want: driver.TaskSpec{
				TaskID: "web.1", AppID: "/web", Cmd: "python3 -m http.server $PORT0", SandboxDir: "/sb/web.1",
				KillGracePeriod: 5 * time.Second,
				Env: baseEnv(map[string]string{
					"PORT0": "31000", "PORT1": "31001", "PORT": "31000", "PORTS": "31000,31001",
					"PORT_HTTP": "31000", "PORT_10000": "31000",
					"MESOS_SANDBOX":                      "/sb/web.1",
					"MARATHON_APP_LABELS":                "HAPROXY_GROUP HAPROXY_0_VHOST",
					"MARATHON_APP_LABEL_HAPROXY_GROUP":   "external",
					"MARATHON_APP_LABEL_HAPROXY_0_VHOST": "a.example.com",
					"FOO":                                "bar",
					"HOST":                               "overridden",
				}),
			},
		},
		{
			name: "argv without ports, default grace",
			a: assignment(func(a *agentapi.Assignment) {
				a.Args = []string{"/bin/sleep", "100"}
				a.User = "nobody"
			}),
			wantDriver: DriverProcess,
			want: driver.TaskSpec{
				TaskID: "web.1", AppID: "/web", Args: []string{"/bin/sleep", "100"}, User: "nobody", SandboxDir: "/sb/web.1",
				KillGracePeriod: DefaultKillGracePeriod,
				Env:             baseEnv(map[string]string{"MESOS_SANDBOX": "/sb/web.1"}),
			},
		},
		{
			name: "docker bridge with dynamic and fixed container ports",
			a: assignment(func(a *agentapi.Assignment) {
				a.Container = &marathon.Container{
					Type: "DOCKER",
					Docker: &marathon.Docker{Image: "nginx:1", Network: "BRIDGE", Privileged: true, ForcePullImage: true,
						Parameters: []marathon.Parameter{{Key: "label", Value: "a=b"}, {Key: "memory-swap", Value: "0"}}},
					PortMappings: []marathon.PortMapping{
						{ContainerPort: 80, HostPort: intp(0), ServicePort: 10001, Name: "web"},
						{ContainerPort: 0, ServicePort: 10002, Protocol: "udp"},
					},
					Volumes: []marathon.Volume{{ContainerPath: "/data", HostPath: "/srv/data", Mode: "RO"}, {ContainerPath: "/tmp/x", HostPath: "/tmp", Mode: "RW"}},
				}
				a.HostPorts = []int{31005, 31006}
				a.PortNames = []string{"web", ""}
			}),
			wantDriver: DriverDocker,
			want: driver.TaskSpec{
				TaskID: "web.1", AppID: "/web", SandboxDir: "/sb/web.1", KillGracePeriod: DefaultKillGracePeriod,
				Image: "nginx:1", Network: "BRIDGE", Privileged: true, ForcePullImage: true,
				Parameters: [][2]string{{"label", "a=b"}, {"memory-swap", "0"}},
				PortBindings: []driver.PortBinding{
					{HostPort: 31005, ContainerPort: 80, Protocol: "tcp"},
					{HostPort: 31006, ContainerPort: 31006, Protocol: "udp"},
				},
				Volumes: []driver.Volume{{HostPath: "/srv/data", ContainerPath: "/data", ReadOnly: true}, {HostPath: "/tmp", ContainerPath: "/tmp/x"}},
				Labels:  map[string]string{LabelTaskID: "web.1", LabelAppID: "/web", LabelMesosTaskID: "web.1"},
				Env: baseEnv(map[string]string{
					"PORT0": "31005", "PORT1": "31006", "PORT": "31005", "PORTS": "31005,31006",
					"PORT_WEB": "31005", "PORT_80": "31005",
					"MARATHON_APP_DOCKER_IMAGE": "nginx:1",
				}),
			},
		},
		{
			name: "docker legacy port mappings and 1.5 networks host",
			a: assignment(func(a *agentapi.Assignment) {
				a.Cmd = "serve"
				a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "app:2"}}
				a.Networks = []marathon.Network{{Mode: "host"}}
				a.HostPorts = []int{31010}
				a.ServicePorts = []int{10010}
			}),
			wantDriver: DriverDocker,
			want: driver.TaskSpec{
				TaskID: "web.1", AppID: "/web", Cmd: "serve", SandboxDir: "/sb/web.1", KillGracePeriod: DefaultKillGracePeriod,
				Image: "app:2", Network: "HOST",
				Labels: map[string]string{LabelTaskID: "web.1", LabelAppID: "/web", LabelMesosTaskID: "web.1"},
				Env: baseEnv(map[string]string{
					"PORT0": "31010", "PORT": "31010", "PORTS": "31010", "PORT_10010": "31010",
					"MARATHON_APP_DOCKER_IMAGE": "app:2",
				}),
			},
		},
		{
			name: "docker default bridge with 1.4 docker.portMappings",
			a: assignment(func(a *agentapi.Assignment) {
				a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "app:3",
					PortMappings: []marathon.PortMapping{{ContainerPort: 8080}}}}
				a.HostPorts = []int{31020}
			}),
			wantDriver: DriverDocker,
			want: driver.TaskSpec{
				TaskID: "web.1", AppID: "/web", SandboxDir: "/sb/web.1", KillGracePeriod: DefaultKillGracePeriod,
				Image: "app:3", Network: "BRIDGE",
				PortBindings: []driver.PortBinding{{HostPort: 31020, ContainerPort: 8080, Protocol: "tcp"}},
				Labels:       map[string]string{LabelTaskID: "web.1", LabelAppID: "/web", LabelMesosTaskID: "web.1"},
				Env: baseEnv(map[string]string{
					"PORT0": "31020", "PORT": "31020", "PORTS": "31020", "PORT_8080": "31020",
					"MARATHON_APP_DOCKER_IMAGE": "app:3",
				}),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, drv, err := TaskSpecFor(tt.a, "node1", "/sb")
			require.NoError(t, err)
			assert.Equal(t, tt.wantDriver, drv)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTaskSpecForErrors(t *testing.T) {
	tests := []struct {
		name string
		a    agentapi.Assignment
		msg  string
	}{
		{"no task id", assignment(func(a *agentapi.Assignment) { a.TaskID = ""; a.Cmd = "x" }), "empty task id"},
		{"slash in id", assignment(func(a *agentapi.Assignment) { a.TaskID = "../etc"; a.Cmd = "x" }), "cannot name a directory"},
		{"nothing to run", assignment(func(a *agentapi.Assignment) {}), "neither cmd"},
		{"no image", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{}}
		}), "without image"},
		{"user network", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "x", Network: "USER"}}
		}), "not supported"},
		{"named network", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "x"}}
			a.Networks = []marathon.Network{{Mode: "container", Name: "dcos"}}
		}), "not supported"},
		{"ports mismatch", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "x"}, PortMappings: []marathon.PortMapping{{}, {}}}
			a.HostPorts = []int{31000}
		}), "2 port mappings but 1 host ports"},
		{"persistent volume", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "x"}, Volumes: []marathon.Volume{{ContainerPath: "/d", Persistent: []byte(`{"size":10}`)}}}
		}), "only host path volumes"},
		{"bad volume mode", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "x"}, Volumes: []marathon.Volume{{ContainerPath: "/d", HostPath: "/h", Mode: "RX"}}}
		}), "mode"},
		{"bad host port", assignment(func(a *agentapi.Assignment) { a.Cmd = "x"; a.HostPorts = []int{70000} }), "out of range"},
		{"empty parameter key", assignment(func(a *agentapi.Assignment) {
			a.Container = &marathon.Container{Docker: &marathon.Docker{Image: "x", Parameters: []marathon.Parameter{{Value: "v"}}}}
		}), "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := TaskSpecFor(tt.a, "h", "/sb")
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestLabelEnvLimits(t *testing.T) {
	long := make([]byte, 600)
	for i := range long {
		long[i] = 'a'
	}
	a := assignment(func(a *agentapi.Assignment) {
		a.Cmd = "x"
		a.Labels = map[string]string{"ok": "1", "big-value": string(long), string(long[:493]): "v", "a..b--c": "2"}
	})
	spec, _, err := TaskSpecFor(a, "h", "/sb")
	require.NoError(t, err)
	assert.Equal(t, "A_B_C OK", spec.Env["MARATHON_APP_LABELS"])
	assert.Equal(t, "2", spec.Env["MARATHON_APP_LABEL_A_B_C"])
	assert.NotContains(t, spec.Env, "MARATHON_APP_LABEL_BIG_VALUE")
}

func TestJavaDouble(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 0.1: "0.1", 128: "128.0", 1.5: "1.5", 4096: "4096.0"} {
		assert.Equal(t, want, javaDouble(in), "javaDouble(%v)", in)
	}
}

func TestArtifactsOf(t *testing.T) {
	tests := []struct {
		name string
		asg  agentapi.Assignment
		want []fetch.Artifact
	}{
		{name: "none"},
		{
			name: "fetch entries as given",
			asg: agentapi.Assignment{Fetch: []marathon.Fetch{
				{URI: "http://h/a.tgz", Extract: true, Cache: true},
				{URI: "http://h/tool", Executable: true, DestPath: "bin/tool"},
			}},
			want: []fetch.Artifact{
				{URI: "http://h/a.tgz", Extract: true, Cache: true},
				{URI: "http://h/tool", Executable: true, DestPath: "bin/tool"},
			},
		},
		{
			name: "legacy uris are extracted, after fetch",
			asg:  agentapi.Assignment{Fetch: []marathon.Fetch{{URI: "http://h/x"}}, URIs: []string{"http://h/b.zip", "/opt/c.tar"}},
			want: []fetch.Artifact{{URI: "http://h/x"}, {URI: "http://h/b.zip", Extract: true}, {URI: "/opt/c.tar", Extract: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, artifactsOf(tt.asg))
		})
	}
}

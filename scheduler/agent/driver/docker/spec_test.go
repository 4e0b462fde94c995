package docker

import (
	"regexp"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// validName is Docker's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func TestContainerName(t *testing.T) {
	tests := []struct {
		taskID string
		want   string
	}{
		{"apache-nfs-lb-01.5f1c3b7e-9a2d-11ef-8c5a-0242ac110002", "switchyard-apache-nfs-lb-01.5f1c3b7e-9a2d-11ef-8c5a-0242ac110002"},
		{"webshop_db.1234", "switchyard-webshop_db.1234"},
		{"a/b c", "switchyard-a-b-c-"}, // hash suffix checked below
		{"é", "switchyard---"},
	}
	for _, tc := range tests {
		t.Run(tc.taskID, func(t *testing.T) {
			got := containerName("switchyard-", tc.taskID)
			assert.Regexp(t, validName, got)
			assert.Contains(t, got, tc.want, "name of %q", tc.taskID)
			assert.Equal(t, got, containerName("switchyard-", tc.taskID), "deterministic")
		})
	}
	// Ids that sanitise to the same text still get distinct names.
	assert.NotEqual(t, containerName("p-", "a/b"), containerName("p-", "a:b"))
	assert.NotEqual(t, containerName("p-", "a/b"), containerName("p-", "a-b"))
	long := string(make([]byte, 1000))
	assert.LessOrEqual(t, len(containerName("p-", long)), maxNameLen+20)
}

func FuzzContainerName(f *testing.F) {
	for _, s := range []string{"app.1", "a/b", "", "é€", "-x", "...."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got := containerName("switchyard-", id)
		if !validName.MatchString(got) {
			t.Fatalf("containerName(%q) = %q: not a valid docker name", id, got)
		}
		if len(got) > len("switchyard-")+maxNameLen+9 {
			t.Fatalf("containerName(%q) too long: %d", id, len(got))
		}
	})
}

func TestBuildCreate(t *testing.T) {
	opts := buildOptions{owner: "agent-1", namePrefix: "switchyard-"}
	base := func(mod func(*driver.TaskSpec)) driver.TaskSpec {
		s := driver.TaskSpec{TaskID: "web.1", AppID: "/web", Image: "switchyard/testweb:dev"}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	labels := func(extra map[string]string) map[string]string {
		l := map[string]string{LabelTaskID: "web.1", LabelMesosTaskID: "web.1", LabelAppID: "/web", LabelOwner: "agent-1"}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	five := 5
	tests := []struct {
		name     string
		spec     driver.TaskSpec
		opts     *buildOptions
		wantCfg  *container.Config
		wantHost *container.HostConfig
	}{
		{
			name:     "minimal bridge",
			spec:     base(nil),
			wantCfg:  &container.Config{Image: "switchyard/testweb:dev", Labels: labels(nil)},
			wantHost: &container.HostConfig{NetworkMode: "bridge"},
		},
		{
			name: "sandbox mounted, MESOS_SANDBOX set",
			spec: base(func(s *driver.TaskSpec) {
				s.SandboxDir = "/var/lib/agent/sandboxes/web.1"
				s.Env = map[string]string{"A": "1"}
			}),
			opts: &buildOptions{owner: "agent-1", namePrefix: "switchyard-", sandboxMount: "/mnt/mesos/sandbox"},
			wantCfg: &container.Config{Image: "switchyard/testweb:dev", Labels: labels(nil),
				Env: []string{"A=1", "MESOS_SANDBOX=/mnt/mesos/sandbox"}},
			wantHost: &container.HostConfig{NetworkMode: "bridge", Binds: []string{"/var/lib/agent/sandboxes/web.1:/mnt/mesos/sandbox"}},
		},
		{
			name: "the app's MESOS_SANDBOX wins",
			spec: base(func(s *driver.TaskSpec) {
				s.SandboxDir = "/var/lib/agent/sandboxes/web.1"
				s.Env = map[string]string{"MESOS_SANDBOX": "/data"}
			}),
			opts:     &buildOptions{owner: "agent-1", namePrefix: "switchyard-", sandboxMount: "/mnt/mesos/sandbox"},
			wantCfg:  &container.Config{Image: "switchyard/testweb:dev", Labels: labels(nil), Env: []string{"MESOS_SANDBOX=/data"}},
			wantHost: &container.HostConfig{NetworkMode: "bridge", Binds: []string{"/var/lib/agent/sandboxes/web.1:/mnt/mesos/sandbox"}},
		},
		{
			name:     "no sandbox mount without a mount path",
			spec:     base(func(s *driver.TaskSpec) { s.SandboxDir = "/var/lib/agent/sandboxes/web.1" }),
			wantCfg:  &container.Config{Image: "switchyard/testweb:dev", Labels: labels(nil)},
			wantHost: &container.HostConfig{NetworkMode: "bridge"},
		},
		{
			name: "bridge with ports, env, volumes, privileged, args",
			spec: base(func(s *driver.TaskSpec) {
				s.Network = "BRIDGE"
				s.PortBindings = []driver.PortBinding{{HostPort: 31001, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 31002, ContainerPort: 53, Protocol: "udp,tcp"}, {HostPort: 31003}}
				s.Env = map[string]string{"PORT0": "31001", "A": "1"}
				s.Volumes = []driver.Volume{{HostPath: "/mnt/web", ContainerPath: "/usr/local/apache2/htdocs"}, {HostPath: "/etc/x", ContainerPath: "/x", ReadOnly: true}}
				s.Privileged = true
				s.Args = []string{"--dir", "/usr/local/apache2/htdocs"}
				s.Labels = map[string]string{"HAPROXY_GROUP": "webapps01", LabelTaskID: "spoofed"}
				s.User = "nobody"
				s.KillGracePeriod = 1500 * time.Millisecond
			}),
			opts: &buildOptions{owner: "agent-1", bridgeNetwork: "e2e-net", portBindIP: "10.99.0.1"},
			wantCfg: &container.Config{
				Image:  "switchyard/testweb:dev",
				Env:    []string{"A=1", "PORT0=31001"},
				Cmd:    []string{"--dir", "/usr/local/apache2/htdocs"},
				Labels: labels(map[string]string{"HAPROXY_GROUP": "webapps01"}),
				ExposedPorts: nat.PortSet{
					"80/tcp": {}, "53/udp": {}, "53/tcp": {}, "31003/tcp": {},
				},
				StopTimeout: func() *int { n := 2; return &n }(),
			},
			wantHost: &container.HostConfig{
				NetworkMode: "e2e-net",
				Privileged:  true,
				Binds:       []string{"/mnt/web:/usr/local/apache2/htdocs:rw", "/etc/x:/x:ro"},
				PortBindings: nat.PortMap{
					"80/tcp":    {{HostIP: "10.99.0.1", HostPort: "31001"}},
					"53/udp":    {{HostIP: "10.99.0.1", HostPort: "31002"}},
					"53/tcp":    {{HostIP: "10.99.0.1", HostPort: "31002"}},
					"31003/tcp": {{HostIP: "10.99.0.1", HostPort: "31003"}},
				},
			},
		},
		{
			name: "host network ignores port bindings; cmd runs through sh",
			spec: base(func(s *driver.TaskSpec) {
				s.Network = "host"
				s.PortBindings = []driver.PortBinding{{HostPort: 31001, ContainerPort: 80}}
				s.Cmd = "exec testweb --listen :$PORT0"
			}),
			wantCfg: &container.Config{
				Image: "switchyard/testweb:dev", Labels: labels(nil),
				Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"exec testweb --listen :$PORT0"},
			},
			wantHost: &container.HostConfig{NetworkMode: "host"},
		},
		{
			name: "parameters",
			spec: base(func(s *driver.TaskSpec) {
				s.Parameters = [][2]string{{"label", "a=b"}, {"env", "X=1"}, {"memory", "64m"}, {"cap-add", "NET_ADMIN"}, {"stop-timeout", "5"}, {"network", "USERNET"}}
				s.Network = "USER"
			}),
			wantCfg: &container.Config{
				Image: "switchyard/testweb:dev", Labels: labels(map[string]string{"a": "b"}),
				Env: []string{"X=1"}, StopTimeout: &five,
			},
			wantHost: &container.HostConfig{
				NetworkMode: "USERNET", CapAdd: []string{"NET_ADMIN"},
				Resources: container.Resources{Memory: 64 << 20},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			cfg, host, err := buildCreate(tc.spec, o)
			require.NoError(t, err)
			assert.Equal(t, tc.wantCfg, cfg)
			assert.Equal(t, tc.wantHost, host)
		})
	}
}

func TestBuildCreateErrors(t *testing.T) {
	tests := []struct {
		name string
		spec driver.TaskSpec
		want string
	}{
		{"no task id", driver.TaskSpec{Image: "x"}, "task id is empty"},
		{"no image", driver.TaskSpec{TaskID: "t"}, "no image"},
		{"bad network", driver.TaskSpec{TaskID: "t", Image: "x", Network: "OVERLAY"}, "unknown docker network"},
		{"user network without name", driver.TaskSpec{TaskID: "t", Image: "x", Network: "USER"}, "needs a \"network\" parameter"},
		{"bad protocol", driver.TaskSpec{TaskID: "t", Image: "x", PortBindings: []driver.PortBinding{{HostPort: 1, Protocol: "sctp"}}}, "protocol"},
		{"port out of range", driver.TaskSpec{TaskID: "t", Image: "x", PortBindings: []driver.PortBinding{{HostPort: 70000}}}, "out of range"},
		{"no ports at all", driver.TaskSpec{TaskID: "t", Image: "x", PortBindings: []driver.PortBinding{{}}}, "neither"},
		{"relative volume", driver.TaskSpec{TaskID: "t", Image: "x", Volumes: []driver.Volume{{HostPath: "data", ContainerPath: "/d"}}}, "absolute"},
		{"colon in volume", driver.TaskSpec{TaskID: "t", Image: "x", Volumes: []driver.Volume{{HostPath: "/a:b", ContainerPath: "/d"}}}, "':'"},
		{"bad env name", driver.TaskSpec{TaskID: "t", Image: "x", Env: map[string]string{"A=B": "c"}}, "environment variable"},
		{"unknown parameter", driver.TaskSpec{TaskID: "t", Image: "x", Parameters: [][2]string{{"frobnicate", "1"}}}, "unsupported docker parameter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := buildCreate(tc.spec, buildOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNewConfigFromEnv(t *testing.T) {
	t.Setenv(EnvOwner, "agent-7")
	t.Setenv(EnvBridgeNetwork, "sy-e2e")
	t.Setenv(EnvPortBindIP, "10.213.0.1")
	d, err := New(Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	assert.Equal(t, buildOptions{owner: "agent-7", namePrefix: "switchyard-", bridgeNetwork: "sy-e2e", portBindIP: "10.213.0.1"}, d.opts)

	d2, err := New(Config{Owner: "explicit", BridgeNetwork: "n", PortBindIP: "1.2.3.4", NamePrefix: "p-"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d2.Close() })
	assert.Equal(t, buildOptions{owner: "explicit", namePrefix: "p-", bridgeNetwork: "n", portBindIP: "1.2.3.4"}, d2.opts, "explicit config wins")
	assert.Equal(t, "docker", d2.Name())
}

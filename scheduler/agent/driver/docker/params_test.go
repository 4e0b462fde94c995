package docker

import (
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	units "github.com/docker/go-units"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyParameter(t *testing.T) {
	yes, two := true, int64(2)
	ten := 10
	tests := []struct {
		key, value string
		wantCfg    container.Config
		wantHost   container.HostConfig
	}{
		{key: "label", value: "a=b", wantCfg: container.Config{Labels: map[string]string{"a": "b"}}},
		{key: "--label", value: "flag", wantCfg: container.Config{Labels: map[string]string{"flag": ""}}},
		{key: "env", value: "A=1=2", wantCfg: container.Config{Env: []string{"A=1=2"}}},
		{key: "e", value: "B=", wantCfg: container.Config{Env: []string{"B="}}},
		{key: "volume", value: "/h:/c:ro", wantHost: container.HostConfig{Binds: []string{"/h:/c:ro"}}},
		{key: "v", value: "named:/data", wantHost: container.HostConfig{Binds: []string{"named:/data"}}},
		{key: "add-host", value: "db:10.0.0.5", wantHost: container.HostConfig{ExtraHosts: []string{"db:10.0.0.5"}}},
		{key: "cap-add", value: "NET_ADMIN", wantHost: container.HostConfig{CapAdd: []string{"NET_ADMIN"}}},
		{key: "cap-drop", value: "ALL", wantHost: container.HostConfig{CapDrop: []string{"ALL"}}},
		{key: "memory", value: "512m", wantHost: container.HostConfig{Resources: container.Resources{Memory: 512 << 20}}},
		{key: "memory-swap", value: "-1", wantHost: container.HostConfig{Resources: container.Resources{MemorySwap: -1}}},
		{key: "shm-size", value: "1g", wantHost: container.HostConfig{ShmSize: 1 << 30}},
		{key: "cpus", value: "1.5", wantHost: container.HostConfig{Resources: container.Resources{NanoCPUs: 1_500_000_000}}},
		{key: "cpu-shares", value: "512", wantHost: container.HostConfig{Resources: container.Resources{CPUShares: 512}}},
		{key: "pids-limit", value: "2", wantHost: container.HostConfig{Resources: container.Resources{PidsLimit: &two}}},
		{key: "ulimit", value: "nofile=1024:2048", wantHost: container.HostConfig{Resources: container.Resources{Ulimits: []*units.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}}}},
		{key: "user", value: "1000:1000", wantCfg: container.Config{User: "1000:1000"}},
		{key: "workdir", value: "/srv", wantCfg: container.Config{WorkingDir: "/srv"}},
		{key: "hostname", value: "web", wantCfg: container.Config{Hostname: "web"}},
		{key: "entrypoint", value: "/bin/app", wantCfg: container.Config{Entrypoint: []string{"/bin/app"}}},
		{key: "dns", value: "1.1.1.1", wantHost: container.HostConfig{DNS: []string{"1.1.1.1"}}},
		{key: "dns-search", value: "example.com", wantHost: container.HostConfig{DNSSearch: []string{"example.com"}}},
		{key: "log-driver", value: "none", wantHost: container.HostConfig{LogConfig: container.LogConfig{Type: "none"}}},
		{key: "log-opt", value: "max-size=1m", wantHost: container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"max-size": "1m"}}}},
		{key: "net", value: "host", wantHost: container.HostConfig{NetworkMode: "host"}},
		{key: "sysctl", value: "net.core.somaxconn=1024", wantHost: container.HostConfig{Sysctls: map[string]string{"net.core.somaxconn": "1024"}}},
		{key: "tmpfs", value: "/run:size=1m", wantHost: container.HostConfig{Tmpfs: map[string]string{"/run": "size=1m"}}},
		{key: "device", value: "/dev/fuse", wantHost: container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}}}}},
		{key: "stop-signal", value: "SIGINT", wantCfg: container.Config{StopSignal: "SIGINT"}},
		{key: "stop-timeout", value: "10", wantCfg: container.Config{StopTimeout: &ten}},
		{key: "expose", value: "8080/udp", wantCfg: container.Config{ExposedPorts: nat.PortSet{"8080/udp": {}}}},
		{key: "read-only", value: "", wantHost: container.HostConfig{ReadonlyRootfs: true}},
		{key: "privileged", value: "true", wantHost: container.HostConfig{Privileged: true}},
		{key: "init", value: "true", wantHost: container.HostConfig{Init: &yes}},
		{key: "ipc", value: "host", wantHost: container.HostConfig{IpcMode: "host"}},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			var cfg container.Config
			var host container.HostConfig
			require.NoError(t, applyParameter(tc.key, tc.value, createRequest{cfg: &cfg, host: &host}))
			assert.Equal(t, tc.wantCfg, cfg)
			assert.Equal(t, tc.wantHost, host)
		})
	}
}

func TestApplyParameterErrors(t *testing.T) {
	tests := []struct{ key, value, want string }{
		{"frobnicate", "1", "unsupported docker parameter"},
		{"name", "x", "the agent manages this option"},
		{"restart", "always", "the agent manages this option"},
		{"publish", "80:80", "the agent manages this option"},
		{"env", "NOVALUE", "NAME=VALUE"},
		{"label", "=v", "KEY"},
		{"memory", "lots", "size"},
		{"cpus", "-1", "non-negative"},
		{"ulimit", "nofile", "ulimit"},
		{"add-host", "db", "HOST:IP"},
		{"volume", "relative", "absolute DST"},
		{"volume", "a:b:c:d", "absolute DST"},
		{"tmpfs", "run", "absolute"},
		{"expose", "x/tcp", "PORT"},
		{"read-only", "maybe", "true or false"},
		{"stop-timeout", "soon", "integer"},
		{"network", "", "name"},
		{"device", "/a:/b:rw:x", "device"},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			err := applyParameters([][2]string{{tc.key, tc.value}}, createRequest{cfg: &container.Config{}, host: &container.HostConfig{}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), tc.key, "error names the parameter")
		})
	}
}

func TestApplyParametersOrderAndOverride(t *testing.T) {
	cfg := &container.Config{Env: []string{"A=0", "B=1"}}
	host := &container.HostConfig{}
	err := applyParameters([][2]string{{"env", "A=2"}, {"env", "C=3"}, {"label", "k=1"}, {"label", "k=2"}}, createRequest{cfg: cfg, host: host})
	require.NoError(t, err)
	assert.Equal(t, []string{"A=2", "B=1", "C=3"}, cfg.Env)
	assert.Equal(t, map[string]string{"k": "2"}, cfg.Labels)
}

// FuzzApplyParameter feeds arbitrary app parameters (untrusted input from
// the app definition): they must be accepted or rejected, never crash.
func FuzzApplyParameter(f *testing.F) {
	seeds := [][2]string{{"label", "a=b"}, {"memory", "1g"}, {"ulimit", "nofile=1:2"}, {"device", "/dev/x:/y:r"}, {"expose", "80/tcp"}, {"cpus", "1e308"}, {"tmpfs", "/t:"}, {"volume", ":"}}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		cfg, host := &container.Config{}, &container.HostConfig{}
		err := applyParameter(key, value, createRequest{cfg: cfg, host: host})
		if err == nil && key == "" {
			t.Fatalf("empty key accepted")
		}
	})
}

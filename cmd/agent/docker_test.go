package main

import (
	"context"
	"os"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver/docker"
)

func TestDockerFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    docker.Config
		wantErr string
	}{
		{name: "defaults", want: docker.Config{BridgeNetwork: "bridge", SandboxMount: "/mnt/mesos/sandbox"}},
		{name: "no sandbox mount", args: []string{"--docker-sandbox-mount", ""}, want: docker.Config{BridgeNetwork: "bridge"}},
		{name: "relative sandbox mount", args: []string{"--docker-sandbox-mount", "sandbox"}, wantErr: "--docker-sandbox-mount"},
		{
			name: "flags",
			args: []string{"--hostname", "node1", "--docker-host", "tcp://d:2375", "--docker-network", "sy-net", "--docker-bind-ip", "10.0.0.5"},
			want: docker.Config{Host: "tcp://d:2375", Owner: "node1", BridgeNetwork: "sy-net", PortBindIP: "10.0.0.5", SandboxMount: "/mnt/mesos/sandbox"},
		},
		{
			name: "environment fallback",
			env:  map[string]string{docker.EnvBridgeNetwork: "env-net", docker.EnvPortBindIP: "127.0.0.1"},
			want: docker.Config{BridgeNetwork: "env-net", PortBindIP: "127.0.0.1", SandboxMount: "/mnt/mesos/sandbox"},
		},
		{
			name: "flags win over environment",
			args: []string{"--docker-network", "flag-net", "--docker-bind-ip", "::1"},
			env:  map[string]string{docker.EnvBridgeNetwork: "env-net", docker.EnvPortBindIP: "127.0.0.1"},
			want: docker.Config{BridgeNetwork: "flag-net", PortBindIP: "::1", SandboxMount: "/mnt/mesos/sandbox"},
		},
		{name: "bad bind ip", args: []string{"--docker-bind-ip", "not-an-ip"}, wantErr: "--docker-bind-ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{docker.EnvBridgeNetwork, docker.EnvPortBindIP} {
				t.Setenv(k, "") // restored after the test
				require.NoError(t, os.Unsetenv(k))
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var got docker.Config
			var cfgErr error
			app := &cli.App{
				Name:  "agent",
				Flags: append([]cli.Flag{&cli.StringFlag{Name: "hostname"}}, dockerDriver().flags...),
				Action: func(c *cli.Context) error {
					got, cfgErr = dockerConfig(c, nil)
					return nil
				},
			}
			require.NoError(t, app.RunContext(t.Context(), append([]string{"agent"}, tt.args...)))
			if tt.wantErr != "" {
				assert.ErrorContains(t, cfgErr, tt.wantErr)
				return
			}
			require.NoError(t, cfgErr)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestDockerFlagsRegistered checks the agent binary itself accepts the
// Docker flags (without --docker they are parsed but unused).
func TestDockerFlagsRegistered(t *testing.T) {
	ran := false
	app := newApp(func(_ context.Context, _ agent.Config) error { ran = true; return nil })
	err := app.RunContext(t.Context(), []string{"agent", "--data-dir", t.TempDir(), "--docker-network", "n", "--docker-bind-ip", "127.0.0.1"})
	require.NoError(t, err)
	assert.True(t, ran)
}

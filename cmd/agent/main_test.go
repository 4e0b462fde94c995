package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/leader"
)

func TestFlagsToConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("# cluster\ns3cret\n"), 0o600))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, testCA(t), 0o600))
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, cfg agent.Config)
		wantErr string
	}{
		{
			name: "everything",
			args: []string{"--scheduler", "http://m:8080", "--hostname", "node1", "--address", "10.0.0.5",
				"--resources", "cpus:4;mem:4096;disk:10000;ports:[31000-32000]", "--attributes", "rack:r1;zone:a",
				"--data-dir", dir, "--log-level", "debug", "--gc_delay", "10m", "--shutdown-delay", "2s",
				"--fetch-local-dir", "/srv/artifacts", "--fetch-local-dir", "/mnt/nfs", "--secrets-dir", "/etc/switchyard/secrets"},
			check: func(t *testing.T, cfg agent.Config) {
				assert.Equal(t, "http://m:8080", cfg.SchedulerURL)
				assert.Equal(t, "node1", cfg.Hostname)
				assert.Equal(t, "10.0.0.5", cfg.Address)
				assert.Equal(t, agentapi.Resources{CPUs: 4, Mem: 4096, Disk: 10000, Ports: []agentapi.PortRange{{Begin: 31000, End: 32000}}}, cfg.Resources)
				assert.Equal(t, map[string]string{"rack": "r1", "zone": "a"}, cfg.Attributes)
				assert.Equal(t, dir, cfg.DataDir)
				assert.Equal(t, 10*time.Minute, cfg.SandboxRetention)
				assert.Equal(t, 2*time.Second, cfg.ShutdownDelay)
				assert.Equal(t, []string{"/srv/artifacts", "/mnt/nfs"}, cfg.Fetch.LocalDirs)
				assert.Equal(t, "/etc/switchyard/secrets", cfg.SecretsDir)
				assert.Contains(t, cfg.Drivers, "process")
				assert.NotContains(t, cfg.Drivers, "docker")
			},
		},
		{
			name: "defaults",
			args: []string{"--data-dir", dir},
			check: func(t *testing.T, cfg agent.Config) {
				assert.Equal(t, "http://127.0.0.1:8080", cfg.SchedulerURL)
				assert.Positive(t, cfg.Resources.CPUs)
				assert.Equal(t, []agentapi.PortRange{{Begin: 31000, End: 32000}}, cfg.Resources.Ports)
				assert.Empty(t, cfg.Attributes)
				assert.Zero(t, cfg.ShutdownDelay, "tasks are signalled at once by default")
				assert.Empty(t, cfg.Fetch.LocalDirs, "no local files by default")
			},
		},
		{
			name: "security",
			args: []string{"--data-dir", dir, "--secret-file", secretFile, "--default-user", "daemon", "--allow-root-tasks",
				"--task-env-passthrough", "HTTP_PROXY,NO_PROXY", "--task-env-passthrough", "TZ"},
			check: func(t *testing.T, cfg agent.Config) {
				assert.Equal(t, "s3cret", cfg.Secret)
				assert.Equal(t, "daemon", cfg.DefaultUser)
				assert.True(t, cfg.AllowRootTasks)
				assert.Equal(t, []string{"HTTP_PROXY", "NO_PROXY", "TZ"}, cfg.TaskEnvPassthrough)
				assert.Nil(t, cfg.HTTPClient, "no TLS options: the default client")
			},
		},
		{
			name: "security defaults",
			args: []string{"--data-dir", dir},
			check: func(t *testing.T, cfg agent.Config) {
				assert.Empty(t, cfg.Secret)
				assert.False(t, cfg.AllowRootTasks, "root tasks are refused by default")
				assert.Empty(t, cfg.TaskEnvPassthrough, "no agent variable reaches tasks by default")
				if os.Geteuid() == 0 {
					assert.Equal(t, "nobody", cfg.DefaultUser, "a root agent runs tasks as nobody")
				} else {
					assert.Empty(t, cfg.DefaultUser, "tasks run as the agent's user")
				}
			},
		},
		{
			name: "ca file",
			args: []string{"--data-dir", dir, "--master", "https://m:8443", "--ca-file", caFile},
			check: func(t *testing.T, cfg agent.Config) {
				require.NotNil(t, cfg.HTTPClient)
			},
		},
		{
			name: "several masters",
			args: []string{"--data-dir", dir, "--master", "http://m1:8080, http://m2:8080"},
			check: func(t *testing.T, cfg agent.Config) {
				assert.Equal(t, "http://m1:8080", cfg.SchedulerURL)
				require.NotNil(t, cfg.HTTPClient)
				ft, ok := cfg.HTTPClient.Transport.(*leader.FailoverTransport)
				require.True(t, ok, "requests follow the masters")
				require.Len(t, ft.Masters, 2)
				assert.Equal(t, "m2:8080", ft.Masters[1].Host)
			},
		},
		{name: "one bad master of two", args: []string{"--data-dir", dir, "--master", "http://m1:8080,m2:8080"},
			wantErr: `--master "m2:8080": want the scheduler's URL with its scheme`},
		{name: "missing secret file", args: []string{"--data-dir", dir, "--secret-file", secretFile + ".missing"}, wantErr: "--secret-file"},
		{name: "ca file without certificate", args: []string{"--data-dir", dir, "--ca-file", secretFile}, wantErr: "no PEM certificate"},
		{name: "cert without key", args: []string{"--data-dir", dir, "--cert-file", caFile}, wantErr: "go together"},
		{name: "bad resources", args: []string{"--resources", "ports:[9-1]"}, wantErr: "--resources"},
		{name: "bad attributes", args: []string{"--attributes", "rack"}, wantErr: "--attributes"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "--log-level"},
		{name: "log level words of marathon-lb, any case", args: []string{"--data-dir", dir, "--log-level", "WARNING"},
			check: func(t *testing.T, cfg agent.Config) { assert.False(t, cfg.Logger.Enabled(t.Context(), slog.LevelInfo)) }},
		{name: "resources with a Mesos role", args: []string{"--data-dir", dir, "--resources", "cpus(*):2;mem(*):512"},
			check: func(t *testing.T, cfg agent.Config) {
				assert.Equal(t, 2.0, cfg.Resources.CPUs)
				assert.Equal(t, 512.0, cfg.Resources.Mem)
			}},
		{name: "unknown resource name", args: []string{"--data-dir", dir, "--resources", "cpu:4"},
			wantErr: `--resources: unknown resource "cpu" (did you mean "cpus"?): the agent offers only cpus, mem, disk, ports`},
		{name: "unknown resource among known ones", args: []string{"--data-dir", dir, "--resources", "cpus:4;memory:1024"},
			wantErr: `unknown resource "memory" (did you mean "mem"?)`},
		{name: "resource without a near name", args: []string{"--data-dir", dir, "--resources", "gpus:1"},
			wantErr: `--resources: unknown resource "gpus": the agent offers only cpus, mem, disk, ports`},
		{name: "master without scheme", args: []string{"--data-dir", dir, "--master", "127.0.0.1:8080"},
			wantErr: `--master "127.0.0.1:8080": want the scheduler's URL with its scheme, e.g. http://127.0.0.1:8080`},
		{name: "master host name without scheme", args: []string{"--data-dir", dir, "--master", "master:8080"},
			wantErr: `e.g. http://master:8080`},
		{name: "master with another scheme", args: []string{"--data-dir", dir, "--master", "zk://zk1:2181/mesos"},
			wantErr: `--master "zk://zk1:2181/mesos": want the scheduler's URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *agent.Config
			app := newApp(func(_ context.Context, cfg agent.Config) error {
				got = &cfg
				return nil
			})
			err := app.RunContext(t.Context(), append([]string{"agent"}, tt.args...))
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, got)
			tt.check(t, *got)
		})
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	app := newApp(func(context.Context, agent.Config) error {
		t.Error("--version must not start the agent")
		return nil
	})
	app.Writer = &out
	require.NoError(t, app.RunContext(t.Context(), []string{"agent", "--version"}))
	assert.Equal(t, "agent version "+cliutil.Version()+"\n", out.String())
}

func TestExistingParent(t *testing.T) {
	dir := t.TempDir()
	assert.Equal(t, dir, existingParent(filepath.Join(dir, "a", "b")))
	assert.Equal(t, dir, existingParent(dir))
}

// testCA returns a self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

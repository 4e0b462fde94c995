package compat

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGoMarathonClientAuthTLS: go-marathon with HTTP basic credentials
// and an http.Client trusting the scheduler's certificate drives a
// scheduler serving HTTPS only, with --http-credentials, whose agent
// connects with a client certificate (--agent-client-ca): create, scale,
// delete and the event stream work as over plain HTTP.
func TestGoMarathonClientAuthTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes: skipped with -short")
	}
	_, err := exec.LookPath("python3")
	need(t, err == nil, "python3 (task command): %v", err)

	schedBin, agentBin := buildBinaries(t)
	dir := t.TempDir()
	ca := issue(t, dir, "ca", nil, false)
	server := issue(t, dir, "scheduler", ca, false)
	agentCert := issue(t, dir, "agent", ca, true)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	port := freePort(t)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	sched := start(t, schedBin, "--http-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--disable-http",
		"--https-port", strconv.Itoa(port), "--tls-cert", server.certFile, "--tls-key", server.keyFile,
		"--http-credentials", "compat:s3cret", "--agent-client-ca", ca.certFile,
		"--data-dir", t.TempDir(), "--agent-timeout", "3s", "--event-keepalive", "2s")
	waitHTTPWith(t, hc, base+"/ping")
	lo, hi := freeRange(t, 20)
	agentDir := t.TempDir()
	for _, d := range []string{agentDir, filepath.Dir(agentDir)} {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	t.Cleanup(func() { killSandboxProcs(agentDir) })
	start(t, agentBin, "--master", base, "--ca-file", ca.certFile, "--cert-file", agentCert.certFile, "--key-file", agentCert.keyFile,
		"--hostname", "compat-agent", "--address", "127.0.0.1",
		"--resources", fmt.Sprintf("cpus:8;mem:8192;disk:10000;ports:[%d-%d]", lo, hi), "--data-dir", agentDir)

	clientLog := &syncBuffer{}
	cfg := marathon.NewDefaultConfig()
	cfg.URL = base
	cfg.HTTPClient = hc
	cfg.EventsTransport = marathon.EventsTransportSSE
	cfg.LogOutput = clientLog
	cfg.PollingWaitTime = 100 * time.Millisecond

	// Without credentials the API refuses go-marathon.
	anon, err := marathon.NewClient(cfg)
	require.NoError(t, err)
	_, err = anon.Applications(nil)
	var apiErr *marathon.APIError
	require.True(t, errors.As(err, &apiErr), "no credentials: %v", err)
	assert.Equal(t, marathon.ErrCodeUnauthorized, apiErr.ErrCode)

	cfg.HTTPBasicAuthUser, cfg.HTTPBasicPassword = "compat", "s3cret"
	client, err := marathon.NewClient(cfg)
	require.NoError(t, err)
	info, err := client.Info()
	require.NoError(t, err, "Info decodes")
	assert.Equal(t, "marathon", info.Name)

	rec, err := record(t, client, marathon.EventIDApplications|marathon.EventIDAPIRequest|
		marathon.EventIDDeploymentSuccess|marathon.EventIDStreamAttached)
	require.NoError(t, err, "AddEventsListener over HTTPS with credentials")

	id := "/compat/secure"
	zero := 0
	app := &marathon.Application{}
	app.Name(id).Command("python3 -m http.server $PORT0").CPU(0.1).Memory(32).Count(1).
		AddPortDefinition(marathon.PortDefinition{Port: &zero, Protocol: "tcp"})
	_, err = client.CreateApplication(app)
	require.NoError(t, err, "CreateApplication")
	require.NoError(t, client.WaitOnApplication(id, 30*time.Second), "WaitOnApplication: the agent runs the task (it registered with its certificate)")

	dep, err := client.ScaleApplicationInstances(id, 2, false)
	require.NoError(t, err, "ScaleApplicationInstances")
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 30*time.Second), "WaitOnDeployment (scale)")
	tasks, err := client.Tasks(id)
	require.NoError(t, err, "Tasks")
	assert.Len(t, tasks.Tasks, 2)

	dep, err = client.DeleteApplication(id, false)
	require.NoError(t, err, "DeleteApplication")
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 30*time.Second), "WaitOnDeployment (delete)")

	eventually(t, 15*time.Second, "app_terminated_event over the HTTPS stream", func() (bool, string) {
		return len(rec.find(func(e *marathon.Event) bool {
			at, ok := e.Event.(*marathon.EventAppTerminated)
			return ok && at.AppID == id
		})) > 0, fmt.Sprint(rec.names())
	})
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventAPIRequest)
		return ok && ev.AppDefinition != nil && ev.AppDefinition.ID == id
	}), "api_post_event")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventStatusUpdate)
		return ok && ev.AppID == id && ev.TaskStatus == "TASK_RUNNING"
	}), "status_update_event TASK_RUNNING")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventDeploymentSuccess)
		return ok && ev.ID != ""
	}), "deployment_success")
	assert.Contains(t, sched.log.String(), "agents must present a client certificate over HTTPS")
	assert.NotContains(t, sched.log.String(), "agent API request refused")
}

package compat

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder keeps the events a go-marathon listener delivered.
type recorder struct {
	mu     sync.Mutex
	events []*marathon.Event
}

func (r *recorder) add(e *marathon.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// record subscribes client to the events of filter and records them
// until the test ends.
func record(t *testing.T, client marathon.Marathon, filter int) (*recorder, error) {
	t.Helper()
	events, err := client.AddEventsListener(filter)
	if err != nil {
		return nil, err
	}
	rec := &recorder{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case e := <-events:
				rec.add(e)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		client.RemoveEventsListener(events)
	})
	return rec, nil
}

// find returns the events whose payload matches pred.
func (r *recorder) find(pred func(*marathon.Event) bool) []*marathon.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*marathon.Event
	for _, e := range r.events {
		if pred(e) {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range r.events {
		seen[e.Name] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestGoMarathonClient drives our scheduler and one agent with
// github.com/gambol99/go-marathon v0.7.1, a Marathon client nobody here
// wrote: every call must decode without error and change state as it
// would on Marathon.
func TestGoMarathonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes: skipped with -short")
	}
	_, err := exec.LookPath("python3")
	need(t, err == nil, "python3 (task command): %v", err)

	schedBin, agentBin := buildBinaries(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start(t, schedBin, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", t.TempDir(),
		"--agent-timeout", "3s", "--event-keepalive", "2s")
	waitHTTP(t, base+"/ping")
	lo, hi := freeRange(t, 100)
	agentDir := t.TempDir()
	// A root agent runs tasks as nobody, who must pass through the data
	// dir to its sandboxes (t.TempDir and its parent are 0700).
	for _, d := range []string{agentDir, filepath.Dir(agentDir)} {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	t.Cleanup(func() { killSandboxProcs(agentDir) }) // runs after the agent stopped
	start(t, agentBin, "--master", base, "--hostname", "compat-agent", "--address", "127.0.0.1",
		"--resources", fmt.Sprintf("cpus:8;mem:8192;disk:10000;ports:[%d-%d]", lo, hi),
		"--attributes", "rack:r1", "--data-dir", agentDir)

	clientLog := &syncBuffer{}
	cfg := marathon.NewDefaultConfig()
	cfg.URL = base
	cfg.EventsTransport = marathon.EventsTransportSSE
	cfg.LogOutput = clientLog
	cfg.PollingWaitTime = 100 * time.Millisecond
	client, err := marathon.NewClient(cfg)
	require.NoError(t, err)

	ok, err := client.Ping()
	require.NoError(t, err)
	require.True(t, ok)
	info, err := client.Info()
	require.NoError(t, err, "Info decodes")
	assert.Equal(t, "marathon", info.Name)
	leader, err := client.Leader()
	require.NoError(t, err)
	assert.NotEmpty(t, leader)

	rec, err := record(t, client, marathon.EventIDApplications|marathon.EventIDAPIRequest|
		marathon.EventIDDeploymentInfo|marathon.EventIDDeploymentSuccess|marathon.EventIDDeploymentFailed|
		marathon.EventIDStreamAttached|marathon.EventIDDeploymentStepSuccess)
	require.NoError(t, err)

	// The client's default transport: HTTP callbacks registered through
	// /v2/eventSubscriptions, delivered to a server on the loopback.
	cbCfg := cfg
	cbCfg.EventsTransport = marathon.EventsTransportCallback
	cbCfg.EventsInterface = "lo"
	cbCfg.EventsPort = freePort(t)
	cbCfg.LogOutput = clientLog
	cbClient, err := marathon.NewClient(cbCfg)
	require.NoError(t, err)
	cbRec, err := record(t, cbClient, marathon.EventIDApplications|marathon.EventIDAPIRequest)
	require.NoError(t, err, "AddEventsListener (callback transport)")
	subs, err := cbClient.Subscriptions()
	require.NoError(t, err, "Subscriptions")
	assert.Contains(t, subs.CallbackURLs, fmt.Sprintf("http://127.0.0.1:%d/event", cbCfg.EventsPort))

	// Nested id: task ids are "compat_web.<uuid>" and KillTask derives the
	// app id from them.
	id := "/compat/web"
	zero := 0
	hc := marathon.NewDefaultHealthCheck()
	path := "/"
	hc.Path = &path
	hc.IntervalSeconds, hc.GracePeriodSeconds, hc.TimeoutSeconds = 1, 10, 1
	app := &marathon.Application{}
	app.Name(id).Command("python3 -m http.server $PORT0").CPU(0.1).Memory(32).Count(2).
		AddPortDefinition(marathon.PortDefinition{Port: &zero, Protocol: "tcp"}).
		AddLabel("owner", "compat").
		AddHealthCheck(*hc)

	created, err := client.CreateApplication(app)
	require.NoError(t, err, "CreateApplication")
	assert.Equal(t, id, created.ID)
	require.Len(t, created.Ports, 1, "service ports (the 1.4 mirror v0.7.1 reads)")
	assert.True(t, created.Ports[0] >= 10000 && created.Ports[0] <= 20000, "servicePort %d", created.Ports[0])
	assert.NotEmpty(t, created.DeploymentIDs(), "deployments in the 201 body")

	_, err = client.CreateApplication(app)
	var apiErr *marathon.APIError
	require.True(t, errors.As(err, &apiErr), "duplicate POST: %v", err)
	assert.Equal(t, marathon.ErrCodeDuplicateID, apiErr.ErrCode, "409 without deployments = duplicate id: %v", err)

	bad := &marathon.Application{}
	bad.Name("/Bad_Id").Command("sleep 100")
	_, err = client.CreateApplication(bad)
	require.True(t, errors.As(err, &apiErr), "invalid app: %v", err)
	assert.Equal(t, marathon.ErrCodeInvalidBean, apiErr.ErrCode, "422: %v", err)

	require.NoError(t, client.WaitOnApplication(id, 30*time.Second), "WaitOnApplication")
	eventually(t, 20*time.Second, "ApplicationOK (running + healthy)", func() (bool, string) {
		ok, err := client.ApplicationOK(id)
		return err == nil && ok, fmt.Sprint(ok, err)
	})

	got, err := client.Application(id)
	require.NoError(t, err, "Application")
	assert.Equal(t, 2, *got.Instances)
	assert.Equal(t, 2, got.TasksRunning)
	assert.Equal(t, 2, got.TasksHealthy)
	require.Len(t, got.Tasks, 2)
	assert.Equal(t, map[string]string{"owner": "compat"}, *got.Labels)
	for _, tk := range got.Tasks {
		assert.True(t, strings.HasPrefix(tk.ID, "compat_web."), "task id %q", tk.ID)
		assert.Equal(t, "compat-agent", tk.Host)
		assert.Len(t, tk.Ports, 1)
		require.NotEmpty(t, tk.HealthCheckResults)
		assert.True(t, tk.HealthCheckResults[0].Alive)
	}
	byEmbed, err := client.ApplicationBy(id, &marathon.GetAppOpts{Embed: []string{"apps.tasks"}})
	require.NoError(t, err, "ApplicationBy embed")
	assert.Len(t, byEmbed.Tasks, 2)

	apps, err := client.Applications(url.Values{"embed": []string{"apps.tasks", "apps.counts", "apps.deployments"}})
	require.NoError(t, err, "Applications(embed)")
	require.Len(t, apps.Apps, 1)
	assert.Len(t, apps.Apps[0].Tasks, 2)
	assert.Equal(t, 2, apps.Apps[0].TasksRunning)
	names, err := client.ListApplications(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{id}, names)

	// Scale.
	dep, err := client.ScaleApplicationInstances(id, 3, false)
	require.NoError(t, err, "ScaleApplicationInstances")
	require.NotEmpty(t, dep.DeploymentID)
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 30*time.Second), "WaitOnDeployment (scale)")
	tasks, err := client.Tasks(id)
	require.NoError(t, err, "Tasks")
	assert.Len(t, tasks.Tasks, 3)
	all, err := client.AllTasks(&marathon.AllTasksOpts{Status: "running"})
	require.NoError(t, err, "AllTasks")
	assert.Len(t, all.Tasks, 3)

	deps, err := client.Deployments()
	require.NoError(t, err, "Deployments")
	assert.Empty(t, deps, "no deployment left")

	// Kill one task: it is replaced, the app keeps 3 instances.
	victim := tasks.Tasks[0].ID
	killed, err := client.KillTask(victim, nil)
	require.NoError(t, err, "KillTask derives the app from the task id")
	assert.Equal(t, victim, killed.ID)
	eventually(t, 30*time.Second, "killed task replaced", func() (bool, string) {
		ts, err := client.Tasks(id)
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, tk := range ts.Tasks {
			if tk.ID == victim {
				return false, "victim still listed: " + tk.State
			}
			if tk.State == "TASK_RUNNING" {
				running++
			}
		}
		return running == 3, fmt.Sprintf("%d running", running)
	})

	// Update (partial: only labels) and rolling restart.
	upd := &marathon.Application{ID: id}
	upd.AddLabel("owner", "compat").AddLabel("stage", "updated")
	dep, err = client.UpdateApplication(upd, false)
	require.NoError(t, err, "UpdateApplication")
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 60*time.Second), "WaitOnDeployment (update)")
	got, err = client.Application(id)
	require.NoError(t, err)
	assert.Equal(t, "updated", (*got.Labels)["stage"])
	assert.Equal(t, 3, *got.Instances, "a partial update keeps instances")

	// Versions and rollback to the definition POSTed first (2 instances,
	// no "stage" label).
	versions, err := client.ApplicationVersions(id)
	require.NoError(t, err, "ApplicationVersions")
	assert.Contains(t, versions.Versions, created.Version)
	assert.GreaterOrEqual(t, len(versions.Versions), 3, "create, scale, update")
	first, err := client.ApplicationByVersion(id, created.Version)
	require.NoError(t, err, "ApplicationByVersion")
	assert.Equal(t, 2, *first.Instances)
	dep, err = client.SetApplicationVersion(id, &marathon.ApplicationVersion{Version: created.Version})
	require.NoError(t, err, "SetApplicationVersion")
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 60*time.Second), "WaitOnDeployment (rollback)")
	got, err = client.Application(id)
	require.NoError(t, err)
	assert.NotContains(t, *got.Labels, "stage", "rollback restores the labels")
	assert.Equal(t, 2, *got.Instances, "rollback restores instances")

	before, err := client.Tasks(id)
	require.NoError(t, err)
	dep, err = client.RestartApplication(id, false)
	require.NoError(t, err, "RestartApplication")
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 60*time.Second), "WaitOnDeployment (restart)")
	after, err := client.Tasks(id)
	require.NoError(t, err)
	require.Len(t, after.Tasks, 2)
	for _, tk := range after.Tasks {
		for _, old := range before.Tasks {
			assert.NotEqual(t, old.ID, tk.ID, "restart replaced every task")
		}
	}

	// KillTasks with scale=true (zdd.py's way to drain): instances drop.
	require.NoError(t, client.KillTasks([]string{after.Tasks[0].ID}, &marathon.KillTaskOpts{Scale: true}), "KillTasks scale")
	eventually(t, 30*time.Second, "scaled down by KillTasks", func() (bool, string) {
		a, err := client.Application(id)
		if err != nil {
			return false, err.Error()
		}
		return *a.Instances == 1 && a.TasksRunning == 1 && len(a.Tasks) == 1, fmt.Sprint(*a.Instances, a.TasksRunning, len(a.Tasks))
	})
	eventually(t, 30*time.Second, "KillTasks' scale deployment done", func() (bool, string) {
		ds, err := client.Deployments()
		return err == nil && len(ds) == 0, fmt.Sprint(len(ds), err)
	})

	// Delete.
	dep, err = client.DeleteApplication(id, false)
	require.NoError(t, err, "DeleteApplication")
	require.NotNil(t, dep)
	require.NoError(t, client.WaitOnDeployment(dep.DeploymentID, 30*time.Second), "WaitOnDeployment (delete)")
	_, err = client.Application(id)
	require.True(t, errors.As(err, &apiErr), "Application after delete: %v", err)
	assert.Equal(t, marathon.ErrCodeNotFound, apiErr.ErrCode)

	// Events, decoded by go-marathon into its own types.
	eventually(t, 15*time.Second, "app_terminated_event", func() (bool, string) {
		return len(rec.find(func(e *marathon.Event) bool {
			at, ok := e.Event.(*marathon.EventAppTerminated)
			return ok && at.AppID == id
		})) > 0, fmt.Sprint(rec.names())
	})
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventStreamAttached)
		return ok && ev.RemoteAddress != ""
	}), "event_stream_attached")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventAPIRequest)
		return ok && ev.AppDefinition != nil && ev.AppDefinition.ID == id
	}), "api_post_event with the app definition")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventStatusUpdate)
		return ok && ev.AppID == id && ev.TaskStatus == "TASK_RUNNING" && len(ev.Ports) == 1 && ev.SlaveID != ""
	}), "status_update_event TASK_RUNNING")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventStatusUpdate)
		return ok && ev.TaskID == victim && ev.TaskStatus == "TASK_KILLED"
	}), "status_update_event TASK_KILLED for the killed task")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventHealthCheckChanged)
		return ok && ev.AppID == id && ev.Alive && ev.TaskID != ""
	}), "health_status_changed_event with taskId")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventDeploymentInfo)
		return ok && ev.Plan != nil && ev.Plan.ID != "" && ev.CurrentStep != nil
	}), "deployment_info with plan and currentStep")
	assert.NotEmpty(t, rec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventDeploymentSuccess)
		return ok && ev.ID != ""
	}), "deployment_success")

	assert.NotEmpty(t, cbRec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventAPIRequest)
		return ok && ev.AppDefinition != nil && ev.AppDefinition.ID == id
	}), "callback transport: api_post_event")
	assert.NotEmpty(t, cbRec.find(func(e *marathon.Event) bool {
		ev, ok := e.Event.(*marathon.EventStatusUpdate)
		return ok && ev.AppID == id && ev.TaskStatus == "TASK_RUNNING"
	}), "callback transport: status_update_event")
	t.Logf("event types the callback transport delivered: %v", cbRec.names())

	logText := clientLog.String()
	for _, bad := range []string{"failed to decode", "failed to receive event", "failed to handle event"} {
		for _, line := range strings.Split(logText, "\n") {
			if strings.Contains(line, bad) && !strings.Contains(line, "unable to handle event, type") {
				t.Errorf("go-marathon logged a decode problem: %s", line)
			}
		}
	}
	t.Logf("event types go-marathon delivered: %v", rec.names())
	for _, e := range rec.find(func(e *marathon.Event) bool { return e.Name == "deployment_failed" }) {
		t.Logf("deployment_failed: %+v", e.Event)
	}
}

package agent_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// fakeDriver is an in-memory "docker" driver whose stops can fail.
type fakeDriver struct {
	mu        sync.Mutex
	specs     map[string]driver.TaskSpec
	exits     map[string]chan driver.ExitResult
	failStops int
	stops     []string
	destroyed []string
	orphans   []driver.TaskHandle
	execs     [][]string
	execCode  int
	// atStart lists each task's sandbox when StartTask was called.
	atStart map[string][]string
	// destroyGate, when set, is closed by the test to let DestroyTask
	// return; destroying is closed when DestroyTask is entered.
	destroyGate, destroying chan struct{}
}

func (d *fakeDriver) ExecTask(_ context.Context, id string, argv []string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.exits[id]; !ok {
		return 0, driver.ErrTaskNotFound
	}
	d.execs = append(d.execs, argv)
	return d.execCode, nil
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{specs: map[string]driver.TaskSpec{}, exits: map[string]chan driver.ExitResult{}, atStart: map[string][]string{}}
}

func (d *fakeDriver) Name() string { return "docker" }

func (d *fakeDriver) StartTask(_ context.Context, spec driver.TaskSpec) (*driver.TaskHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.specs[spec.TaskID] = spec
	ents, _ := os.ReadDir(spec.SandboxDir)
	for _, e := range ents {
		d.atStart[spec.TaskID] = append(d.atStart[spec.TaskID], e.Name())
	}
	d.exits[spec.TaskID] = make(chan driver.ExitResult, 1)
	return &driver.TaskHandle{TaskID: spec.TaskID, Driver: "docker", State: []byte(`{"containerId":"c1"}`)}, nil
}

func (d *fakeDriver) WaitTask(ctx context.Context, id string) (<-chan driver.ExitResult, error) {
	d.mu.Lock()
	ch, ok := d.exits[id]
	d.mu.Unlock()
	if !ok {
		return nil, driver.ErrTaskNotFound
	}
	out := make(chan driver.ExitResult, 1)
	go func() {
		defer close(out)
		select {
		case res := <-ch:
			out <- res
		case <-ctx.Done():
		}
	}()
	return out, nil
}

func (d *fakeDriver) StopTask(_ context.Context, id string, _ time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stops = append(d.stops, id)
	if d.failStops > 0 {
		d.failStops--
		return errors.New("engine unavailable")
	}
	if ch, ok := d.exits[id]; ok {
		select {
		case ch <- driver.ExitResult{ExitCode: 143, Signal: 15, Killed: true}:
		default:
		}
	}
	return nil
}

func (d *fakeDriver) DestroyTask(_ context.Context, id string, _ bool) error {
	if d.destroyGate != nil {
		close(d.destroying)
		<-d.destroyGate
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.destroyed = append(d.destroyed, id)
	return nil
}

func (d *fakeDriver) InspectTask(_ context.Context, id string) (*driver.TaskInfo, error) {
	return &driver.TaskInfo{TaskID: id, Running: true, IPAddress: "172.17.0.5"}, nil
}

func (d *fakeDriver) RecoverTask(_ context.Context, h *driver.TaskHandle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.exits[h.TaskID]; !ok {
		d.exits[h.TaskID] = make(chan driver.ExitResult, 1)
	}
	return nil
}

func (d *fakeDriver) ListTasks(context.Context) ([]driver.TaskHandle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.orphans, nil
}

func (d *fakeDriver) snapshot() (stops, destroyed []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.stops...), append([]string(nil), d.destroyed...)
}

func runWithDriver(t *testing.T, url string, d driver.Driver) {
	t.Helper()
	a, err := agent.New(agent.Config{
		SchedulerURL: url, Hostname: "node1", Address: "10.1.2.3", DataDir: t.TempDir(),
		Drivers:  map[string]driver.Driver{"docker": d},
		PollWait: 200 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(t, a.Run(ctx))
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func TestDockerTaskThroughDriver(t *testing.T) {
	f, url := newFakeScheduler(t)
	d := newFakeDriver()
	d.failStops = 2
	runWithDriver(t, url, d)
	f.assign(agentapi.Assignment{
		TaskID: "nginx.1", AppID: "/nginx", Version: "v2",
		Container: &marathon.Container{Type: "DOCKER", Docker: &marathon.Docker{Image: "nginx:1"},
			PortMappings: []marathon.PortMapping{{ContainerPort: 80}}},
		HostPorts: []int{31500},
	})
	running := f.waitState(t, "nginx.1", marathon.TaskRunning)
	assert.Equal(t, []marathon.TaskIPAddress{{IPAddress: "172.17.0.5", Protocol: "IPv4"}}, running.IPAddresses)
	d.mu.Lock()
	spec := d.specs["nginx.1"]
	d.mu.Unlock()
	assert.Equal(t, "nginx:1", spec.Image)
	assert.Equal(t, []driver.PortBinding{{HostPort: 31500, ContainerPort: 80, Protocol: "tcp"}}, spec.PortBindings)
	assert.Equal(t, "31500", spec.Env["PORT0"])
	assert.Equal(t, "node1", spec.Env["HOST"])

	// Stopping fails twice; the agent retries until the task is gone.
	f.assign()
	killed := f.waitState(t, "nginx.1", marathon.TaskKilled)
	assert.Empty(t, killed.Message)
	stops, destroyed := d.snapshot()
	assert.Equal(t, []string{"nginx.1", "nginx.1", "nginx.1"}, stops)
	assert.Contains(t, destroyed, "nginx.1")
}

// TestKilledReportedAfterDestroy: the final status of a killed task is
// reported only once the driver released the task (container, ports), so
// the scheduler never places a replacement on resources still held.
func TestKilledReportedAfterDestroy(t *testing.T) {
	f, url := newFakeScheduler(t)
	d := newFakeDriver()
	d.destroyGate, d.destroying = make(chan struct{}), make(chan struct{})
	runWithDriver(t, url, d)
	f.assign(agentapi.Assignment{TaskID: "web.1", AppID: "/web",
		Container: &marathon.Container{Docker: &marathon.Docker{Image: "nginx", Network: "HOST"}}})
	f.waitState(t, "web.1", marathon.TaskRunning)
	f.assign()
	<-d.destroying
	// Several more reconcile rounds while the driver is still destroying.
	polls := f.pollCount()
	require.Eventually(t, func() bool { return f.pollCount() >= polls+3 }, 10*time.Second, 10*time.Millisecond)
	assert.NotContains(t, f.states("web.1"), marathon.TaskKilled, "reported while the task was not released yet")
	close(d.destroyGate)
	f.waitState(t, "web.1", marathon.TaskKilled)
}

func TestOrphansAreKilled(t *testing.T) {
	_, url := newFakeScheduler(t)
	d := newFakeDriver()
	d.orphans = []driver.TaskHandle{{TaskID: "orphan.1", Driver: "docker", State: []byte(`{}`)}}
	runWithDriver(t, url, d)
	require.Eventually(t, func() bool {
		_, destroyed := d.snapshot()
		return len(destroyed) == 1
	}, 5*time.Second, 10*time.Millisecond)
	stops, destroyed := d.snapshot()
	assert.Equal(t, []string{"orphan.1"}, stops)
	assert.Equal(t, []string{"orphan.1"}, destroyed)
}

func TestCommandHealthCheckRunsInsideTask(t *testing.T) {
	f, url := newFakeScheduler(t)
	d := newFakeDriver()
	d.execCode = 1
	runWithDriver(t, url, d)
	f.assign(agentapi.Assignment{
		TaskID: "db.1", AppID: "/db",
		Container: &marathon.Container{Docker: &marathon.Docker{Image: "postgres", Network: "HOST"}},
		HealthChecks: []marathon.HealthCheck{{Protocol: "COMMAND", Command: &marathon.CommandCheck{Value: "pg_isready"},
			IntervalSeconds: 1, TimeoutSeconds: 1}},
	})
	require.Eventually(t, func() bool {
		st, ok := f.last("db.1", marathon.TaskRunning)
		return ok && len(st.Health) == 1 && st.Health[0].ConsecutiveFailures == 1
	}, 10*time.Second, 10*time.Millisecond)
	st, _ := f.last("db.1", marathon.TaskRunning)
	assert.Contains(t, *st.Health[0].LastFailureCause, "exit status 1")
	d.mu.Lock()
	assert.Equal(t, []string{"/bin/sh", "-c", "pg_isready"}, d.execs[0])
	d.mu.Unlock()
}

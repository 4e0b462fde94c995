package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/state"
)

func TestBusDropsSlowSubscriber(t *testing.T) {
	dropped := 0
	b := newBus(4, func() { dropped++ })
	slow, cancelSlow := b.subscribe("slow")
	defer cancelSlow()
	fast, cancelFast := b.subscribe("fast")
	defer cancelFast()
	first := <-fast
	assert.Equal(t, marathon.EventStreamAttached, first.Type, "a stream's first event is its own attach")
	got := 0
	for i := range 10 {
		b.publish(marathon.EventAppTerminated, &marathon.AppTerminatedEvent{AppID: "/a"})
		ev := <-fast
		require.Equal(t, marathon.EventAppTerminated, ev.Type, "event %d", i)
		var payload marathon.AppTerminatedEvent
		require.NoError(t, json.Unmarshal(ev.Data, &payload))
		assert.Equal(t, "/a", payload.AppID)
		assert.Equal(t, ev.Type, payload.EventType)
		got++
	}
	assert.Equal(t, 10, got)
	n := 0
	for range slow {
		n++
	}
	assert.Equal(t, 4, n, "slow subscriber got its queue, then was closed")
	assert.Equal(t, 1, dropped)
	assert.Equal(t, 1, b.count())
}

func TestIDs(t *testing.T) {
	id := newTaskID("/prod/web")
	assert.Regexp(t, `^prod_web\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
	assert.Equal(t, "prod_web.marathon-"+id[len("prod_web."):], instanceID(id))
	assert.Equal(t, "2026-11-24T10:00:00.123Z", timestamp(time.Date(2026, 11, 24, 11, 0, 0, 123456789, time.FixedZone("x", 3600))))
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestScheduler(t *testing.T) *Scheduler {
	t.Helper()
	s, err := New(Config{Leader: "h:8080", Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func hostApp(id string, ports ...int) marathon.App {
	a := marathon.App{ID: id, Cmd: "x", Instances: 0, Networks: []marathon.Network{{Mode: "host"}}, Labels: map[string]string{}}
	for _, p := range ports {
		a.PortDefinitions = append(a.PortDefinitions, marathon.PortDefinition{Port: p})
	}
	return a
}

func TestServicePorts(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	a, err := s.CreateApp(ctx, hostApp("/a", 0, 0), false, "", "")
	require.NoError(t, err)
	assert.Equal(t, []int{10000, 10001}, a.Ports)
	b, err := s.CreateApp(ctx, hostApp("/b", 10002, 0), false, "", "")
	require.NoError(t, err)
	assert.Equal(t, []int{10002, 10003}, b.Ports, "fixed ports kept, zeros skip used ones")
	// Updating /a with one port 0 reuses one of its own previous ports.
	_, _, err = s.UpdateApp(ctx, "/a", func(*marathon.App) (marathon.App, error) { return hostApp("/a", 0), nil }, true, "", "")
	require.NoError(t, err)
	got, err := s.GetApp(ctx, "/a")
	require.NoError(t, err)
	assert.Equal(t, []int{10000}, got.Ports)
}

func TestAssignmentsLongPoll(t *testing.T) {
	s := newTestScheduler(t)
	ctx := context.Background()
	_, err := s.Assignments(ctx, "nobody", 0, 0)
	require.ErrorIs(t, err, agentapi.ErrUnknownAgent)
	reg, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: "h1", Resources: agentapi.Resources{CPUs: 1, Mem: 1024,
		Ports: []agentapi.PortRange{{Begin: 31000, End: 31010}}}})
	require.NoError(t, err)
	first, err := s.Assignments(ctx, reg.AgentID, 0, time.Second)
	require.NoError(t, err)
	assert.Empty(t, first.Tasks)

	// A poll past the current index waits until the timeout...
	start := time.Now()
	_, err = s.Assignments(ctx, reg.AgentID, first.Index, 50*time.Millisecond)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	// ...or until a task is assigned.
	done := make(chan agentapi.AssignmentList, 1)
	go func() {
		l, _ := s.Assignments(ctx, reg.AgentID, first.Index, 10*time.Second)
		done <- l
	}()
	app := hostApp("/web", 0)
	app.Instances, app.CPUs, app.Mem = 1, 0.5, 64
	app.UpgradeStrategy = &marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}
	app.KillSelection = "YOUNGEST_FIRST"
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	select {
	case l := <-done:
		require.Len(t, l.Tasks, 1)
		a := l.Tasks[0]
		assert.Equal(t, "/web", a.AppID)
		assert.Len(t, a.HostPorts, 1)
		assert.GreaterOrEqual(t, a.HostPorts[0], 31000)
		assert.Equal(t, []int{10000}, a.ServicePorts)
		assert.Equal(t, agentapi.Duration(3*time.Second), a.KillGracePeriod)
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not return on assignment")
	}
}

func TestLaunchAndKillTimeouts(t *testing.T) {
	s, err := New(Config{Leader: "h:8080", Logger: quiet(), TaskLaunchTimeout: 300 * time.Millisecond,
		DefaultKillGrace: 10 * time.Millisecond, KillTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	reg, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: "h1", Resources: agentapi.Resources{CPUs: 4, Mem: 1024,
		Ports: []agentapi.PortRange{{Begin: 31000, End: 31010}}}})
	require.NoError(t, err)
	app := hostApp("/t", 0)
	app.Instances, app.CPUs, app.Mem, app.BackoffSeconds, app.BackoffFactor = 1, 0.1, 16, 0, 1
	app.UpgradeStrategy = &marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	staged, err := s.ListTasks(ctx, "/t")
	require.NoError(t, err)
	require.Len(t, staged, 1)
	assert.Equal(t, marathon.TaskStaging, staged[0].State)

	// The agent never starts it: after the launch timeout it is replaced.
	time.Sleep(400 * time.Millisecond)
	s.reconcile()
	s.reconcile()
	next, err := s.ListTasks(ctx, "/t")
	require.NoError(t, err)
	require.Len(t, next, 1)
	assert.NotEqual(t, staged[0].ID, next[0].ID)

	// Running, then killed: the agent never confirms, the kill times out.
	require.NoError(t, s.ReportStatus(ctx, agentapi.StatusReport{AgentID: reg.AgentID, Statuses: []agentapi.TaskStatus{
		{TaskID: next[0].ID, State: marathon.TaskRunning}}}))
	s.reconcile()
	_, _, err = s.KillTasks(ctx, "/t", []string{next[0].ID}, "", true, false)
	require.NoError(t, err)
	s.reconcile()
	left, _ := s.ListTasks(ctx, "/t")
	require.Len(t, left, 1, "kill pending")
	time.Sleep(400 * time.Millisecond)
	s.reconcile()
	left, _ = s.ListTasks(ctx, "/t")
	assert.Empty(t, left)
	ds, _ := s.ListDeployments(ctx)
	assert.Empty(t, ds, "the scale-down deployment finished")
}

func TestConcurrentWritesPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{DataDir: dir, Logger: quiet()})
	require.NoError(t, err)
	ctx := context.Background()
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.CreateApp(ctx, hostApp(fmt.Sprintf("/c/app%d", i), 0), false, "", "")
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	assert.Zero(t, s.store.Pending(), "every acknowledged write is on disk")
	require.NoError(t, s.Close())
	s2, err := New(Config{DataDir: dir, Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	apps, err := s2.ListApps(ctx)
	require.NoError(t, err)
	assert.Len(t, apps, n)
	ports := map[int]bool{}
	for _, a := range apps {
		require.Len(t, a.Ports, 1)
		assert.False(t, ports[a.Ports[0]], "service port %d given twice", a.Ports[0])
		ports[a.Ports[0]] = true
	}
}

func TestAssignmentShutdownDelay(t *testing.T) {
	s, err := New(Config{Leader: "h:8080", Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	dur := func(d time.Duration) *agentapi.Duration { v := agentapi.Duration(d); return &v }
	tests := []struct {
		name  string
		label string // "" = no label
		want  *agentapi.Duration
	}{
		{name: "no label: the agent's default"},
		{name: "seconds", label: "5", want: dur(5 * time.Second)},
		{name: "duration", label: "1500ms", want: dur(1500 * time.Millisecond)},
		{name: "zero", label: "0", want: dur(0)},
		{name: "stored bad value: the agent's default", label: "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := hostApp("/web", 0)
			if tt.label != "" {
				def.Labels[marathon.LabelShutdownDelay] = tt.label
			}
			a := s.assignment(&state.Task{ID: "web.1", AppID: "/web"}, &def)
			assert.Equal(t, tt.want, a.ShutdownDelay)
		})
	}
}

func TestAgentRecordPruned(t *testing.T) {
	s, err := New(Config{Leader: "h:8080", Logger: quiet(), AgentTimeout: 20 * time.Millisecond, AgentMaxAge: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	res := agentapi.Resources{CPUs: 1, Mem: 1024, Ports: []agentapi.PortRange{{Begin: 31000, End: 31010}}}
	idle, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: "idle", Resources: res})
	require.NoError(t, err)
	busy, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: "busy", Resources: res})
	require.NoError(t, err)
	app := hostApp("/web")
	app.Instances, app.CPUs, app.Mem = 1, 0.1, 16
	app.Constraints = [][]string{{"hostname", "CLUSTER", "busy"}}
	app.UnreachableStrategy = &marathon.UnreachableStrategy{InactiveAfterSeconds: 300, ExpungeAfterSeconds: 600}
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	s.reconcile()
	require.Len(t, s.store.Tasks(), 1)
	task := s.store.Tasks()[0]
	require.Equal(t, busy.AgentID, task.AgentID)
	require.NoError(t, s.ReportStatus(ctx, agentapi.StatusReport{AgentID: busy.AgentID, Statuses: []agentapi.TaskStatus{{
		TaskID: task.ID, AppID: task.AppID, Version: task.Version, State: marathon.TaskRunning,
		HostPorts: task.HostPorts, Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
	}}}))

	// Both agents go silent: both become unreachable; only the one no
	// task refers to (the running task is now TASK_UNREACHABLE, kept
	// until expungeAfterSeconds) is forgotten after AgentMaxAge.
	require.Eventually(t, func() bool {
		s.reconcile()
		_, ok := s.store.Agent(idle.AgentID)
		return !ok
	}, 5*time.Second, 10*time.Millisecond, "idle agent's record removed")
	_, ok := s.store.Agent(busy.AgentID)
	assert.True(t, ok, "an agent a task still refers to is kept")
	assert.Equal(t, marathon.TaskUnreachable, s.store.Tasks()[0].State)

	// The forgotten agent comes back with its old id: it is accepted.
	again, err := s.Register(ctx, agentapi.RegisterRequest{AgentID: idle.AgentID, Hostname: "idle", Resources: res})
	require.NoError(t, err)
	assert.Equal(t, idle.AgentID, again.AgentID)
	_, err = s.Assignments(ctx, idle.AgentID, 0, time.Millisecond)
	require.NoError(t, err)
}

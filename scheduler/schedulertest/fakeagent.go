// Package schedulertest provides an in-process fake agent for scheduler
// tests and benchmarks. It talks to an agentapi.Scheduler directly (no
// HTTP): it registers, long-polls its assignments, pretends to run every
// assigned task (reporting TASK_RUNNING and, for tasks with health checks,
// health results) and reports TASK_KILLED for tasks no longer assigned.
package schedulertest

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// FakeAgent is an in-process agent. Configure the exported fields before
// Run; methods are safe for concurrent use.
type FakeAgent struct {
	Hostname string
	// Address is the IP address it registers with (default 127.0.0.1).
	Address    string
	Resources  agentapi.Resources
	Attributes map[string]string
	// Wait is the assignments long-poll duration (default 200ms).
	Wait time.Duration
	// Healthy decides the health verdict of a task on each poll round
	// (nil: always healthy).
	Healthy func(taskID string) bool

	mu       sync.Mutex
	sched    agentapi.Scheduler
	id       string
	token    string // the agent token bound to id
	tasks    map[string]*fakeTask
	paused   bool
	resumed  chan struct{}
	restarts chan agentapi.Scheduler
}

type fakeTask struct {
	a        agentapi.Assignment
	failures int
	reported bool // health reported at least once
	alive    bool
}

// NewFakeAgent returns an agent with 8 cpus, 64 GiB, ports 31000-32000.
func NewFakeAgent(s agentapi.Scheduler, hostname string) *FakeAgent {
	return &FakeAgent{
		Hostname:  hostname,
		Resources: agentapi.Resources{CPUs: 8, Mem: 65536, Disk: 100000, Ports: []agentapi.PortRange{{Begin: 31000, End: 32000}}},
		Wait:      200 * time.Millisecond,
		sched:     s,
		tasks:     map[string]*fakeTask{},
		resumed:   make(chan struct{}),
		restarts:  make(chan agentapi.Scheduler, 1),
	}
}

// ID is the agent id the scheduler gave (empty before registration).
func (f *FakeAgent) ID() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id
}

// Tasks lists the ids of the tasks the agent runs, sorted.
func (f *FakeAgent) Tasks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.tasks))
	for id := range f.tasks {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Pause stops polling and reporting (the agent looks dead); Resume
// continues.
func (f *FakeAgent) Pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = true
}

// Resume undoes Pause.
func (f *FakeAgent) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.paused {
		f.paused = false
		close(f.resumed)
		f.resumed = make(chan struct{})
	}
}

// Reattach points the agent at a new scheduler (after a scheduler
// restart): it re-registers with its running tasks.
func (f *FakeAgent) Reattach(s agentapi.Scheduler) {
	f.restarts <- s
}

// End makes a running task end with state (TASK_FAILED, TASK_FINISHED...).
func (f *FakeAgent) End(ctx context.Context, taskID, state string) error {
	f.mu.Lock()
	t, ok := f.tasks[taskID]
	delete(f.tasks, taskID)
	s, id := f.sched, f.id
	f.mu.Unlock()
	if !ok {
		return errors.New("no such task")
	}
	return s.ReportStatus(ctx, agentapi.StatusReport{AgentID: id, Statuses: []agentapi.TaskStatus{
		{TaskID: taskID, AppID: t.a.AppID, Version: t.a.Version, State: state, Message: "fake end", Timestamp: now()},
	}})
}

// address is Address or its default.
func (f *FakeAgent) address() string {
	if f.Address == "" {
		return "127.0.0.1"
	}
	return f.Address
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (f *FakeAgent) register(ctx context.Context) error {
	f.mu.Lock()
	req := agentapi.RegisterRequest{AgentID: f.id, AgentToken: f.token, Hostname: f.Hostname, Address: f.address(), Resources: f.Resources, Attributes: f.Attributes}
	for id, t := range f.tasks {
		req.Tasks = append(req.Tasks, agentapi.TaskStatus{TaskID: id, AppID: t.a.AppID, Version: t.a.Version,
			State: marathon.TaskRunning, HostPorts: t.a.HostPorts, Timestamp: now()})
	}
	s := f.sched
	f.mu.Unlock()
	resp, err := s.Register(ctx, req)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.id, f.token = resp.AgentID, resp.AgentToken
	f.mu.Unlock()
	return nil
}

// Run registers and serves assignments until ctx ends.
func (f *FakeAgent) Run(ctx context.Context) error {
	if err := f.register(ctx); err != nil {
		return err
	}
	var index uint64
	for ctx.Err() == nil {
		select {
		case s := <-f.restarts:
			f.mu.Lock()
			f.sched = s
			f.mu.Unlock()
			index = 0
			if err := f.register(ctx); err != nil {
				return err
			}
		default:
		}
		f.mu.Lock()
		paused, resumed, s, id := f.paused, f.resumed, f.sched, f.id
		f.mu.Unlock()
		if paused {
			select {
			case <-ctx.Done():
			case <-resumed:
			}
			continue
		}
		list, err := s.Assignments(ctx, id, index, f.Wait)
		if err != nil {
			if errors.Is(err, agentapi.ErrUnknownAgent) {
				if err := f.register(ctx); err != nil {
					return err
				}
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		index = list.Index
		f.mu.Lock()
		if f.paused {
			f.mu.Unlock()
			continue
		}
		report := f.sync(list)
		f.mu.Unlock()
		if len(report.Statuses) > 0 {
			if err := s.ReportStatus(ctx, report); err != nil && ctx.Err() == nil && !errors.Is(err, agentapi.ErrUnknownAgent) {
				return err
			}
		}
	}
	return nil
}

// sync starts new assignments, kills dropped ones and computes health.
// Caller holds f.mu.
func (f *FakeAgent) sync(list agentapi.AssignmentList) agentapi.StatusReport {
	report := agentapi.StatusReport{AgentID: f.id}
	want := map[string]agentapi.Assignment{}
	for _, a := range list.Tasks {
		want[a.TaskID] = a
	}
	for id, t := range f.tasks {
		if _, ok := want[id]; !ok {
			delete(f.tasks, id)
			report.Statuses = append(report.Statuses, agentapi.TaskStatus{TaskID: id, AppID: t.a.AppID, Version: t.a.Version,
				State: marathon.TaskKilled, Timestamp: now()})
		}
	}
	for id, a := range want {
		t, ok := f.tasks[id]
		if !ok {
			t = &fakeTask{a: a}
			f.tasks[id] = t
			report.Statuses = append(report.Statuses, agentapi.TaskStatus{TaskID: id, AppID: a.AppID, Version: a.Version,
				State: marathon.TaskRunning, HostPorts: a.HostPorts, StartedAt: now(), Timestamp: now(),
				IPAddresses: []marathon.TaskIPAddress{{IPAddress: f.address(), Protocol: "IPv4"}}})
		}
		if len(a.HealthChecks) == 0 {
			continue
		}
		alive := f.Healthy == nil || f.Healthy(id)
		if alive && t.reported && t.alive {
			continue
		}
		if alive {
			t.failures = 0
		} else {
			t.failures++
		}
		t.alive, t.reported = alive, true
		ts := now()
		results := make([]marathon.HealthCheckResult, len(a.HealthChecks))
		for i := range results {
			results[i] = marathon.HealthCheckResult{Alive: alive, ConsecutiveFailures: t.failures, TaskID: id}
			if alive {
				results[i].LastSuccess = &ts
				results[i].FirstSuccess = &ts
			} else {
				cause := "fake failure"
				results[i].LastFailure, results[i].LastFailureCause = &ts, &cause
			}
		}
		report.Statuses = append(report.Statuses, agentapi.TaskStatus{TaskID: id, AppID: a.AppID, Version: a.Version,
			State: marathon.TaskRunning, Health: results, Timestamp: ts})
	}
	return report
}

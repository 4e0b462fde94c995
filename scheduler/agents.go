package scheduler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/state"
)

var _ agentapi.Scheduler = (*Scheduler)(nil)

// Register records an agent (a new id when req.AgentID is empty or
// unknown) and reconciles the tasks it reports: known tasks take the
// reported state; tasks the scheduler placed there (past staging) that the
// agent no longer has become TASK_LOST and are replaced. Unknown tasks are
// ignored: they are not in the agent's assignments, so the agent kills them
// (and their terminal status yields unknown_instance_terminated_event).
//
// Each agent id is bound to a token issued at its first registration: a
// registration under a known id must present it (agentapi.ErrForbidden
// otherwise), so nobody can take over another agent's id. Statuses for
// tasks of other agents are ignored and logged.
func (s *Scheduler) Register(_ context.Context, req agentapi.RegisterRequest) (agentapi.RegisterResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	// An agent keeps its id across restarts; an id we do not know (state
	// wiped) is accepted as is.
	id := req.AgentID
	prev, known := s.store.Agent(id)
	token, tokenHash := req.AgentToken, ""
	switch {
	case known && prev.TokenHash != "":
		if !agentapi.AgentTokenMatches(prev.TokenHash, req.AgentToken) {
			s.log.Warn("refusing agent registration: the agent id is bound to another agent's token",
				"agent", id, "hostname", req.Hostname, "registered_hostname", prev.Hostname, "token_presented", req.AgentToken != "")
			return agentapi.RegisterResponse{}, fmt.Errorf("register as agent %s: %w", id, agentapi.ErrForbidden)
		}
		tokenHash = prev.TokenHash
	default:
		// A new id, or one registered before tokens existed: bind a
		// fresh token to it.
		token = agentapi.NewAgentToken()
		tokenHash = agentapi.HashAgentToken(token)
	}
	if id == "" {
		id = newUUID() + "-S0"
	}
	a := &state.Agent{ID: id, Hostname: req.Hostname, Address: req.Address, CPUs: req.Resources.CPUs,
		Mem: req.Resources.Mem, Disk: req.Resources.Disk, Attributes: req.Attributes, Registered: now, TokenHash: tokenHash}
	for _, r := range req.Resources.Ports {
		a.Ports = append(a.Ports, state.PortRange{Begin: r.Begin, End: r.End})
	}
	if a.Address == "" {
		a.Address = a.Hostname
	}
	s.store.PutAgent(a)
	l := s.live[id]
	if l == nil {
		l = &agentLive{}
		s.live[id] = l
	}
	l.lastSeen, l.seen = now, true
	s.agentBack(id, l)
	delete(s.orphans, id)
	reported := map[string]bool{}
	for _, st := range req.Tasks {
		if s.foreignTask(id, st) {
			continue
		}
		reported[st.TaskID] = true
		s.applyStatus(id, st, now)
	}
	if known {
		for _, t := range s.store.Tasks() {
			if t.AgentID != id || reported[t.ID] {
				continue
			}
			if t.KillRequested {
				s.finishTask(t, marathon.TaskKilled, "not running on re-registered agent", now)
				continue
			}
			if t.State == marathon.TaskStaging {
				continue
			}
			s.finishTask(t, marathon.TaskLost, "task not reported by re-registered agent", now)
		}
	}
	s.bump(id)
	s.kick()
	s.log.Info("agent registered", "agent", id, "hostname", req.Hostname, "tasks", len(req.Tasks))
	// Stored before it is acknowledged, like a status report.
	if err := s.flushLocked(); err != nil {
		s.log.Error("persist agent", "agent", id, "err", err)
		return agentapi.RegisterResponse{}, fmt.Errorf("register %s: %w", id, err)
	}
	return agentapi.RegisterResponse{AgentID: id, AgentToken: token, HeartbeatTimeout: agentapi.Duration(s.cfg.AgentTimeout)}, nil
}

// AuthenticateAgent checks that token is the one bound to agentID. An
// agent known from before tokens existed is answered as unknown, so it
// registers again and gets one.
func (s *Scheduler) AuthenticateAgent(_ context.Context, agentID, token string) error {
	s.mu.Lock()
	a, ok := s.store.Agent(agentID)
	s.mu.Unlock()
	if !ok || a.TokenHash == "" {
		return fmt.Errorf("agent %s: %w", agentID, agentapi.ErrUnknownAgent)
	}
	if !agentapi.AgentTokenMatches(a.TokenHash, token) {
		s.log.Warn("refusing agent request: wrong agent token", "agent", agentID, "token_presented", token != "")
		return fmt.Errorf("agent %s: %w", agentID, agentapi.ErrForbidden)
	}
	return nil
}

// foreignTask reports (and logs) a status about a task the scheduler
// placed on another agent than agentID. Caller holds s.mu.
func (s *Scheduler) foreignTask(agentID string, st agentapi.TaskStatus) bool {
	t, ok := s.store.Task(st.TaskID)
	if !ok || t.AgentID == agentID {
		return false
	}
	s.log.Warn("refusing status for a task another agent runs", "task_id", st.TaskID, "agent", agentID,
		"owner", t.AgentID, "state", st.State)
	return true
}

// Assignments returns the agent's desired task set once it changed past
// afterIndex, or when wait elapses or ctx ends. Every call is a heartbeat.
func (s *Scheduler) Assignments(ctx context.Context, agentID string, afterIndex uint64, wait time.Duration) (agentapi.AssignmentList, error) {
	s.mu.Lock()
	if _, ok := s.store.Agent(agentID); !ok {
		s.mu.Unlock()
		return agentapi.AssignmentList{}, fmt.Errorf("assignments for %s: %w", agentID, agentapi.ErrUnknownAgent)
	}
	l := s.live[agentID]
	if l == nil {
		l = &agentLive{}
		s.live[agentID] = l
	}
	l.polling++
	l.lastSeen, l.seen = time.Now(), true
	s.agentBack(agentID, l)
	defer func() {
		l.polling--
		l.lastSeen = time.Now()
		s.mu.Unlock()
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for afterIndex != 0 && l.index <= afterIndex && afterIndex <= s.index {
		ch := s.changed
		s.mu.Unlock()
		var done bool
		select {
		case <-ch:
		case <-timer.C:
			done = true
		case <-ctx.Done():
			done = true
		}
		s.mu.Lock()
		if done {
			break
		}
	}
	list := s.assignments(agentID)
	// A task reaches an agent only once it is on disk: a scheduler that
	// crashes and restarts knows every task its agents run.
	if err := s.flushLocked(); err != nil {
		return agentapi.AssignmentList{}, fmt.Errorf("assignments for %s: %w", agentID, err)
	}
	return list, nil
}

// assignments builds an agent's desired task set. Caller holds s.mu.
func (s *Scheduler) assignments(agentID string) agentapi.AssignmentList {
	list := agentapi.AssignmentList{Index: s.index, Tasks: []agentapi.Assignment{}}
	for id := range s.orphans[agentID] {
		list.Unknown = append(list.Unknown, id)
	}
	slices.Sort(list.Unknown)
	for _, t := range s.store.Tasks() {
		if t.AgentID != agentID || t.KillRequested {
			continue
		}
		def := s.appDef(t.AppID, t.Version)
		if def == nil {
			continue
		}
		if !t.Delivered {
			// Marked when the list is built, before the agent has it:
			// a task not marked is certainly unknown to the agent.
			t.Delivered = true
			s.store.PutTask(t)
		}
		list.Tasks = append(list.Tasks, s.assignment(t, def))
	}
	return list
}

func (s *Scheduler) assignment(t *state.Task, def *marathon.App) agentapi.Assignment {
	grace := s.cfg.DefaultKillGrace
	if def.TaskKillGracePeriodSeconds != nil {
		grace = time.Duration(*def.TaskKillGracePeriodSeconds * float64(time.Second))
	}
	a := agentapi.Assignment{
		TaskID: t.ID, AppID: t.AppID, Version: t.Version, Cmd: def.Cmd, Args: def.Args, User: def.User,
		Env: def.Env.Plain(), Secrets: def.SecretSources(), CPUs: def.CPUs, Mem: def.Mem, Disk: def.Disk, Container: def.Container, Networks: def.Networks,
		HostPorts: slices.Clone(t.HostPorts), ServicePorts: slices.Clone(t.ServicePorts),
		HealthChecks: def.HealthChecks, KillGracePeriod: agentapi.Duration(grace), Labels: def.Labels,
		Fetch: def.Fetch, URIs: def.URIs,
	}
	if v, ok := def.Labels[marathon.LabelShutdownDelay]; ok {
		// Validated by the API; a value it would now refuse (stored by an
		// older version) falls back to the agent's default.
		if d, err := marathon.ParseShutdownDelay(v); err == nil {
			sd := agentapi.Duration(d)
			a.ShutdownDelay = &sd
		}
	}
	if a.HostPorts == nil {
		a.HostPorts = []int{}
	}
	if a.ServicePorts == nil {
		a.ServicePorts = []int{}
	}
	if networkMode(def) == "host" {
		for _, pd := range def.PortDefinitions {
			a.PortNames = append(a.PortNames, pd.Name)
		}
	} else if def.Container != nil {
		for _, pm := range def.Container.PortMappings {
			a.PortNames = append(a.PortNames, pm.Name)
		}
	}
	return a
}

// ReportStatus folds an agent's task status changes into the state.
func (s *Scheduler) ReportStatus(_ context.Context, report agentapi.StatusReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.store.Agent(report.AgentID); !ok {
		return fmt.Errorf("status from %s: %w", report.AgentID, agentapi.ErrUnknownAgent)
	}
	now := time.Now()
	l := s.live[report.AgentID]
	if l == nil {
		l = &agentLive{}
		s.live[report.AgentID] = l
	}
	l.lastSeen, l.seen = now, true
	s.agentBack(report.AgentID, l)
	var refused []string
	for _, st := range report.Statuses {
		if s.foreignTask(report.AgentID, st) {
			refused = append(refused, st.TaskID)
			continue
		}
		s.applyStatus(report.AgentID, st, now)
	}
	s.kick()
	// An accepted report is forgotten by the agent (a final status with
	// its task record), so it must be on disk before it is acknowledged;
	// on an error the agent sends it again.
	if err := s.flushLocked(); err != nil {
		return fmt.Errorf("status from %s: %w", report.AgentID, err)
	}
	if len(refused) > 0 {
		return fmt.Errorf("status from agent %s for tasks it does not run (%s): %w",
			report.AgentID, strings.Join(refused, ", "), agentapi.ErrForbidden)
	}
	return nil
}

// applyStatus folds one task status. Caller holds s.mu.
func (s *Scheduler) applyStatus(agentID string, st agentapi.TaskStatus, now time.Time) {
	if !knownState(st.State) {
		s.log.Warn("ignoring status with unknown state", "task_id", st.TaskID, "agent", agentID, "state", st.State)
		return
	}
	t, ok := s.store.Task(st.TaskID)
	if !ok || t.AgentID != agentID {
		s.log.Debug("status for unknown task", "task_id", st.TaskID, "agent", agentID, "state", st.State)
		s.noteOrphan(agentID, st)
		if !ok && marathon.IsTerminal(st.State) {
			// A task the scheduler does not know (forgotten after a kill
			// timeout or expunge, or found on a re-registering agent and
			// killed there because nothing assigns it) went terminal.
			s.bus.publish(eventUnknownInstanceTerminated, &unknownInstanceTerminatedEvent{
				InstanceID: instanceID(st.TaskID), RunSpecID: runSpecID(st.AppID), Condition: condition(st.State),
			})
		}
		return
	}
	t.Delivered = true
	if r, cur := progress(st.State), progress(t.State); r >= 0 && cur >= 0 && r < cur {
		// A status older than what is known (a re-registration built
		// before a report that overtook it): a task never goes back.
		s.log.Debug("ignoring stale status", "task_id", t.ID, "state", st.State, "current", t.State)
		return
	}
	if len(st.HostPorts) > 0 && !slices.Equal(st.HostPorts, t.HostPorts) {
		t.HostPorts = slices.Clone(st.HostPorts)
	}
	if len(st.IPAddresses) > 0 {
		t.IPAddresses = st.IPAddresses
	}
	if st.State == marathon.TaskLost || marathon.IsTerminal(st.State) || st.State == marathon.TaskUnknown {
		s.finishTask(t, st.State, st.Message, now)
		return
	}
	changed := false
	if st.State != "" && st.State != t.State && st.State != marathon.TaskUnreachable {
		t.State = st.State
		t.Message = st.Message
		if st.State == marathon.TaskRunning && t.StartedAt.IsZero() {
			t.StartedAt = now
			if ts, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil {
				t.StartedAt = ts
			}
		}
		changed = true
	}
	wasHealthy, hadHealth := t.Healthy(), len(t.Health) > 0
	prev := t.Health
	if st.Health != nil {
		t.Health = st.Health
	}
	s.store.PutTask(t)
	if changed {
		s.publishStatus(t, t.State, st.Message)
	}
	if st.Health != nil {
		s.foldHealth(t, prev, wasHealthy, hadHealth, now)
	}
}

// noteOrphan tracks a task an agent reports that the store does not
// know: a running one is listed to the agent as unknown (it holds it for
// its reconcile grace instead of killing it) and in /v2/tasks?orphans; an
// ended one is forgotten. Caller holds s.mu.
func (s *Scheduler) noteOrphan(agentID string, st agentapi.TaskStatus) {
	m := s.orphans[agentID]
	_, had := m[st.TaskID]
	if st.State == marathon.TaskLost || marathon.IsTerminal(st.State) || st.State == marathon.TaskUnknown {
		if had {
			delete(m, st.TaskID)
			s.bump(agentID)
		}
		return
	}
	if m == nil {
		m = map[string]agentapi.TaskStatus{}
		s.orphans[agentID] = m
	}
	m[st.TaskID] = st
	if !had {
		s.log.Warn("agent runs a task this scheduler has no record of; the agent keeps it for its reconcile grace, then kills it (see /v2/tasks?orphans)",
			"agent", agentID, "task_id", st.TaskID, "app_id", st.AppID, "state", st.State)
		s.bump(agentID)
	}
}

// ListOrphans returns the tasks agents run that the scheduler has no
// record of (GET /v2/tasks?orphans), sorted by id.
func (s *Scheduler) ListOrphans(context.Context) ([]marathon.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []marathon.Task{}
	for agentID, m := range s.orphans {
		host := ""
		if a, ok := s.store.Agent(agentID); ok {
			host = a.Hostname
		}
		for _, st := range m {
			t := marathon.Task{ID: st.TaskID, AppID: st.AppID, Host: host, SlaveID: agentID, State: st.State,
				StartedAt: st.StartedAt, StagedAt: st.StartedAt, Version: st.Version, Ports: hostPorts(st.HostPorts),
				ServicePorts: []int{}, IPAddresses: st.IPAddresses}
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b marathon.Task) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// foldHealth publishes health events for new results and kills a task
// whose checks failed maxConsecutiveFailures times in a row.
func (s *Scheduler) foldHealth(t *state.Task, prev []marathon.HealthCheckResult, wasHealthy, hadHealth bool, now time.Time) {
	def := s.appDef(t.AppID, t.Version)
	nowHealthy := t.Healthy()
	if len(t.Health) > 0 && (!hadHealth || wasHealthy != nowHealthy) {
		s.bus.publish(marathon.EventHealthStatusChanged, &marathon.HealthStatusChangedEvent{
			AppID: t.AppID, TaskID: t.ID, InstanceID: instanceID(t.ID), Version: t.Version, Alive: nowHealthy,
		})
		h := nowHealthy
		s.bus.publish(marathon.EventInstanceHealthChanged, &instanceHealthChangedEvent{
			InstanceID: instanceID(t.ID), RunSpecID: t.AppID, RunSpecVersion: t.Version, Healthy: &h,
		})
	}
	for i, r := range t.Health {
		var hc marathon.HealthCheck
		if def != nil && i < len(def.HealthChecks) {
			hc = def.HealthChecks[i]
		}
		before := 0
		if i < len(prev) {
			before = prev[i].ConsecutiveFailures
		}
		if r.ConsecutiveFailures > before {
			s.bus.publish(marathon.EventFailedHealthCheck, &marathon.FailedHealthCheckEvent{
				AppID: t.AppID, TaskID: instanceID(t.ID), InstanceID: instanceID(t.ID), HealthCheck: hc,
			})
		}
		if !r.Alive && hc.MaxConsecutiveFailures > 0 && r.ConsecutiveFailures >= hc.MaxConsecutiveFailures &&
			t.UnreachableSince.IsZero() && !t.KillRequested {
			reason := ""
			if r.LastFailureCause != nil {
				reason = *r.LastFailureCause
			}
			s.log.Info("killing unhealthy task", "app_id", t.AppID, "task_id", t.ID, "reason", reason)
			s.bus.publish(marathon.EventUnhealthyInstanceKill, &marathon.UnhealthyInstanceKillEvent{
				AppID: t.AppID, TaskID: t.ID, InstanceID: instanceID(t.ID), Version: t.Version,
				Reason: reason, Host: t.Host, SlaveID: t.AgentID,
			})
			s.killTask(t, killUnhealthy, now)
			return
		}
	}
}

// progress orders the states a live task moves through (-1: another
// state).
func progress(state string) int {
	switch state {
	case marathon.TaskStaging:
		return 0
	case marathon.TaskStarting:
		return 1
	case marathon.TaskRunning:
		return 2
	case marathon.TaskKilling:
		return 3
	}
	return -1
}

// knownState reports whether an agent-reported state is one of Mesos'
// task states.
func knownState(st string) bool {
	switch st {
	case marathon.TaskStaging, marathon.TaskStarting, marathon.TaskRunning, marathon.TaskKilling,
		marathon.TaskFinished, marathon.TaskFailed, marathon.TaskKilled, marathon.TaskLost,
		marathon.TaskError, marathon.TaskUnreachable, marathon.TaskGone, marathon.TaskDropped,
		marathon.TaskUnknown:
		return true
	}
	return false
}

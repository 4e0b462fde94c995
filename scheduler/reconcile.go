package scheduler

import (
	"errors"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/deploy"
	"github.com/switchyard/switchyard/scheduler/placement"
	"github.com/switchyard/switchyard/scheduler/state"
)

// Kill reasons recorded on tasks.
const (
	killScale     = "scale"
	killAPI       = "api"
	killUnhealthy = "unhealthy"
	killOrphan    = "orphan"
	killStop      = "stop"
)

// pass is the context of one reconcile pass: the task index and a lazily
// built placement ledger.
type pass struct {
	now     time.Time
	byApp   map[string][]*state.Task
	cluster *placement.Cluster
}

// reconcile runs one level-triggered pass over agents, deployments and
// apps.
func (s *Scheduler) reconcile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.checkAgents(now)
	s.checkUnreachable(now)
	s.pruneAgents(now)
	s.checkTimeouts(now)
	p := &pass{now: now, byApp: s.tasksByApp()}
	handled := map[string]bool{}
	for _, d := range s.store.Deployments() {
		for _, a := range d.AffectedApps {
			handled[a] = true
		}
		s.advance(d, p)
	}
	for _, a := range s.store.Apps() {
		if handled[a.Def.ID] {
			continue
		}
		s.drive(a.Def.ID, deploy.ActionSteady, &a.Def, time.Time{}, p)
	}
	// Tasks of apps that no longer exist and no deployment stops.
	for appID, tasks := range p.byApp {
		if handled[appID] {
			continue
		}
		if _, ok := s.store.App(appID); ok {
			continue
		}
		for _, t := range tasks {
			s.killTask(t, killOrphan, now)
		}
	}
	s.pruneReadiness(handled)
	byApp := s.tasksByApp()
	s.reconcileHealthChecks(byApp)
	s.trackQueue(now, s.queued(byApp))
}

// advance moves a deployment forward as far as its current step allows.
// Caller holds s.mu.
func (s *Scheduler) advance(d *state.Deployment, p *pass) {
	for {
		if d.CurrentStep == 0 {
			if len(d.Steps) == 0 {
				s.finishDeployment(d)
				return
			}
			d.CurrentStep = 1
			s.store.PutDeployment(d)
			s.publishDeployment(marathon.EventDeploymentInfo, d, &d.Steps[0])
		}
		step := d.Steps[d.CurrentStep-1]
		done := true
		for _, act := range step.Actions {
			def := d.Target[act.App]
			if act.Action == deploy.ActionStop {
				def = d.Original[act.App]
			} else if a, ok := s.store.App(act.App); ok {
				def = &a.Def
			}
			if !s.drive(act.App, act.Action, def, d.Created, p) {
				done = false
			}
		}
		if !done {
			return
		}
		for _, act := range step.Actions {
			if act.Action == deploy.ActionStop {
				s.bus.publish(marathon.EventAppTerminated, &marathon.AppTerminatedEvent{AppID: act.App})
			}
		}
		s.publishDeployment(marathon.EventDeploymentStepSuccess, d, &step)
		if d.CurrentStep >= len(d.Steps) {
			s.finishDeployment(d)
			return
		}
		d.CurrentStep++
		s.store.PutDeployment(d)
		s.publishDeployment(marathon.EventDeploymentInfo, d, &d.Steps[d.CurrentStep-1])
	}
}

func (s *Scheduler) finishDeployment(d *state.Deployment) {
	s.store.DeleteDeployment(d.ID)
	s.metrics.deployments.WithLabelValues("success").Inc()
	s.log.Info("deployment finished", "deployment", d.ID, "apps", d.AffectedApps)
	s.bus.publish(marathon.EventDeploymentSuccess, &marathon.DeploymentEvent{ID: d.ID, Plan: plan(d)})
}

func plan(d *state.Deployment) marathon.DeploymentPlan {
	steps := d.Steps
	if steps == nil {
		steps = []marathon.DeploymentStep{}
	}
	return marathon.DeploymentPlan{ID: d.ID, Steps: steps, Version: d.Version}
}

func (s *Scheduler) publishDeployment(eventType string, d *state.Deployment, step *marathon.DeploymentStep) {
	s.bus.publish(eventType, &marathon.DeploymentEvent{Plan: plan(d), CurrentStep: step})
}

// drive applies one deploy.Step for an app and reports whether the action
// is done. def is the app's target definition (the stopped definition for
// StopApplication; nil when unknown). Tasks of def's configuration staged
// at or after gate (the deployment's start; zero outside deployments) are
// held to def's readiness checks. Caller holds s.mu.
func (s *Scheduler) drive(appID, action string, def *marathon.App, gate time.Time, p *pass) bool {
	tasks := p.byApp[appID]
	in := deploy.Input{Action: action, Tasks: make([]deploy.Task, 0, len(tasks))}
	configVersion := ""
	inactiveAfter := 0
	if def != nil {
		in.Instances = def.Instances
		in.KillSelection = def.KillSelection
		if def.UpgradeStrategy != nil {
			in.Strategy = *def.UpgradeStrategy
		}
		if def.VersionInfo != nil {
			configVersion = def.VersionInfo.LastConfigChangeAt
		}
		if def.UnreachableStrategy != nil {
			inactiveAfter = def.UnreachableStrategy.InactiveAfterSeconds
		}
	} else if action != deploy.ActionStop {
		return false
	}
	byID := make(map[string]*state.Task, len(tasks))
	for _, t := range tasks {
		byID[t.ID] = t
		unreachable := !t.UnreachableSince.IsZero()
		current := t.ConfigVersion == configVersion
		unready := false
		if !gate.IsZero() && current && def != nil && len(def.ReadinessChecks) > 0 &&
			action != deploy.ActionStop && !t.StagedAt.Before(gate) && !t.KillRequested {
			unready = !s.taskReady(t, def)
		}
		in.Tasks = append(in.Tasks, deploy.Task{
			ID:          t.ID,
			Current:     current,
			Running:     t.State == marathon.TaskRunning,
			Healthy:     t.Healthy(),
			Unready:     unready,
			Killing:     t.KillRequested,
			Unreachable: unreachable,
			Inactive:    unreachable && p.now.Sub(t.UnreachableSince) >= time.Duration(inactiveAfter)*time.Second,
			Sentenced:   t.Sentenced,
			StagedAt:    t.StagedAt,
		})
	}
	out := deploy.Step(in)
	reason := killScale
	if action == deploy.ActionStop {
		reason = killStop
	}
	for _, id := range out.Kill {
		if t := byID[id]; t != nil {
			s.killTask(t, reason, p.now)
		}
	}
	if out.Launch > 0 && def != nil {
		s.launch(def, out.Launch, p)
	}
	return out.Done
}

// launch starts up to n tasks of def, honouring the app's backoff.
func (s *Scheduler) launch(def *marathon.App, n int, p *pass) {
	a, ok := s.store.App(def.ID)
	if !ok {
		return
	}
	if a.Backoff > 0 && p.now.After(a.LastFailureAt.Add(time.Duration((a.Backoff+def.MaxLaunchDelaySeconds)*float64(time.Second)))) {
		a.Backoff, a.BackoffUntil = 0, time.Time{}
		s.store.PutApp(a)
	}
	if p.now.Before(a.BackoffUntil) {
		return
	}
	if p.cluster == nil {
		p.cluster = s.buildCluster()
	}
	req := placementRequest(def)
	for range n {
		pl, err := p.cluster.Place(req)
		if err != nil {
			s.cannotPlace(def, req, err, p.now)
			return
		}
		delete(s.noFit, def.ID)
		delete(s.noFitLogged, def.ID)
		agent, _ := s.store.Agent(pl.AgentID)
		t := &state.Task{
			ID:            newTaskID(def.ID),
			AppID:         def.ID,
			AgentID:       pl.AgentID,
			Host:          agent.Hostname,
			State:         marathon.TaskStaging,
			StagedAt:      p.now,
			Version:       def.Version,
			ConfigVersion: configVersionOf(def),
			Role:          def.Role,
			HostPorts:     pl.HostPorts,
			ServicePorts:  servicePorts(def),
			HealthChecks:  len(def.HealthChecks),
		}
		if agent.Address != "" {
			t.IPAddresses = []marathon.TaskIPAddress{{IPAddress: agent.Address, Protocol: "IPv4"}}
		}
		s.store.PutTask(t)
		p.byApp[def.ID] = append(p.byApp[def.ID], t)
		s.bump(t.AgentID)
		s.metrics.launched.Inc()
		s.publishStatus(t, marathon.TaskStaging, "")
	}
}

// noFit is why an app's last launch attempt found no agent.
type noFit struct {
	at      time.Time
	reasons map[string]int // agents rejecting the task, by reason
	agents  int            // agents considered
	best    placement.Free // what the roomiest agent had left
}

// reasonFunnel is the order in which Marathon checks an offer against a
// launch (NoOfferMatchReason.reasonFunnel); an offer is counted at the
// first reason that declines it.
var reasonFunnel = []string{
	"UnfulfilledRole", placement.ReasonConstraint, "NoCorrespondingReservationFound", "AgentMaintenance",
	placement.ReasonCPUs, placement.ReasonMem, placement.ReasonDisk, "InsufficientGpus", placement.ReasonPorts,
	"DeclinedScarceResources",
}

// cannotPlace records why def could not be placed and logs each reason
// once per app until the app is placed again. Caller holds s.mu.
func (s *Scheduler) cannotPlace(def *marathon.App, req placement.Request, err error, now time.Time) {
	nf := &noFit{at: now, reasons: map[string]int{}}
	var pe *placement.NoFitError
	if errors.As(err, &pe) {
		nf.reasons, nf.agents, nf.best = pe.Reasons, pe.Agents, pe.Best
	} else {
		nf.reasons["NoAgents"] = 0
	}
	s.noFit[def.ID] = nf
	logged := s.noFitLogged[def.ID]
	if logged == nil {
		logged = map[string]bool{}
		s.noFitLogged[def.ID] = logged
	}
	for _, reason := range slices.Sorted(maps.Keys(nf.reasons)) {
		if logged[reason] {
			continue
		}
		logged[reason] = true
		if reason == "NoAgents" {
			s.log.Warn("app cannot be placed: no reachable agent", "app_id", def.ID)
			continue
		}
		s.log.Warn("app cannot be placed", "app_id", def.ID, "reason", reason,
			"agents_declining", nf.reasons[reason], "agents", nf.agents,
			"needs_cpus", req.CPUs, "needs_mem", req.Mem, "needs_disk", req.Disk, "needs_ports", len(req.Ports),
			"best_agent", nf.best.Hostname, "free_cpus", round2(nf.best.CPUs), "free_mem", round2(nf.best.Mem),
			"free_disk", round2(nf.best.Disk), "free_ports", nf.best.Ports)
	}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// offersSummary is the queue's processedOffersSummary for an app: the
// agents of its last launch attempt as Marathon's offers, and the reject
// funnel (each reason with how many offers reached it and how many it
// declined).
func offersSummary(nf *noFit) map[string]any {
	processed, reasons := 0, map[string]int{}
	var lastUnused any
	if nf != nil {
		processed, reasons = nf.agents, nf.reasons
		lastUnused = timestamp(nf.at)
	}
	funnel := make([]map[string]any, 0, len(reasonFunnel))
	left := processed
	for _, r := range reasonFunnel {
		declined := reasons[r]
		funnel = append(funnel, map[string]any{"reason": r, "declined": declined, "processed": left})
		left -= declined
	}
	return map[string]any{
		"processedOffersCount": processed, "unusedOffersCount": processed,
		"lastUnusedOfferAt": lastUnused, "lastUsedOfferAt": nil,
		"rejectSummaryLastOffers": funnel, "rejectSummaryLaunchAttempt": funnel,
	}
}

func configVersionOf(def *marathon.App) string {
	if def.VersionInfo != nil {
		return def.VersionInfo.LastConfigChangeAt
	}
	return def.Version
}

// buildCluster makes the placement ledger from reachable agents and every
// task still holding resources.
func (s *Scheduler) buildCluster() *placement.Cluster {
	var agents []placement.Agent
	for _, a := range s.store.Agents() {
		l := s.live[a.ID]
		if l == nil || !l.seen || l.unreachable {
			continue
		}
		pa := placement.Agent{ID: a.ID, Hostname: a.Hostname, Attributes: a.Attributes, CPUs: a.CPUs, Mem: a.Mem, Disk: a.Disk}
		for _, r := range a.Ports {
			pa.Ports = append(pa.Ports, placement.PortRange{Begin: r.Begin, End: r.End})
		}
		agents = append(agents, pa)
	}
	var tasks []placement.Task
	for _, t := range s.store.Tasks() {
		pt := placement.Task{AgentID: t.AgentID, AppID: t.AppID, HostPorts: t.HostPorts}
		if def := s.appDef(t.AppID, t.Version); def != nil {
			pt.CPUs, pt.Mem, pt.Disk = def.CPUs, def.Mem, def.Disk
		}
		tasks = append(tasks, pt)
	}
	return placement.NewCluster(agents, tasks, s.rnd)
}

// networkMode is the app's effective network mode.
func networkMode(def *marathon.App) string {
	if len(def.Networks) > 0 {
		return def.Networks[len(def.Networks)-1].Mode
	}
	if def.Container != nil && def.Container.Docker != nil {
		switch def.Container.Docker.Network {
		case "BRIDGE":
			return "container/bridge"
		case "USER":
			return "container"
		}
	}
	return "host"
}

// placementRequest derives resources, host port needs and constraints.
func placementRequest(def *marathon.App) placement.Request {
	req := placement.Request{AppID: def.ID, CPUs: def.CPUs, Mem: def.Mem, Disk: def.Disk, Constraints: def.Constraints}
	if networkMode(def) == "host" {
		for _, pd := range def.PortDefinitions {
			if def.RequirePorts && pd.Port > 0 {
				req.Ports = append(req.Ports, placement.PortRequest{Kind: placement.PortFixed, Port: pd.Port})
			} else {
				req.Ports = append(req.Ports, placement.PortRequest{Kind: placement.PortDynamic})
			}
		}
		return req
	}
	if def.Container != nil {
		for _, pm := range def.Container.PortMappings {
			switch {
			case pm.HostPort == nil:
				req.Ports = append(req.Ports, placement.PortRequest{Kind: placement.PortNone})
			case *pm.HostPort == 0:
				req.Ports = append(req.Ports, placement.PortRequest{Kind: placement.PortDynamic})
			default:
				req.Ports = append(req.Ports, placement.PortRequest{Kind: placement.PortFixed, Port: *pm.HostPort})
			}
		}
	}
	return req
}

// servicePorts lists the app's service ports in port-index order.
func servicePorts(def *marathon.App) []int {
	out := []int{}
	if networkMode(def) == "host" {
		for _, pd := range def.PortDefinitions {
			out = append(out, pd.Port)
		}
		return out
	}
	if def.Container != nil {
		for _, pm := range def.Container.PortMappings {
			out = append(out, pm.ServicePort)
		}
	}
	return out
}

// killTask asks the task's agent to kill it (by dropping it from the
// agent's assignments). A task on an unreachable agent ends at once, and
// so does a task its agent was never given: there is nothing to kill and
// no confirmation will come.
func (s *Scheduler) killTask(t *state.Task, reason string, now time.Time) {
	if t.KillRequested {
		return
	}
	t.KillRequested = true
	t.KillReason = reason
	t.KillRequestedAt = now
	if !t.UnreachableSince.IsZero() {
		s.finishTask(t, marathon.TaskKilled, "killed while unreachable", now)
		return
	}
	if !t.Delivered && t.State == marathon.TaskStaging {
		s.finishTask(t, marathon.TaskKilled, "killed before it was handed to an agent", now)
		return
	}
	s.store.PutTask(t)
	s.bump(t.AgentID)
	s.kick()
}

// finishTask records a terminal state: event, backoff, expunge.
func (s *Scheduler) finishTask(t *state.Task, st, msg string, now time.Time) {
	t.State = st
	t.Message = msg
	s.store.DeleteTask(t.ID)
	s.bump(t.AgentID)
	s.metrics.ended.WithLabelValues(st).Inc()
	expected := t.KillRequested && t.KillReason != killUnhealthy
	failure := !expected && st != marathon.TaskKilled
	if t.KillReason == killUnhealthy {
		failure = true
	}
	if failure {
		if a, ok := s.store.App(t.AppID); ok {
			s.backoff(a, t, now)
		}
	}
	s.publishStatus(t, st, msg)
	s.kick()
}

// backoff grows the app's launch delay after a failed task (spec §4.6).
func (s *Scheduler) backoff(a *state.App, t *state.Task, now time.Time) {
	def := &a.Def
	switch {
	case t.ConfigVersion != configVersionOf(def):
		// A task of an older config does not delay the new one.
	case a.Backoff == 0:
		a.Backoff = def.BackoffSeconds
	default:
		a.Backoff = math.Min(a.Backoff*def.BackoffFactor, def.MaxLaunchDelaySeconds)
	}
	a.LastFailureAt = now
	if a.Backoff > 0 {
		a.BackoffUntil = now.Add(time.Duration(a.Backoff * float64(time.Second)))
	}
	a.LastTaskFailure = &marathon.TaskFailure{
		AppID: t.AppID, Host: t.Host, Message: t.Message, State: t.State, TaskID: t.ID,
		Timestamp: timestamp(now), Version: t.Version, SlaveID: t.AgentID,
	}
	s.store.PutApp(a)
}

// publishStatus emits status_update_event and instance_changed_event for a
// task that is now in st.
func (s *Scheduler) publishStatus(t *state.Task, st, msg string) {
	ips := t.IPAddresses
	if ips == nil {
		ips = []marathon.TaskIPAddress{}
	}
	ports := hostPorts(t.HostPorts)
	s.bus.publish(marathon.EventStatusUpdate, &marathon.StatusUpdateEvent{
		SlaveID: t.AgentID, TaskID: t.ID, TaskStatus: st, Message: msg, AppID: t.AppID,
		Host: t.Host, IPAddresses: ips, Ports: ports, Version: t.Version,
	})
	s.bus.publish(marathon.EventInstanceChanged, &instanceChangedEvent{
		InstanceID: instanceID(t.ID), Condition: condition(st), RunSpecID: t.AppID,
		AgentID: t.AgentID, Host: t.Host, RunSpecVersion: t.Version,
	})
}

// checkAgents marks agents that stopped polling as unreachable and their
// tasks TASK_UNREACHABLE.
func (s *Scheduler) checkAgents(now time.Time) {
	var lost []string
	for id, l := range s.live {
		if l.polling == 0 && !l.unreachable && now.Sub(l.lastSeen) > s.cfg.AgentTimeout {
			l.unreachable = true
			lost = append(lost, id)
		}
	}
	if len(lost) == 0 {
		return
	}
	isLost := map[string]bool{}
	for _, id := range lost {
		isLost[id] = true
		s.log.Warn("agent unreachable", "agent", id, "timeout", s.cfg.AgentTimeout)
	}
	for _, t := range s.store.Tasks() {
		if !isLost[t.AgentID] || !t.UnreachableSince.IsZero() {
			continue
		}
		if t.KillRequested {
			s.finishTask(t, marathon.TaskKilled, "agent unreachable", now)
			continue
		}
		t.LastState = t.State
		t.State = marathon.TaskUnreachable
		t.UnreachableSince = now
		s.store.PutTask(t)
		s.publishStatus(t, marathon.TaskUnreachable, "agent unreachable")
	}
}

// pruneAgents removes the records of agents unreachable for longer than
// AgentMaxAge that no task refers to any more, so that agents replaced
// over time (a new id each time a node's data dir is lost) do not pile up.
func (s *Scheduler) pruneAgents(now time.Time) {
	var old []string
	for id, l := range s.live {
		if l.unreachable && now.Sub(l.lastSeen) > s.cfg.AgentMaxAge {
			old = append(old, id)
		}
	}
	if len(old) == 0 {
		return
	}
	inUse := map[string]bool{}
	for _, t := range s.store.Tasks() {
		inUse[t.AgentID] = true
	}
	for _, id := range old {
		if inUse[id] {
			continue
		}
		s.log.Info("agent record removed", "agent", id, "unreachable_for", now.Sub(s.live[id].lastSeen).Round(time.Second))
		delete(s.live, id)
		s.store.DeleteAgent(id)
	}
}

// checkUnreachable expunges unreachable tasks past expungeAfterSeconds.
func (s *Scheduler) checkUnreachable(now time.Time) {
	for _, t := range s.store.Tasks() {
		if t.UnreachableSince.IsZero() {
			continue
		}
		expunge := 0
		if def := s.appDef(t.AppID, ""); def != nil && def.UnreachableStrategy != nil {
			expunge = def.UnreachableStrategy.ExpungeAfterSeconds
		}
		if now.Sub(t.UnreachableSince) >= time.Duration(expunge)*time.Second {
			s.finishTask(t, marathon.TaskGone, "expunged: agent unreachable", now)
		}
	}
}

// agentBack restores the tasks of an agent that answers again. Caller
// holds s.mu.
func (s *Scheduler) agentBack(id string, l *agentLive) {
	if !l.unreachable {
		return
	}
	l.unreachable = false
	s.log.Info("agent reachable again", "agent", id)
	for _, t := range s.store.Tasks() {
		if t.AgentID != id || t.UnreachableSince.IsZero() {
			continue
		}
		t.State = t.LastState
		if t.State == "" {
			t.State = marathon.TaskRunning
		}
		t.LastState = ""
		t.UnreachableSince = time.Time{}
		s.store.PutTask(t)
		s.publishStatus(t, t.State, "agent reachable again")
	}
	s.bump(id)
	s.kick()
}

// checkTimeouts ends tasks whose launch or kill was never confirmed by a
// reachable agent: a task still staging after TaskLaunchTimeout fails (and
// is replaced); a kill not confirmed within the kill grace period plus
// KillTimeout is taken as done (the agent no longer has the task).
func (s *Scheduler) checkTimeouts(now time.Time) {
	for _, t := range s.store.Tasks() {
		if !t.UnreachableSince.IsZero() {
			continue
		}
		switch {
		case t.KillRequested:
			grace := s.cfg.DefaultKillGrace
			if def := s.appDef(t.AppID, t.Version); def != nil && def.TaskKillGracePeriodSeconds != nil {
				grace = time.Duration(*def.TaskKillGracePeriodSeconds * float64(time.Second))
			}
			if now.Sub(t.KillRequestedAt) > grace+s.cfg.KillTimeout {
				s.log.Warn("kill not confirmed by agent; task taken as killed", "task_id", t.ID, "agent", t.AgentID)
				s.finishTask(t, marathon.TaskKilled, "kill not confirmed by agent", now)
			}
		case t.State == marathon.TaskStaging || t.State == marathon.TaskStarting:
			if now.Sub(t.StagedAt) > s.cfg.TaskLaunchTimeout {
				s.log.Warn("task launch timed out", "task_id", t.ID, "agent", t.AgentID, "timeout", s.cfg.TaskLaunchTimeout)
				s.finishTask(t, marathon.TaskFailed, "task launch timed out", now)
			}
		}
	}
}

// hostPorts returns the bound host ports (dropping the 0 placeholders of
// ports without a host port), never nil.
func hostPorts(ports []int) []int {
	out := make([]int, 0, len(ports))
	for _, p := range ports {
		if p > 0 {
			out = append(out, p)
		}
	}
	return out
}

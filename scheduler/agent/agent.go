// Package agent is the Switchyard agent: it registers with the scheduler,
// keeps one long-poll open on its assignments (which is also its
// heartbeat), starts the tasks it is assigned through drivers, kills the
// ones no longer assigned, runs their health checks and reports every
// task state change.
//
// Marathon semantics: the agent never restarts a task itself. Every exit
// is terminal and reported (TASK_FINISHED, TASK_FAILED, TASK_KILLED); the
// scheduler decides about replacements.
//
// Two kinds of stop, as in Nomad: a task is killed (TASK_KILLING, SIGTERM,
// grace, SIGKILL, TASK_KILLED) when the scheduler no longer assigns it;
// when the agent itself shuts down (Run's context ends) it leaves its
// tasks running. Their handles are kept in the data directory, so a
// restarted agent re-adopts them through driver.RecoverTask and announces
// them when it registers again; tasks it cannot recover are reported
// TASK_FAILED.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/fetch"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// Defaults of Config fields.
const (
	DefaultPollWait = 10 * time.Second
	DefaultRetryMin = 250 * time.Millisecond
	DefaultRetryMax = 10 * time.Second
	// DefaultSandboxRetention keeps ended tasks' logs for post-mortems.
	DefaultSandboxRetention = time.Hour
	// DefaultReconcileGrace is how long a task the scheduler does not know
	// is kept running.
	DefaultReconcileGrace = 5 * time.Minute
)

// Config configures an Agent.
type Config struct {
	// SchedulerURL is the scheduler's base URL ("http://master:8080").
	SchedulerURL string
	// Secret is the cluster secret presented to the scheduler on every
	// request (its --agent-secret-file); empty presents none.
	Secret string
	// HTTPClient talks to the scheduler; nil means a default client.
	HTTPClient *http.Client
	// Hostname is the name the agent registers with and gives tasks as
	// HOST; default os.Hostname().
	Hostname string
	// Address is the host or IP tasks are reached at (and health checks
	// probe); default the first address Hostname resolves to, else
	// 127.0.0.1.
	Address string
	// Resources and Attributes are offered to the scheduler.
	Resources  agentapi.Resources
	Attributes map[string]string
	// DataDir holds the agent id, task records and task sandboxes.
	DataDir string
	// Drivers run tasks, by name: "process" (command tasks) and, when
	// available, "docker". TaskSpecFor chooses the driver per task.
	Drivers map[string]driver.Driver
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// ShutdownDelay is how long a task the scheduler kills keeps running
	// after TASK_KILLING is reported and before it is signalled (like
	// Nomad's shutdown_delay): load balancers following the event stream
	// stop sending it new requests first, so an app that exits at once on
	// SIGTERM loses none. Zero (the default) signals at once. An agent
	// shutting down does not kill tasks, so it never waits for this.
	ShutdownDelay time.Duration
	// PollWait is the long-poll duration of the assignments query;
	// default DefaultPollWait, and at most half the heartbeat timeout the
	// scheduler gives at registration.
	PollWait time.Duration
	// RetryMin and RetryMax bound the backoff of registration, polling
	// and status reports.
	RetryMin, RetryMax time.Duration
	// SandboxRetention is how long the sandbox (working directory and
	// logs) of an ended task is kept after its final status was
	// delivered; default DefaultSandboxRetention.
	SandboxRetention time.Duration
	// TaskEnvPassthrough names variables of the agent's own environment
	// that tasks also get. By default a task gets only what Marathon
	// gives it (its app's env, PORT*, HOST, MESOS_*, MARATHON_*, and
	// TaskPath as PATH for command tasks): never the agent's secrets.
	TaskEnvPassthrough []string
	// DefaultUser runs command tasks whose app names no user (Mesos'
	// --switch_user); empty means the agent's own user.
	DefaultUser string
	// AllowRootTasks lets command tasks run as root (uid 0), be it by
	// their app's "user", DefaultUser or the agent's own user. Without
	// it such tasks fail at once (ErrRootTask).
	AllowRootTasks bool
	// KillTasksOnStop makes the agent kill its tasks (TASK_KILLED,
	// recorded, reported now or by the next run) when Run's context ends,
	// instead of leaving them running for the next run to adopt. The
	// all-in-one uses it unless asked to keep tasks. At most
	// DefaultKillGracePeriod plus the tasks' own grace is spent on it.
	KillTasksOnStop bool
	// ReconcileGrace is how long a running task that the scheduler says
	// it does not know (AssignmentList.Unknown: a scheduler that lost or
	// never had its state) keeps running before it is killed, so that an
	// operator can restore the scheduler's state first; default
	// DefaultReconcileGrace. Tasks the scheduler knows and no longer
	// assigns are killed at once.
	ReconcileGrace time.Duration
	// Fetch configures the download of tasks' artifacts (an app's fetch
	// and uris) into their sandboxes before they start; the zero value
	// gives the fetch package's defaults, and a nil Fetch.Logger the
	// agent's logger.
	Fetch fetch.Config
	// SecretsDir holds the files an app's secrets name as their source
	// ({"secrets": {"db": {"source": "/db/password"}}} reads
	// SecretsDir/db/password). Empty: tasks that reference secrets fail.
	SecretsDir string
}

// Agent runs the tasks the scheduler assigns to it. Create it with New;
// Run it once.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	owner   string // marks the tasks this agent starts (driver.TaskSpec.Owner)
	client  *agentapi.Client
	fetcher *fetch.Fetcher
	store   *store
	rep     *reporter
	bo      backoff
	running atomic.Bool

	mu       sync.Mutex
	agentID  string                 // guarded by mu
	tasks    map[string]*taskRunner // guarded by mu: tasks with a live runner
	done     map[string]bool        // guarded by mu: tasks that reached a terminal state
	held     map[string]time.Time   // guarded by mu: tasks unknown to the scheduler, since when
	stopping bool                   // guarded by mu: KillTasksOnStop is under way; start nothing
	wg       sync.WaitGroup         // task runner goroutines
}

// New checks cfg, fills its defaults and prepares the data directory.
func New(cfg Config) (*Agent, error) {
	if cfg.SchedulerURL == "" {
		return nil, errors.New("agent: no scheduler URL")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: no data dir")
	}
	if len(cfg.Drivers) == 0 {
		return nil, errors.New("agent: no task drivers")
	}
	for name, d := range cfg.Drivers {
		if d == nil {
			return nil, fmt.Errorf("agent: driver %q is nil", name)
		}
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent: hostname: %w", err)
		}
		cfg.Hostname = h
	}
	if cfg.Address == "" {
		cfg.Address = defaultAddress(cfg.Hostname)
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = DefaultPollWait
	}
	cfg.PollWait = min(cfg.PollWait, agentapi.MaxWait)
	if cfg.SandboxRetention <= 0 {
		cfg.SandboxRetention = DefaultSandboxRetention
	}
	if cfg.ReconcileGrace <= 0 {
		cfg.ReconcileGrace = DefaultReconcileGrace
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Fetch.Logger == nil {
		cfg.Fetch.Logger = log
	}
	st, err := newStore(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.DefaultUser != "" {
		// Fail at start, not at every task's: the default user must be
		// able to enter the sandboxes.
		probe := &Agent{cfg: cfg}
		if tu, err := probe.resolveTaskUser(""); err == nil {
			if err := reachable(st.sandboxRoot(), tu); err != nil {
				return nil, fmt.Errorf("agent: --default-user %s: %w", cfg.DefaultUser, err)
			}
		}
	}
	owner, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("agent: data dir: %w", err)
	}
	return &Agent{
		cfg:     cfg,
		log:     log,
		owner:   owner,
		client:  agentapi.NewClient(cfg.SchedulerURL, cfg.HTTPClient, agentapi.WithSecret(cfg.Secret)),
		fetcher: fetch.New(cfg.Fetch),
		store:   st,
		rep:     newReporter(),
		bo:      backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
		tasks:   map[string]*taskRunner{},
		done:    map[string]bool{},
		held:    map[string]time.Time{},
	}, nil
}

func defaultAddress(hostname string) string {
	ips, err := net.LookupIP(hostname)
	if err == nil {
		for _, ip := range ips {
			if ip.To4() != nil {
				return ip.String()
			}
		}
		if len(ips) > 0 {
			return ips[0].String()
		}
	}
	return "127.0.0.1"
}

// ID returns the id the scheduler gave the agent ("" before the first
// registration of a new agent).
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.agentID
}

// Run re-adopts the tasks left by a previous run, registers, and then
// follows the scheduler's assignments until ctx ends. On return the tasks
// are left running. It returns nil after ctx ends, or an error when it
// cannot start.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	id, err := a.store.agentID()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	tok, err := a.store.agentToken()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.client.SetAgentToken(tok)
	a.mu.Lock()
	a.agentID = id
	a.mu.Unlock()

	if a.cfg.KillTasksOnStop {
		// Keep running (reporting) while the tasks are killed.
		outer := ctx
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.WithoutCancel(outer))
		defer cancel()
		go func() {
			select {
			case <-outer.Done():
			case <-ctx.Done():
				return
			}
			a.killAll()
			cancel()
		}()
	}
	a.log.Info("agent running", "hostname", a.cfg.Hostname, "address", a.cfg.Address, "data_dir", a.cfg.DataDir)
	recovered := a.recoverTasks(ctx)

	repDone := make(chan struct{})
	go func() {
		defer close(repDone)
		a.rep.run(ctx, a.bo, a.sendStatuses, a.statusesAccepted)
	}()
	for _, r := range recovered {
		a.startRunner(ctx, r)
	}
	a.gcSandboxes()

	for ctx.Err() == nil {
		resp, err := a.register(ctx)
		if err != nil {
			break
		}
		a.follow(ctx, resp)
	}

	a.wg.Wait()
	<-repDone
	a.flushReports()
	if a.cfg.KillTasksOnStop {
		a.log.Info("agent stopped; tasks killed", "agent", a.ID())
	} else {
		a.log.Info("agent stopped; tasks left running", "agent", a.ID())
	}
	return nil
}

// killAll kills every task (KillTasksOnStop) and waits, for a bounded
// time, until their runners recorded how they ended.
func (a *Agent) killAll() {
	a.mu.Lock()
	a.stopping = true
	rs := slices.Collect(maps.Values(a.tasks))
	a.mu.Unlock()
	a.log.Info("agent stopping; killing its tasks", "tasks", len(rs))
	var longest time.Duration
	for _, r := range rs {
		r.kill()
		longest = max(longest, time.Duration(r.asg.KillGracePeriod))
	}
	// Runners leave a.tasks once their task's end is recorded.
	deadline := time.Now().Add(longest + DefaultKillGracePeriod + 5*time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		a.mu.Lock()
		left := len(a.tasks)
		a.mu.Unlock()
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			a.log.Warn("tasks still being killed; leaving them to the next run", "tasks", left)
			return
		}
	}
}

// recoverTasks reads the task records of a previous run: tasks still
// running are re-attached (and returned, to be announced at
// registration), final statuses not yet delivered are queued again, and
// tasks that vanished are reported TASK_FAILED.
//
// A record without a handle is a task the previous run was starting when
// it stopped. Drivers that mark their tasks (driver.Finder) tell whether
// it started: if so it is adopted like any other; if not, its record is
// dropped and the task starts when the scheduler assigns it again. It is
// never reported failed, so a crash does not grow the app's backoff.
// Marked tasks with no record are orphans and are killed.
func (a *Agent) recoverTasks(ctx context.Context) []*taskRunner {
	recs, errs := a.store.loadTasks()
	for _, err := range errs {
		a.log.Warn("skipping unreadable task record", "err", err)
	}
	found, findable := a.findStarted(ctx)
	a.awaitStarts(ctx, recs, found, findable)
	var out []*taskRunner
	for _, rec := range recs {
		id := rec.Assignment.TaskID
		log := a.log.With("task_id", id, "app_id", rec.Assignment.AppID)
		if rec.Terminal != nil {
			a.done[id] = true
			a.rep.push(*rec.Terminal)
			continue
		}
		if rec.Handle == nil && findable[rec.Driver] {
			f, ok := found[id]
			if !ok || f.drvName != rec.Driver {
				log.Info("task was not started when the agent stopped; it starts when assigned again")
				if err := a.store.deleteTask(id); err != nil {
					log.Warn("cannot delete task record", "err", err)
				}
				continue
			}
			h := f.handle
			rec.Handle = &h
			if rec.StartedAt == "" {
				rec.StartedAt = now()
			}
			if err := a.store.putTask(rec); err != nil {
				log.Error("cannot persist task handle", "err", err)
			}
			log.Info("adopting task started before the agent stopped")
		}
		r := newTaskRunner(a, rec.Assignment)
		r.record = rec
		drv := a.cfg.Drivers[rec.Driver]
		var lost error
		switch {
		case rec.Handle == nil:
			lost = errors.New("the agent stopped while the task was starting")
		case drv == nil:
			lost = fmt.Errorf("driver %q is not enabled on this agent", rec.Driver)
		default:
			lost = a.recoverWithRetry(ctx, drv, rec.Handle)
		}
		if lost != nil {
			log.Warn("task not recovered", "err", lost)
			r.finishRecovered(marathon.TaskFailed, "task lost while the agent was down: "+lost.Error())
			a.done[id] = true
			continue
		}
		r.drv = drv
		r.recovered = true
		r.inspect(ctx)
		r.mu.Lock()
		r.startedAt = rec.StartedAt
		r.status = r.statusLocked(marathon.TaskRunning, "")
		r.mu.Unlock()
		log.Info("task recovered")
		out = append(out, r)
	}
	known := make(map[string]bool, len(out))
	for _, r := range out {
		known[r.asg.TaskID] = true
	}
	// List orphans now, before any new task starts; kill them meanwhile.
	orphans := a.findOrphans(ctx, known)
	for id, f := range found {
		if !known[id] && !slices.ContainsFunc(orphans, func(o orphan) bool { return o.handle.TaskID == id }) {
			orphans = append(orphans, orphan{drv: a.cfg.Drivers[f.drvName], handle: f.handle})
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.killOrphans(ctx, orphans)
		a.killStrays(ctx)
	}()
	return out
}

// strayKiller is an optional driver ability (the process driver): killing
// the processes marked with the agent's owner mark whose task keep
// rejects, whatever group they are in.
type strayKiller interface {
	KillStrays(ctx context.Context, owner string, keep func(taskID string) bool) (int, error)
}

// killStrays kills what is left of tasks the agent does not run: the
// background processes of a task whose leader died while the agent was
// down, or of an orphan.
func (a *Agent) killStrays(ctx context.Context) {
	keep := func(id string) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.tasks[id] != nil
	}
	for name, d := range a.cfg.Drivers {
		if k, ok := d.(strayKiller); ok {
			if n, err := k.KillStrays(ctx, a.owner, keep); err != nil {
				a.log.Warn("cannot look for stray processes", "driver", name, "err", err)
			} else if n > 0 {
				a.log.Warn("killed processes left by tasks that no longer run", "driver", name, "processes", n)
			}
		}
	}
}

// startSettle bounds how long recovery looks again for tasks whose start
// was interrupted: a process the previous run was starting when it was
// killed becomes visible (marked) only once it has exec'd, which may lag
// the kill by a few scheduling delays on a loaded machine.
const (
	startSettle     = 2 * time.Second
	startSettleStep = 100 * time.Millisecond
)

// awaitStarts looks again, for up to startSettle, for the handle-less
// tasks of recs not in found yet, and adds them to found when they appear.
func (a *Agent) awaitStarts(ctx context.Context, recs []taskRecord, found map[string]startedTask, findable map[string]bool) {
	missing := func() bool {
		for _, rec := range recs {
			if rec.Terminal == nil && rec.Handle == nil && findable[rec.Driver] {
				if _, ok := found[rec.Assignment.TaskID]; !ok {
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(startSettle); missing() && time.Now().Before(deadline); {
		if !sleep(ctx, startSettleStep) {
			return
		}
		again, _ := a.findStarted(ctx)
		maps.Copy(found, again)
	}
}

// startedTask is a task a driver found by the agent's owner mark.
type startedTask struct {
	drvName string
	handle  driver.TaskHandle
}

// findStarted asks every driver that marks its tasks (driver.Finder) for
// the live tasks this agent started, by task id. findable names the
// drivers that answered: only for them does a missing task mean it never
// started.
func (a *Agent) findStarted(ctx context.Context) (found map[string]startedTask, findable map[string]bool) {
	found, findable = map[string]startedTask{}, map[string]bool{}
	for name, d := range a.cfg.Drivers {
		f, ok := d.(driver.Finder)
		if !ok {
			continue
		}
		hs, err := f.FindTasks(ctx, a.owner)
		if err != nil {
			a.log.Warn("cannot look for tasks started before a crash", "driver", name, "err", err)
			continue
		}
		findable[name] = true
		for _, h := range hs {
			found[h.TaskID] = startedTask{drvName: name, handle: h}
		}
	}
	return found, findable
}

// recoverWithRetry re-attaches to a task, retrying a few times when the
// driver fails for another reason than the task being gone (a Docker
// engine still starting, say).
func (a *Agent) recoverWithRetry(ctx context.Context, drv driver.Driver, h *driver.TaskHandle) error {
	const attempts = 5
	var err error
	for i := 1; i <= attempts; i++ {
		err = drv.RecoverTask(ctx, h)
		if err == nil || errors.Is(err, driver.ErrTaskNotFound) || i == attempts {
			return err
		}
		a.log.Warn("recover task failed, retrying", "task_id", h.TaskID, "err", err)
		if !sleep(ctx, a.bo.delay(i)) {
			return err
		}
	}
	return err
}

// orphan is a task a driver runs that the agent has no record of.
type orphan struct {
	drv    driver.Driver
	handle driver.TaskHandle
}

// findOrphans lists tasks drivers still run but the agent has no record
// of (it stopped between starting a task and recording it). Only drivers
// that can list their tasks (driver.Lister) can have orphans found.
func (a *Agent) findOrphans(ctx context.Context, known map[string]bool) []orphan {
	var out []orphan
	for name, d := range a.cfg.Drivers {
		l, ok := d.(driver.Lister)
		if !ok {
			continue
		}
		hs, err := l.ListTasks(ctx)
		if err != nil {
			a.log.Warn("cannot list tasks for orphans", "driver", name, "err", err)
			continue
		}
		for _, h := range hs {
			if !known[h.TaskID] {
				out = append(out, orphan{drv: d, handle: h})
			}
		}
	}
	return out
}

// killOrphans kills orphaned tasks.
func (a *Agent) killOrphans(ctx context.Context, orphans []orphan) {
	for _, o := range orphans {
		d, h := o.drv, o.handle
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("killing orphaned task", "driver", d.Name(), "task_id", h.TaskID)
		if err := d.RecoverTask(ctx, &h); err != nil {
			a.log.Warn("cannot adopt orphaned task", "task_id", h.TaskID, "err", err)
			continue
		}
		if err := d.StopTask(ctx, h.TaskID, DefaultKillGracePeriod); err != nil {
			a.log.Warn("cannot stop orphaned task", "task_id", h.TaskID, "err", err)
			continue
		}
		if err := d.DestroyTask(ctx, h.TaskID, true); err != nil {
			a.log.Warn("cannot destroy orphaned task", "task_id", h.TaskID, "err", err)
		}
	}
}

func (a *Agent) startRunner(ctx context.Context, r *taskRunner) {
	a.mu.Lock()
	if a.stopping {
		a.mu.Unlock()
		return
	}
	a.tasks[r.asg.TaskID] = r
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		terminal := r.run(ctx)
		a.mu.Lock()
		delete(a.tasks, r.asg.TaskID)
		if terminal {
			a.done[r.asg.TaskID] = true
		}
		a.mu.Unlock()
	}()
}

// register announces the agent, retrying with backoff until it succeeds
// or ctx ends.
func (a *Agent) register(ctx context.Context) (agentapi.RegisterResponse, error) {
	for attempt := 1; ; attempt++ {
		req := agentapi.RegisterRequest{
			AgentID:    a.ID(),
			Hostname:   a.cfg.Hostname,
			Address:    a.cfg.Address,
			Resources:  a.cfg.Resources,
			Attributes: a.cfg.Attributes,
			Tasks:      a.registrationStatuses(),
		}
		resp, err := a.client.Register(ctx, req)
		if err == nil && resp.AgentID == "" {
			err = errors.New("scheduler gave no agent id")
		}
		if err == nil {
			if resp.AgentID != req.AgentID {
				if err := a.store.setAgentID(resp.AgentID); err != nil {
					a.log.Error("cannot persist agent id", "err", err)
				}
			}
			if resp.AgentToken != "" {
				if err := a.store.setAgentToken(resp.AgentToken); err != nil {
					a.log.Error("cannot persist agent token", "err", err)
				}
			}
			a.mu.Lock()
			a.agentID = resp.AgentID
			a.mu.Unlock()
			a.log.Info("registered", "agent", resp.AgentID, "tasks", len(req.Tasks))
			return resp, nil
		}
		if ctx.Err() != nil {
			return agentapi.RegisterResponse{}, ctx.Err()
		}
		d := a.bo.delay(attempt)
		if errors.Is(err, agentapi.ErrForbidden) {
			a.log.Error("the scheduler refuses this agent's id: another agent's token is bound to it (if this machine's data dir was copied or restored, stop the agent and remove agent-id and agent-token from it); retrying",
				"agent", req.AgentID, "err", err, "duration", d)
		} else {
			a.log.Warn("registration failed, retrying", "err", err, "duration", d)
		}
		if !sleep(ctx, d) {
			return agentapi.RegisterResponse{}, ctx.Err()
		}
	}
}

// follow keeps the assignments long-poll open and reconciles each answer.
// It returns when ctx ends or a poll fails (the caller re-registers).
func (a *Agent) follow(ctx context.Context, resp agentapi.RegisterResponse) {
	wait := a.cfg.PollWait
	if hb := time.Duration(resp.HeartbeatTimeout); hb > 0 && wait > hb/2 {
		wait = hb / 2
	}
	var index uint64
	for failures := 0; ctx.Err() == nil; {
		pctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
		list, err := a.client.Assignments(pctx, resp.AgentID, index, wait)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			d := a.bo.delay(failures)
			a.log.Warn("assignments poll failed, re-registering", "err", err, "duration", d)
			sleep(ctx, d)
			return
		}
		index = list.Index
		a.reconcile(ctx, list)
	}
}

// reconcile starts assigned tasks that are not running and kills running
// tasks that are no longer assigned. Tasks that already ended are never
// started again under the same id. A running task the scheduler does not
// know (list.Unknown) is held for the reconcile grace before it is killed.
func (a *Agent) reconcile(ctx context.Context, list agentapi.AssignmentList) {
	want := make(map[string]bool, len(list.Tasks))
	unknown := make(map[string]bool, len(list.Unknown))
	for _, id := range list.Unknown {
		unknown[id] = true
	}
	now := time.Now()
	var start []*taskRunner
	a.mu.Lock()
	for _, asg := range list.Tasks {
		if asg.TaskID == "" || want[asg.TaskID] {
			continue
		}
		want[asg.TaskID] = true
		if a.tasks[asg.TaskID] != nil || a.done[asg.TaskID] {
			continue
		}
		start = append(start, newTaskRunner(a, asg))
	}
	var kill []*taskRunner
	for id, r := range a.tasks {
		if want[id] {
			delete(a.held, id)
			continue
		}
		if unknown[id] {
			since, held := a.held[id]
			if !held {
				a.held[id] = now
				a.log.Warn("the scheduler does not know this running task; keeping it for the reconcile grace, then killing it",
					"task_id", id, "app_id", r.asg.AppID, "grace", a.cfg.ReconcileGrace,
					"kill_at", now.Add(a.cfg.ReconcileGrace).UTC().Format(time.RFC3339))
				continue
			}
			if now.Sub(since) < a.cfg.ReconcileGrace {
				continue
			}
			a.log.Warn("reconcile grace over; killing task the scheduler does not know", "task_id", id, "app_id", r.asg.AppID)
		}
		delete(a.held, id)
		kill = append(kill, r)
	}
	for id := range a.held {
		if a.tasks[id] == nil {
			delete(a.held, id)
		}
	}
	for id := range a.done {
		if !want[id] {
			delete(a.done, id)
		}
	}
	a.mu.Unlock()
	for _, r := range start {
		a.log.Info("starting task", "task_id", r.asg.TaskID, "app_id", r.asg.AppID)
		a.startRunner(ctx, r)
	}
	for _, r := range kill {
		r.kill()
	}
}

// registrationStatuses is what the agent announces when it registers:
// the current status of its live tasks and the final statuses not yet
// delivered, so the scheduler learns how a task it still counts on ended
// rather than taking it as lost.
func (a *Agent) registrationStatuses() []agentapi.TaskStatus {
	out := a.liveStatuses()
	seen := map[string]bool{}
	for _, st := range out {
		seen[st.TaskID] = true
	}
	for _, st := range a.rep.peek() {
		if marathon.IsTerminal(st.State) && !seen[st.TaskID] {
			seen[st.TaskID] = true
			out = append(out, st)
		}
	}
	return out
}

// liveStatuses returns the current status of every task with a runner.
func (a *Agent) liveStatuses() []agentapi.TaskStatus {
	a.mu.Lock()
	rs := make([]*taskRunner, 0, len(a.tasks))
	for _, r := range a.tasks {
		rs = append(rs, r)
	}
	a.mu.Unlock()
	out := make([]agentapi.TaskStatus, 0, len(rs))
	for _, r := range rs {
		if st := r.current(); st.State != "" && !marathon.IsTerminal(st.State) {
			out = append(out, st)
		}
	}
	return out
}

// errNotRegistered delays status reports until the agent has an id.
var errNotRegistered = errors.New("agent not registered yet")

func (a *Agent) sendStatuses(ctx context.Context, batch []agentapi.TaskStatus) error {
	id := a.ID()
	if id == "" {
		return errNotRegistered
	}
	err := a.client.ReportStatus(ctx, agentapi.StatusReport{AgentID: id, Statuses: batch})
	var se *agentapi.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusForbidden) {
		// Retrying cannot help (a malformed report, or one about tasks
		// the scheduler says another agent runs); drop the batch rather
		// than block the queue.
		a.log.Error("scheduler rejected status report, dropping it", "err", err, "statuses", len(batch))
		return nil
	}
	if err != nil {
		a.log.Warn("status report failed, will retry", "err", err, "statuses", len(batch))
	}
	return err
}

// statusesAccepted forgets tasks whose final status was delivered and
// removes sandboxes past their retention.
func (a *Agent) statusesAccepted(batch []agentapi.TaskStatus) {
	ended := false
	for _, st := range batch {
		if !marathon.IsTerminal(st.State) {
			continue
		}
		ended = true
		if err := a.store.deleteTask(st.TaskID); err != nil {
			a.log.Warn("cannot delete task record", "task_id", st.TaskID, "err", err)
		}
		// Retention counts from now.
		if p, err := sandboxPath(a.store.sandboxRoot(), st.TaskID); err == nil {
			t := time.Now()
			_ = os.Chtimes(p, t, t)
		}
	}
	if ended {
		a.gcSandboxes()
	}
}

// gcSandboxes removes the sandboxes of tasks that have neither a runner
// nor a record and were last touched more than SandboxRetention ago.
func (a *Agent) gcSandboxes() {
	root := a.store.sandboxRoot()
	ents, err := os.ReadDir(root)
	if err != nil {
		a.log.Warn("cannot list sandboxes", "err", err)
		return
	}
	cutoff := time.Now().Add(-a.cfg.SandboxRetention)
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || validTaskID(id) != nil {
			continue
		}
		a.mu.Lock()
		live := a.tasks[id] != nil
		a.mu.Unlock()
		if live || a.store.hasTask(id) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, id)); err != nil {
			a.log.Warn("cannot remove sandbox", "task_id", id, "err", err)
		}
	}
}

// flushReports makes one last, short attempt to deliver queued statuses
// when the agent stops. Undelivered final statuses stay on disk and are
// sent by the next run.
func (a *Agent) flushReports() {
	batch := a.rep.peek()
	if len(batch) == 0 || a.ID() == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := a.sendStatuses(ctx, batch); err == nil {
		a.rep.drop(len(batch))
		a.statusesAccepted(batch)
	}
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Package scheduler is the Marathon-compatible scheduler core. It owns the
// state (scheduler/state), turns app changes into deployments
// (scheduler/deploy), asks scheduler/placement where tasks go, hands tasks
// to agents through the agentapi.Scheduler contract (agents long-poll their
// assignments and push status), folds in status and health, and publishes
// Marathon events.
//
// A Scheduler satisfies marathon/httpapi's AppService, GroupService, ReadinessService,
// TaskService, DeploymentService, EventSource and ClusterService
// interfaces without importing that package, and agentapi.Scheduler.
// Readiness checks are probed by the scheduler itself (readiness.go). All state changes happen
// under one lock, and every event is published after the change it
// describes, so a GET that follows an event already shows it.
//
// The reconcile loop (Run) is level-triggered: every tick (and on every
// change) it compares each app's desired state with its tasks, advances
// deployments, relaunches ended tasks with backoff, replaces tasks of lost
// agents and kills surplus tasks.
package scheduler

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/state"
)

// Service port range (Marathon's local_port_min/max).
const (
	ServicePortMin = 10000
	ServicePortMax = 20000
)

// Version is what /v2/info reports as the Marathon version we mimic.
const Version = "1.10.0"

// Config configures a Scheduler.
type Config struct {
	// DataDir holds the bbolt state file (scheduler.db). Empty keeps
	// state in memory only.
	DataDir string
	// Store, when set, is used instead of DataDir (an HA scheduler's
	// ZooKeeper-backed store); the scheduler closes it like its own.
	Store *state.Store
	// AgentTimeout is how long an agent may go without an assignments poll
	// before it is unreachable (default 15s).
	AgentTimeout time.Duration
	// AgentMaxAge is how long an unreachable agent with no task left is
	// remembered before its record is removed (default 24h; like Mesos's
	// registry_max_agent_age). An agent that comes back later simply
	// registers again.
	AgentMaxAge time.Duration
	// ReconcileInterval is the reconcile loop's tick (default 1s); changes
	// also wake the loop at once.
	ReconcileInterval time.Duration
	// EventBuffer bounds each /v2/events subscriber's queue (default 1024).
	EventBuffer int
	// DefaultKillGrace is the SIGTERM to SIGKILL delay for apps without
	// taskKillGracePeriodSeconds (default 3s).
	DefaultKillGrace time.Duration
	// TaskLaunchTimeout fails a task an agent did not start in time
	// (default 5m, Marathon's --task_launch_timeout).
	TaskLaunchTimeout time.Duration
	// KillTimeout is how long, after the kill grace period, the scheduler
	// waits for a reachable agent to confirm a kill before it takes the
	// task as killed (default 30s, like Marathon's --kill_retry_timeout).
	KillTimeout time.Duration
	// Leader is the host:port /v2/leader and /v2/info report.
	Leader string
	// Registry receives the scheduler's metrics (optional).
	Registry prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnAbdicate is called by DELETE /v2/leader (optional); a single
	// node stays leader.
	OnAbdicate func()
	// MaxVersions is how many definitions per app are kept for rollback
	// and GET /v2/apps/{id}/versions, the newest (default
	// state.MaxVersions, like Marathon's --zk_max_versions).
	MaxVersions int
}

// agentLive is the in-memory liveness of an agent.
type agentLive struct {
	lastSeen    time.Time
	seen        bool // polled or registered since this scheduler started
	polling     int
	unreachable bool
	index       uint64
}

// Scheduler is the scheduler core. Create it with New and drive it with
// Run; its methods are safe for concurrent use.
type Scheduler struct {
	cfg   Config
	log   *slog.Logger
	store *state.Store
	bus   *bus

	mu        sync.Mutex
	live      map[string]*agentLive
	index     uint64
	changed   chan struct{}
	rnd       *mrand.Rand
	startedAt time.Time
	noFit     map[string]*noFit // app -> why its last launch found no agent
	// noFitLogged (under mu) remembers, per app, the reasons already
	// logged since the app was last placed, so each is logged once.
	noFitLogged map[string]map[string]bool
	wake        chan struct{}
	// callbackWake tells the callback deliverers the URL set changed.
	callbackWake chan struct{}
	// cbSubs (under cbMu) holds the subscriptions AddCallback made for
	// deliverers not started yet.
	cbMu   sync.Mutex
	cbSubs map[string]cbSub

	// lastVersion is the last app/deployment version time handed out.
	lastVersion time.Time

	// ready is the readiness-check state of tasks a deployment waits for
	// (under mu); probeCtx (under mu) bounds the probes and is set by Run;
	// probes counts the probe goroutines.
	ready       map[string]*readiness
	probeCtx    context.Context
	probes      sync.WaitGroup
	probeClient *http.Client

	// checks counts the health checks announced per app and version
	// (healthchecks.go; under mu).
	checks map[string]map[string]int
	// orphans holds, per agent, the last status of the tasks it reported
	// that the store has no record of (under mu; not persisted): the
	// agent holds them for its reconcile grace (AssignmentList.Unknown)
	// and GET /v2/tasks?orphans lists them.
	orphans map[string]map[string]agentapi.TaskStatus
	// queuedSince is when each app with instances to launch entered the
	// launch queue (under mu).
	queuedSince map[string]time.Time

	metrics *metrics
}

// New opens the state and builds a Scheduler. Call Run to start it and
// Close (or let Run return) to release the store.
func New(cfg Config) (*Scheduler, error) {
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = 15 * time.Second
	}
	if cfg.AgentMaxAge <= 0 {
		cfg.AgentMaxAge = 24 * time.Hour
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = time.Second
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 1024
	}
	if cfg.DefaultKillGrace <= 0 {
		cfg.DefaultKillGrace = 3 * time.Second
	}
	if cfg.TaskLaunchTimeout <= 0 {
		cfg.TaskLaunchTimeout = 5 * time.Minute
	}
	if cfg.KillTimeout <= 0 {
		cfg.KillTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Leader == "" {
		host, _ := os.Hostname()
		cfg.Leader = host + ":8080"
	}
	st := cfg.Store
	if st == nil {
		path := ""
		if cfg.DataDir != "" {
			if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
				return nil, fmt.Errorf("create data dir: %w", err)
			}
			path = filepath.Join(cfg.DataDir, "scheduler.db")
		}
		var err error
		if st, err = state.Open(path); err != nil {
			return nil, err
		}
	}
	st.SetMaxVersions(cfg.MaxVersions)
	now := time.Now()
	s := &Scheduler{
		cfg:       cfg,
		log:       cfg.Logger,
		store:     st,
		live:      map[string]*agentLive{},
		index:     uint64(now.UnixNano()),
		changed:   make(chan struct{}),
		rnd:       mrand.New(mrand.NewPCG(uint64(now.UnixNano()), 0x5eed)),
		startedAt: now,
		noFit:     map[string]*noFit{},

		noFitLogged: map[string]map[string]bool{},
		wake:        make(chan struct{}, 1),

		callbackWake: make(chan struct{}, 1),
		cbSubs:       map[string]cbSub{},
		ready:        map[string]*readiness{},
		checks:       map[string]map[string]int{},
		queuedSince:  map[string]time.Time{},
		orphans:      map[string]map[string]agentapi.TaskStatus{},
		probeClient:  newReadinessClient(),
	}
	s.metrics = newMetrics(s)
	s.bus = newBus(cfg.EventBuffer, s.metrics.droppedStreams.Inc)
	if cfg.Registry != nil {
		if err := s.metrics.register(cfg.Registry); err != nil {
			_ = st.Close()
			return nil, err
		}
	}
	// Agents known from before a restart get AgentTimeout to come back;
	// health results are not persisted.
	// Their index is the new starting index, so a poll with an index from
	// the previous run returns the current set at once.
	for _, a := range st.Agents() {
		s.live[a.ID] = &agentLive{lastSeen: now, index: s.index}
	}
	return s, nil
}

// Run drives the reconcile loop (and the delivery of events to HTTP
// callback subscribers) until ctx ends, then flushes and closes the
// store.
func (s *Scheduler) Run(ctx context.Context) error {
	ticker := time.NewTicker(s.cfg.ReconcileInterval)
	defer ticker.Stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runCallbacks(ctx)
	}()
	defer wg.Wait()
	probeCtx, stopProbes := context.WithCancel(ctx)
	s.mu.Lock()
	s.probeCtx = probeCtx
	s.mu.Unlock()
	// Runs after the store is closed below and s.mu is released.
	defer func() {
		stopProbes()
		s.probes.Wait()
	}()
	s.log.Info("scheduler running", "apps", len(s.store.Apps()), "tasks", len(s.store.Tasks()))
	for {
		s.reconcile()
		s.mu.Lock()
		err := s.flushLocked()
		s.mu.Unlock()
		if err != nil {
			s.log.Error("persist state", "err", err)
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			if err := s.store.Close(); err != nil {
				return fmt.Errorf("close state: %w", err)
			}
			return nil
		case <-ticker.C:
		case <-s.wake:
		}
	}
}

// Close releases the store without running (for callers that never
// called Run).
func (s *Scheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.Close()
}

// kick wakes the reconcile loop.
func (s *Scheduler) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// errStore marks errors of the state store (errors.Is).
var errStore = errors.New("state store")

// flushLocked writes every pending change to disk. Caller holds s.mu, so
// no change is ever written half-applied.
func (s *Scheduler) flushLocked() error {
	if err := s.store.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	return nil
}

// bump marks an agent's assignment set as changed. Caller holds s.mu.
func (s *Scheduler) bump(agentID string) {
	s.index++
	l := s.live[agentID]
	if l == nil {
		l = &agentLive{}
		s.live[agentID] = l
	}
	l.index = s.index
	close(s.changed)
	s.changed = make(chan struct{})
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newTaskID returns <safeAppId>.<uuid>.
func newTaskID(appID string) string { return marathon.SafeID(appID) + "." + newUUID() }

// instanceID derives <safeAppId>.marathon-<uuid> from a task id.
func instanceID(taskID string) string {
	i := strings.LastIndex(taskID, ".")
	if i < 0 {
		return taskID
	}
	return taskID[:i] + ".marathon-" + taskID[i+1:]
}

// appDef returns the definition a task runs: its version, else the
// current app, else the definition a running deployment stops.
func (s *Scheduler) appDef(appID, version string) *marathon.App {
	if version != "" {
		if d, ok := s.store.AppVersion(appID, version); ok {
			return d
		}
	}
	if a, ok := s.store.App(appID); ok {
		return &a.Def
	}
	for _, d := range s.store.Deployments() {
		if o := d.Original[appID]; o != nil {
			return o
		}
	}
	return nil
}

// tasksByApp groups the stored tasks by app. Caller holds s.mu.
func (s *Scheduler) tasksByApp() map[string][]*state.Task {
	m := map[string][]*state.Task{}
	for _, t := range s.store.Tasks() {
		m[t.AppID] = append(m[t.AppID], t)
	}
	return m
}

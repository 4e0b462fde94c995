// Package state is the scheduler's store: apps (with their stored
// versions), tasks, deployments and agents, kept in memory and persisted
// through a Backend (an embedded bbolt database, or ZooKeeper for an HA
// scheduler: scheduler/state/zkstore) so a scheduler restart loses
// nothing.
//
// The store has a single writer (the scheduler, under its own lock). Put
// methods take a snapshot of the value (its JSON) at once, so later changes
// to the value are not persisted until it is Put again; Flush writes every
// pending change in one transaction. Reads return the stored pointers: the
// caller must not modify them without putting them back, and must
// serialise reads with its writes. Store methods themselves are safe for
// concurrent use.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// MaxVersions is how many definitions per app are kept for rollback by
// default (Marathon's --zk_max_versions default); see SetMaxVersions.
const MaxVersions = 50

// App is a stored app: its current definition and its launch backoff.
type App struct {
	Def marathon.App `json:"def"`
	// Backoff is the current launch delay in seconds (0 = none).
	Backoff float64 `json:"backoff,omitempty"`
	// BackoffUntil is the earliest next launch time while in backoff.
	BackoffUntil time.Time `json:"backoffUntil,omitzero"`
	// LastFailureAt is when a task of the app last ended with a failure.
	LastFailureAt time.Time `json:"lastFailureAt,omitzero"`
	// LastTaskFailure is shown by embed=apps.lastTaskFailure.
	LastTaskFailure *marathon.TaskFailure `json:"lastTaskFailure,omitempty"`
}

// Task is one task of an app, as the scheduler tracks it.
type Task struct {
	ID        string    `json:"id"`
	AppID     string    `json:"appId"`
	AgentID   string    `json:"agentId"`
	Host      string    `json:"host"`
	State     string    `json:"state"`
	Message   string    `json:"message,omitempty"`
	StagedAt  time.Time `json:"stagedAt"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	Version   string    `json:"version"`
	// ConfigVersion is the app's lastConfigChangeAt at launch: the task
	// runs the latest config when it equals the app's current one.
	ConfigVersion string `json:"configVersion"`
	// Role is the Mesos role the task was launched with (its app's).
	Role         string                   `json:"role,omitempty"`
	HostPorts    []int                    `json:"hostPorts"`
	ServicePorts []int                    `json:"servicePorts"`
	IPAddresses  []marathon.TaskIPAddress `json:"ipAddresses,omitempty"`
	// HealthChecks is how many health checks the task's version has.
	HealthChecks int `json:"healthChecks"`
	// Health holds the latest results; it is not persisted (Marathon keeps
	// health in memory only), so it starts empty after a restart.
	Health []marathon.HealthCheckResult `json:"-"`
	// Delivered is set once the task was in an assignment list its agent
	// fetched, or the agent reported it: until then a kill just drops it.
	Delivered bool `json:"delivered,omitempty"`
	// KillRequested is set once the scheduler decided to kill the task.
	KillRequested bool `json:"killRequested,omitempty"`
	// KillReason says why (scale, restart, unhealthy, ...); an
	// expected kill does not count as a failure for backoff.
	KillReason string `json:"killReason,omitempty"`
	// KillRequestedAt is when the kill was decided (for kill timeouts).
	KillRequestedAt time.Time `json:"killRequestedAt,omitzero"`
	// Sentenced marks tasks named by a scale=true kill.
	Sentenced bool `json:"sentenced,omitempty"`
	// UnreachableSince is set while the task's agent does not answer.
	UnreachableSince time.Time `json:"unreachableSince,omitzero"`
	// LastState is the state before the agent became unreachable.
	LastState string `json:"lastState,omitempty"`
}

// Healthy reports whether the task runs and every health check of its
// version is alive (running is enough without health checks).
func (t *Task) Healthy() bool {
	if t.State != marathon.TaskRunning {
		return false
	}
	if t.HealthChecks == 0 {
		return true
	}
	if len(t.Health) < t.HealthChecks {
		return false
	}
	for _, h := range t.Health {
		if !h.Alive {
			return false
		}
	}
	return true
}

// Deployment is a stored deployment plan and its progress.
type Deployment struct {
	ID           string                    `json:"id"`
	Version      string                    `json:"version"`
	AffectedApps []string                  `json:"affectedApps"`
	Steps        []marathon.DeploymentStep `json:"steps"`
	// CurrentStep is 1-based; 0 means the plan has not started.
	CurrentStep int `json:"currentStep"`
	// Original holds the definitions before the change (nil entry: the app
	// did not exist), for rollbacks and StopApplication.
	Original map[string]*marathon.App `json:"original"`
	// Target holds the definitions the plan deploys (nil entry: removed).
	Target map[string]*marathon.App `json:"target"`
	// Created orders deployments.
	Created time.Time `json:"created"`
}

// PortRange is an inclusive range of host ports.
type PortRange struct {
	Begin int `json:"begin"`
	End   int `json:"end"`
}

// Agent is a registered agent.
type Agent struct {
	ID         string            `json:"id"`
	Hostname   string            `json:"hostname"`
	Address    string            `json:"address"`
	CPUs       float64           `json:"cpus"`
	Mem        float64           `json:"mem"`
	Disk       float64           `json:"disk"`
	Ports      []PortRange       `json:"ports"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Registered time.Time         `json:"registered"`
	// TokenHash is the hash of the per-agent token bound to ID
	// (agentapi.HashAgentToken); empty for agents registered before
	// tokens existed.
	TokenHash string `json:"tokenHash,omitempty"`
}

var (
	bucketApps        = []byte("apps")
	bucketVersions    = []byte("versions")
	bucketTasks       = []byte("tasks")
	bucketDeployments = []byte("deployments")
	bucketAgents      = []byte("agents")
	bucketCallbacks   = []byte("callbacks")
	allBuckets        = [][]byte{bucketApps, bucketVersions, bucketTasks, bucketDeployments, bucketAgents, bucketCallbacks,
		bucketGroups, bucketGroupVersions, bucketGroupDefs}
)

type dirtyKey struct {
	bucket string
	key    string
}

// Store is the scheduler's state. See the package comment for its
// concurrency rules.
type Store struct {
	// flushMu serialises flushes so that an older snapshot of a key is
	// never written after a newer one.
	flushMu     sync.Mutex
	mu          sync.RWMutex
	backend     Backend // nil: memory only
	apps        map[string]*App
	versions    map[string][]string // app id -> sorted version ids
	defs        map[string]*marathon.App
	tasks       map[string]*Task
	deployments map[string]*Deployment
	agents      map[string]*Agent
	callbacks   map[string]bool
	groupStore
	dirty       map[dirtyKey][]byte // nil value = delete
	maxVersions int                 // 0 means MaxVersions
	// undo journals, between Begin and Commit or Rollback, the pending
	// change (if any) of every key changed since Begin.
	undo map[dirtyKey]undoEntry
}

// SetMaxVersions sets how many definitions per app are kept (n <= 0:
// MaxVersions) and drops the oldest ones beyond it at once. The same
// limit applies to group versions from their next change on.
func (s *Store) SetMaxVersions(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxVersions = n
	for id, vs := range s.versions {
		s.versions[id] = s.trimVersions(id, vs)
	}
}

// versionLimit is how many versions of an app, and of the group tree,
// are kept. Caller holds s.mu.
func (s *Store) versionLimit() int {
	if s.maxVersions <= 0 {
		return MaxVersions
	}
	return s.maxVersions
}

// trimVersions drops the oldest of an app's sorted versions beyond the
// limit. Caller holds s.mu.
func (s *Store) trimVersions(id string, vs []string) []string {
	limit := s.versionLimit()
	for len(vs) > limit {
		old := id + "\x00" + vs[0]
		delete(s.defs, old)
		s.mark(bucketVersions, old, nil)
		vs = vs[1:]
	}
	return vs
}

// undoEntry is a key's state at Begin: its pending (not yet flushed)
// snapshot when wasDirty, else whatever the database holds.
type undoEntry struct {
	wasDirty bool
	snapshot []byte
}

// Open opens (or creates) the store in the bbolt file at path and loads
// everything. An empty path gives a memory-only store. OpenBackend opens
// one on another backend.
func Open(path string) (*Store, error) {
	s := &Store{
		apps:        map[string]*App{},
		versions:    map[string][]string{},
		defs:        map[string]*marathon.App{},
		tasks:       map[string]*Task{},
		deployments: map[string]*Deployment{},
		agents:      map[string]*Agent{},
		callbacks:   map[string]bool{},
		groupStore:  newGroupStore(),
		dirty:       map[dirtyKey][]byte{},
	}
	if path == "" {
		return s, nil
	}
	b, err := OpenBolt(path)
	if err != nil {
		return nil, err
	}
	return openBackend(s, b)
}

// OpenBackend builds a store on b (bbolt, ZooKeeper...) and loads
// everything from it. Closing the store closes b.
func OpenBackend(b Backend) (*Store, error) {
	s, err := Open("")
	if err != nil {
		return nil, err
	}
	return openBackend(s, b)
}

func openBackend(s *Store, b Backend) (*Store, error) {
	s.backend = b
	if err := s.load(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("load state: %w", err)
	}
	return s, nil
}

func (s *Store) load() error {
	return s.backend.Load(s.loadRecord)
}

// loadRecord puts one stored record into the in-memory model.
func (s *Store) loadRecord(bucket, k string, v []byte) error {
	switch bucket {
	case string(bucketApps):
		var a App
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("app %s: %w", k, err)
		}
		s.apps[k] = &a
	case string(bucketVersions):
		id, ver, ok := strings.Cut(k, "\x00")
		if !ok {
			return nil
		}
		var d marathon.App
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("app version %s: %w", k, err)
		}
		s.defs[k] = &d
		vs := append(s.versions[id], ver)
		sort.Strings(vs)
		s.versions[id] = vs
	case string(bucketTasks):
		var t Task
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("task %s: %w", k, err)
		}
		s.tasks[k] = &t
	case string(bucketDeployments):
		var d Deployment
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("deployment %s: %w", k, err)
		}
		s.deployments[k] = &d
	case string(bucketAgents):
		var a Agent
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("agent %s: %w", k, err)
		}
		s.agents[k] = &a
	case string(bucketCallbacks):
		s.callbacks[k] = true
	default:
		return s.loadGroupRecord(bucket, k, v)
	}
	return nil
}

func (s *Store) mark(bucket []byte, key string, v any) {
	var b []byte
	if v != nil {
		var err error
		b, err = json.Marshal(v)
		if err != nil {
			// All stored types marshal; keep the old on-disk value.
			return
		}
	}
	k := dirtyKey{string(bucket), key}
	if s.undo != nil {
		if _, seen := s.undo[k]; !seen {
			prev, wasDirty := s.dirty[k]
			s.undo[k] = undoEntry{wasDirty: wasDirty, snapshot: prev}
		}
	}
	s.dirty[k] = b
}

// Begin starts journalling changes so that Rollback can undo them. The
// single writer calls Begin, changes the store, flushes, and ends with
// Commit (keep the changes) or Rollback (the flush failed).
func (s *Store) Begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undo = map[dirtyKey]undoEntry{}
}

// Commit ends the journal started by Begin, keeping the changes.
func (s *Store) Commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undo = nil
}

// Rollback undoes every change made since Begin, in memory: each changed
// key gets back its pending value from before Begin, or else the value in
// the database. Task health (never persisted) is kept. Changes made
// before Begin and not flushed yet stay pending.
func (s *Store) Rollback() error {
	s.mu.Lock()
	undo := s.undo
	s.undo = nil
	s.mu.Unlock()
	if s.backend == nil {
		// A memory-only store never fails to flush.
		return errors.New("roll back state: memory-only store")
	}
	committed := map[dirtyKey][]byte{}
	for k, u := range undo {
		if u.wasDirty {
			continue
		}
		v, err := s.backend.Get(k.bucket, k.key)
		if err != nil {
			return fmt.Errorf("roll back state: %w", err)
		}
		if v != nil {
			committed[k] = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, u := range undo {
		v := committed[k]
		if u.wasDirty {
			v = u.snapshot
			s.dirty[k] = u.snapshot
		} else {
			delete(s.dirty, k)
		}
		if err := s.restore(k, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// restore sets one key of the in-memory state to v (nil: absent).
// Caller holds s.mu.
func (s *Store) restore(k dirtyKey, v []byte) error {
	decode := func(dst any) error {
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("roll back %s/%s: %w", k.bucket, k.key, err)
		}
		return nil
	}
	switch k.bucket {
	case string(bucketApps):
		if v == nil {
			delete(s.apps, k.key)
			return nil
		}
		var a App
		if err := decode(&a); err != nil {
			return err
		}
		s.apps[k.key] = &a
	case string(bucketVersions):
		id, ver, _ := strings.Cut(k.key, "\x00")
		vs := slices.DeleteFunc(s.versions[id], func(x string) bool { return x == ver })
		if v == nil {
			delete(s.defs, k.key)
		} else {
			var d marathon.App
			if err := decode(&d); err != nil {
				return err
			}
			s.defs[k.key] = &d
			vs = append(vs, ver)
			sort.Strings(vs)
		}
		if len(vs) == 0 {
			delete(s.versions, id)
		} else {
			s.versions[id] = vs
		}
	case string(bucketTasks):
		cur := s.tasks[k.key]
		if v == nil {
			delete(s.tasks, k.key)
			return nil
		}
		var t Task
		if err := decode(&t); err != nil {
			return err
		}
		if cur != nil {
			t.Health = cur.Health
		}
		s.tasks[k.key] = &t
	case string(bucketDeployments):
		if v == nil {
			delete(s.deployments, k.key)
			return nil
		}
		var d Deployment
		if err := decode(&d); err != nil {
			return err
		}
		s.deployments[k.key] = &d
	case string(bucketAgents):
		if v == nil {
			delete(s.agents, k.key)
			return nil
		}
		var a Agent
		if err := decode(&a); err != nil {
			return err
		}
		s.agents[k.key] = &a
	case string(bucketCallbacks):
		if v == nil {
			delete(s.callbacks, k.key)
		} else {
			s.callbacks[k.key] = true
		}
	case string(bucketGroups), string(bucketGroupVersions), string(bucketGroupDefs):
		return s.restoreGroupRecord(k.bucket, k.key, v)
	default:
		// Every bucket must be restorable, or a refused change stays
		// applied in memory.
		return fmt.Errorf("roll back %s/%s: bucket has no restore", k.bucket, k.key)
	}
	return nil
}

// Flush writes every pending change in one transaction. It is a no-op for
// a memory-only store.
func (s *Store) Flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	if s.backend == nil || len(s.dirty) == 0 {
		s.dirty = map[dirtyKey][]byte{}
		s.mu.Unlock()
		return nil
	}
	pending := s.dirty
	s.dirty = map[dirtyKey][]byte{}
	s.mu.Unlock()
	ops := make([]Op, 0, len(pending))
	for k, v := range pending {
		ops = append(ops, Op{Bucket: k.bucket, Key: k.key, Value: v})
	}
	// A stable order: the backend may split a large batch.
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Bucket != ops[j].Bucket {
			return ops[i].Bucket < ops[j].Bucket
		}
		return ops[i].Key < ops[j].Key
	})
	err := s.backend.Commit(ops)
	if err != nil {
		// Put the changes back (newer ones win) so the next flush retries.
		s.mu.Lock()
		for k, v := range pending {
			if _, ok := s.dirty[k]; !ok {
				s.dirty[k] = v
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("flush state: %w", err)
	}
	return nil
}

// Pending returns how many changes wait for the next Flush.
func (s *Store) Pending() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.dirty)
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	err := s.Flush()
	if s.backend != nil {
		err = errors.Join(err, s.backend.Close())
	}
	return err
}

// App returns the stored app.
func (s *Store) App(id string) (*App, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.apps[id]
	return a, ok
}

// Apps returns all apps sorted by id.
func (s *Store) Apps() []*App {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Def.ID < out[j].Def.ID })
	return out
}

// PutApp stores the app; when its definition version is new it is also
// kept as a version (at most SetMaxVersions's limit per app, the newest).
func (s *Store) PutApp(a *App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := a.Def.ID
	s.apps[id] = a
	s.mark(bucketApps, id, a)
	v := a.Def.Version
	if v == "" {
		return
	}
	key := id + "\x00" + v
	if _, ok := s.defs[key]; ok {
		return
	}
	def := a.Def
	s.defs[key] = &def
	s.mark(bucketVersions, key, &def)
	vs := append(s.versions[id], v)
	sort.Strings(vs)
	s.versions[id] = s.trimVersions(id, vs)
}

// DeleteApp removes the app and its stored versions.
func (s *Store) DeleteApp(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, id)
	s.mark(bucketApps, id, nil)
	for _, v := range s.versions[id] {
		key := id + "\x00" + v
		delete(s.defs, key)
		s.mark(bucketVersions, key, nil)
	}
	delete(s.versions, id)
}

// AppVersions lists an app's stored versions, oldest first.
func (s *Store) AppVersions(id string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.versions[id]...)
}

// AppVersion returns one stored definition of an app.
func (s *Store) AppVersion(id, version string) (*marathon.App, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.defs[id+"\x00"+version]
	return d, ok
}

// Task returns a task.
func (s *Store) Task(id string) (*Task, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tasks[id]
	return t, ok
}

// Tasks returns all tasks sorted by id.
func (s *Store) Tasks() []*Task {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Task, 0, len(s.tasks))
	for _, t := range s.tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PutTask stores a task.
func (s *Store) PutTask(t *Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks[t.ID] = t
	s.mark(bucketTasks, t.ID, t)
}

// DeleteTask removes a task (it ended and was expunged).
func (s *Store) DeleteTask(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tasks, id)
	s.mark(bucketTasks, id, nil)
}

// Deployment returns a deployment.
func (s *Store) Deployment(id string) (*Deployment, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.deployments[id]
	return d, ok
}

// Deployments returns all deployments, oldest first.
func (s *Store) Deployments() []*Deployment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Deployment, 0, len(s.deployments))
	for _, d := range s.deployments {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// PutDeployment stores a deployment.
func (s *Store) PutDeployment(d *Deployment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployments[d.ID] = d
	s.mark(bucketDeployments, d.ID, d)
}

// DeleteDeployment removes a finished or cancelled deployment.
func (s *Store) DeleteDeployment(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.deployments, id)
	s.mark(bucketDeployments, id, nil)
}

// Agent returns an agent.
func (s *Store) Agent(id string) (*Agent, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.agents[id]
	return a, ok
}

// Agents returns all agents sorted by id.
func (s *Store) Agents() []*Agent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Agent, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PutAgent stores an agent.
func (s *Store) PutAgent(a *Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents[a.ID] = a
	s.mark(bucketAgents, a.ID, a)
}

// DeleteAgent removes an agent's record.
func (s *Store) DeleteAgent(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.agents, id)
	s.mark(bucketAgents, id, nil)
}

// Callbacks returns the registered event callback URLs, sorted.
func (s *Store) Callbacks() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.callbacks))
	for u := range s.callbacks {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// PutCallback registers an event callback URL.
func (s *Store) PutCallback(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callbacks[url] = true
	s.mark(bucketCallbacks, url, true)
}

// DeleteCallback removes an event callback URL.
func (s *Store) DeleteCallback(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.callbacks, url)
	s.mark(bucketCallbacks, url, nil)
}

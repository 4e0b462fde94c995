package controller

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// world is the property test's Marathon: the truth the events describe.
type world struct {
	rng  *rand.Rand
	apps []marathon.App
	next int // task counter
}

func (w *world) event(typ string, payload any) marathon.Event {
	data, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	return marathon.Event{Type: typ, Data: data}
}

func statusEvent(appID string, t marathon.Task, status string) marathon.StatusUpdateEvent {
	return marathon.StatusUpdateEvent{
		EventHeader: marathon.EventHeader{EventType: marathon.EventStatusUpdate},
		TaskID:      t.ID, TaskStatus: status, AppID: appID, Host: t.Host, SlaveID: t.SlaveID,
		IPAddresses: t.IPAddresses, Ports: t.Ports, Version: t.Version,
	}
}

// newTask returns a task of app a on one of a few hosts, so that host and
// port collisions (one server for two tasks) happen too.
func (w *world) newTask(a *marathon.App) marathon.Task {
	w.next++
	host := fmt.Sprintf("10.0.0.%d", 1+w.rng.IntN(4))
	ports := make([]int, max(1, len(a.PortDefinitions)))
	for i := range ports {
		ports[i] = 31000 + w.rng.IntN(40)
	}
	t := marathontest.Task(a.ID, host, ports...)
	t.ID = fmt.Sprintf("%s.t%d", marathon.SafeID(a.ID), w.next)
	return t
}

// step changes the world at random and returns the event Marathon would
// send for it.
func (w *world) step() marathon.Event {
	i := w.rng.IntN(len(w.apps))
	a := &w.apps[i]
	pick := func() int { return w.rng.IntN(len(a.Tasks)) }
	switch r := w.rng.IntN(100); {
	case r < 30: // scale up: a running task
		t := w.newTask(a)
		a.Tasks = append(a.Tasks, t)
		return w.event(marathon.EventStatusUpdate, statusEvent(a.ID, t, marathon.TaskRunning))
	case r < 38: // a task staging, not routed yet
		t := w.newTask(a)
		t.State = marathon.TaskStaging
		a.Tasks = append(a.Tasks, t)
		return w.event(marathon.EventStatusUpdate, statusEvent(a.ID, t, marathon.TaskStaging))
	case r < 48 && len(a.Tasks) > 0: // staging or killing -> running, or running -> killing
		t := &a.Tasks[pick()]
		if t.State == marathon.TaskRunning {
			t.State = marathon.TaskKilling
		} else {
			t.State = marathon.TaskRunning
		}
		return w.event(marathon.EventStatusUpdate, statusEvent(a.ID, *t, t.State))
	case r < 70 && len(a.Tasks) > 0: // scale down or crash: gone from /v2/apps
		j := pick()
		t := a.Tasks[j]
		a.Tasks = slices.Delete(a.Tasks, j, j+1)
		status := []string{marathon.TaskKilled, marathon.TaskFailed, marathon.TaskFinished}[w.rng.IntN(3)]
		return w.event(marathon.EventStatusUpdate, statusEvent(a.ID, t, status))
	case r < 82 && len(a.Tasks) > 0 && len(a.HealthChecks) == 1: // health flips
		t := &a.Tasks[pick()]
		alive := w.rng.IntN(2) == 0
		t.HealthCheckResults = []marathon.HealthCheckResult{{Alive: alive, TaskID: t.ID}}
		return w.event(marathon.EventHealthStatusChanged, marathon.HealthStatusChangedEvent{
			EventHeader: marathon.EventHeader{EventType: marathon.EventHealthStatusChanged},
			AppID:       a.ID, TaskID: t.ID, Alive: alive})
	case r < 86 && len(a.Tasks) > 0: // lost: in doubt, re-read
		t := &a.Tasks[pick()]
		t.State = marathon.TaskUnreachable
		return w.event(marathon.EventStatusUpdate, statusEvent(a.ID, *t, marathon.TaskLost))
	case r < 92: // the app's definition changes (a vhost appears or goes)
		if _, ok := a.Labels["HAPROXY_0_VHOST"]; ok {
			delete(a.Labels, "HAPROXY_0_VHOST")
		} else {
			a.Labels["HAPROXY_0_VHOST"] = marathon.SafeID(a.ID) + ".example.com"
		}
		return w.event(marathon.EventAPIPost, map[string]any{"eventType": marathon.EventAPIPost, "appDefinition": a})
	case r < 95: // an event for an app lb has never seen
		return w.event(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{
			TaskID: "new.t1", TaskStatus: marathon.TaskRunning, AppID: "/not-yet-read", Host: "10.0.0.9", Ports: []int{1}})
	default: // a task of the app changes host and ports under the same id
		if len(a.Tasks) == 0 {
			return w.event(marathon.EventDeploymentSuccess, map[string]any{})
		}
		t := &a.Tasks[pick()]
		n := w.newTask(a)
		t.Host, t.IPAddresses, t.Ports = n.Host, n.IPAddresses, n.Ports
		return w.event(marathon.EventStatusUpdate, statusEvent(a.ID, *t, t.State))
	}
}

func newWorld(seed uint64) *world {
	w := &world{rng: rand.New(rand.NewPCG(seed, 7))}
	group := marathontest.WithLabel("HAPROXY_GROUP", "external")
	w.apps = []marathon.App{
		marathontest.App("/web", group, marathontest.WithServicePorts(10000), marathontest.WithLabel("HAPROXY_0_VHOST", "web.example.com")),
		marathontest.App("/api", group, marathontest.WithServicePorts(10001), marathontest.WithHTTPHealthCheck("/health")),
		marathontest.App("/tcp", group, marathontest.WithServicePorts(10002, 10003)),
		marathontest.App("/sticky", group, marathontest.WithServicePorts(10004),
			marathontest.WithLabels(map[string]string{"HAPROXY_0_STICKY": "true", "HAPROXY_0_MODE": "http"})),
		marathontest.App("/static", group, marathontest.WithServicePorts(10005), marathontest.WithLabel("HAPROXY_0_BALANCE", "static-rr")),
		marathontest.App("/clash", group, marathontest.WithServicePorts(10000)), // loses port 10000 to /web
		marathontest.App("/other", marathontest.WithLabel("HAPROXY_GROUP", "internal"), marathontest.WithServicePorts(10006)),
		marathontest.App("/tcpcheck", group, marathontest.WithServicePorts(10007), marathontest.WithTCPHealthCheck()),
	}
	for i := range w.apps {
		a := &w.apps[i]
		if a.Labels == nil {
			a.Labels = map[string]string{}
		}
		for range 2 {
			a.Tasks = append(a.Tasks, w.newTask(a))
		}
	}
	return w
}

func deepCopyApps(t *testing.T, apps []marathon.App) []marathon.App {
	t.Helper()
	b, err := json.Marshal(apps)
	require.NoError(t, err)
	var out []marathon.App
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// TestIncrementalMatchesFullResync is the property of the incremental
// path: for random sequences of Marathon changes, applying their events
// (incrementally where possible, re-reading on doubt) gives, after every
// sync, the configuration a full re-read and render of Marathon's state
// gives.
func TestIncrementalMatchesFullResync(t *testing.T) {
	for _, opts := range []lb.Options{{}, {HealthCheck: true}, {HAProxyMap: true}} {
		for seed := range uint64(12) {
			t.Run(fmt.Sprintf("healthcheck=%v/map=%v/seed=%d", opts.HealthCheck, opts.HAProxyMap, seed), func(t *testing.T) {
				ctx := t.Context()
				w := newWorld(seed)
				src := newFakeSource(deepCopyApps(t, w.apps)...)
				f := newApplierFixture(t, opts)
				reg := prometheus.NewRegistry()
				c, err := newController(Config{Marathon: src, Registry: reg})
				require.NoError(t, err)
				c.rend, c.applier = f.rend, f.a
				c.metrics = f.a.m
				ref, err := loadRenderer(f.rend.opts, "") // the full resync's renderer
				require.NoError(t, err)

				st := newLoopState()
				defer st.stop()
				require.NoError(t, c.initial(ctx, st))
				want, err := ref.render(deepCopyApps(t, w.apps))
				require.NoError(t, err)
				require.Equal(t, string(want.Config), string(f.a.running().Config))

				for round := range 60 {
					for range 1 + w.rng.IntN(4) {
						ev := w.step()
						src.set(deepCopyApps(t, w.apps)...)
						c.onEvent(st, ev)
					}
					c.sync(ctx, st)
					if w.rng.IntN(3) == 0 {
						require.NoError(t, f.a.flush(ctx))
						assert.Equal(t, string(f.a.running().Config), f.onDisk(t), "round %d: file follows", round)
					}
					// A full resync now, with the same memory of the
					// backends served (who keeps a clashing port).
					ref.inherit(f.rend)
					want, err := ref.render(deepCopyApps(t, w.apps))
					require.NoError(t, err)
					require.Equal(t, string(want.Config), string(f.a.running().Config), "round %d", round)
					assert.ElementsMatch(t, historyFree(want.Skipped), historyFree(*c.skipped.Load()), "round %d: skipped ports", round)
					assert.Equal(t, want.Maps, f.a.running().Maps, "round %d: maps", round)
				}
				assert.Positive(t, valueOf(t, c.metrics.incrementalSyncs), "the incremental path was taken")
				assert.Positive(t, valueOf(t, c.metrics.runtimeUpdates), "runtime updates were made")
				assert.Greater(t, src.readCount(), 1, "doubt led to re-reads")
			})
		}
	}
}

// historyFree drops from skipped reasons what depends on how many renders
// came before rather than on the state: whether the port's holder "held it
// before" (the first render of a state says it only from the second).
func historyFree(list []skippedPort) []skippedPort {
	out := slices.Clone(list)
	for i := range out {
		out[i].Reason = strings.TrimSuffix(out[i].Reason, ", which held it before")
	}
	return out
}

func TestTaskEventsAppliedFromTheEvent(t *testing.T) {
	ctx := t.Context()
	web := webApp(31000)
	src := newFakeSource(web, apiApp())
	f := newApplierFixture(t, lb.Options{})
	c, err := newController(Config{Marathon: src, Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	c.rend, c.applier, c.metrics = f.rend, f.a, f.a.m
	st := newLoopState()
	defer st.stop()
	require.NoError(t, c.initial(ctx, st))
	require.Equal(t, []string{"start"}, f.proc.taken())
	w := &world{}
	task := marathontest.Task("/web", "10.0.0.1", 31001)

	c.onEvent(st, w.event(marathon.EventStatusUpdate, statusEvent("/web", task, marathon.TaskRunning)))
	c.sync(ctx, st)
	assert.Equal(t, 1, src.readCount(), "Marathon not read again")
	assert.Equal(t, []string{"apply"}, f.proc.taken(), "runtime API, no reload")
	assert.Contains(t, string(f.a.running().Config), "10.0.0.1:31001")
	assert.Equal(t, 1.0, valueOf(t, c.metrics.incrementalSyncs))
	checks := f.checks
	require.NoError(t, f.a.flush(ctx))
	assert.Equal(t, checks, f.checks, "no haproxy -c")
	assert.Equal(t, string(f.a.running().Config), f.onDisk(t))

	c.onEvent(st, w.event(marathon.EventStatusUpdate, statusEvent("/web", task, marathon.TaskKilled)))
	c.sync(ctx, st)
	assert.Equal(t, 1, src.readCount())
	assert.NotContains(t, string(f.a.running().Config), "10.0.0.1:31001")

	// In doubt: an unknown app, a lost task: Marathon is read again.
	c.onEvent(st, w.event(marathon.EventStatusUpdate, statusEvent("/new", marathontest.Task("/new", "10.0.0.9", 1), marathon.TaskRunning)))
	c.sync(ctx, st)
	assert.Equal(t, 2, src.readCount())
	c.onEvent(st, w.event(marathon.EventStatusUpdate, statusEvent("/web", web.Tasks[0], marathon.TaskLost)))
	c.sync(ctx, st)
	assert.Equal(t, 3, src.readCount())

	// A stream attach before the last read needs no other read; one
	// after it does (events may have been missed in between).
	attached := func(at time.Time) marathon.Event {
		ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
		return marathon.Event{Type: marathon.EventStreamAttached, Timestamp: ts}
	}
	c.onEvent(st, attached(st.fetchedAt.Add(-time.Second)))
	assert.False(t, st.pending, "no sync for an attach the snapshot covers")
	c.onEvent(st, attached(st.fetchedAt.Add(time.Second)))
	c.sync(ctx, st)
	assert.Equal(t, 4, src.readCount())
}

// TestChangeDuringReloadAppliedAtRuntime: a task event that arrives while
// a reload runs (the loop handles it once the reload returns) goes through
// the runtime API at once, against the configuration just loaded, not
// through another reload.
func TestChangeDuringReloadAppliedAtRuntime(t *testing.T) {
	ctx := t.Context()
	src := newFakeSource(webApp(31000))
	f := newApplierFixture(t, lb.Options{})
	c, err := newController(Config{Marathon: src, Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	c.rend, c.applier, c.metrics = f.rend, f.a, f.a.m
	st := newLoopState()
	defer st.stop()
	require.NoError(t, c.initial(ctx, st))
	f.proc.taken()

	// A new app: a re-read and a reload.
	src.set(webApp(31000), apiApp())
	w := &world{}
	c.onEvent(st, w.event(marathon.EventAPIPost, map[string]any{"eventType": marathon.EventAPIPost}))
	c.sync(ctx, st)
	calls := f.proc.taken()
	require.Len(t, calls, 1)
	require.Contains(t, calls[0], "reload")

	// The event that came in meanwhile: a task of the new app.
	task := marathontest.Task("/api", "10.0.0.2", 32001)
	c.onEvent(st, w.event(marathon.EventStatusUpdate, statusEvent("/api", task, marathon.TaskRunning)))
	c.sync(ctx, st)
	assert.Equal(t, []string{"apply"}, f.proc.taken(), "runtime API right after the reload")
	assert.Contains(t, string(f.a.running().Config), "10.0.0.2:32001")
	assert.Equal(t, 1.0, valueOf(t, c.metrics.incrementalSyncs))
}
